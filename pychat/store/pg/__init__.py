"""The PostgreSQL backend of the store, for operators who outgrow one box (docs/operations.md,
"Running on PostgreSQL").  The same sealed records as the flat files, in tables; names only
as keyed pseudonyms; the schema in versioned migration files applied at start."""
