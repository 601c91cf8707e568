# The two commands of the README.  Both create .venv on first use and are quick after that.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check
# A real (not editable) install: Twisted finds plugins by listing twisted/plugins directories on
# sys.path, which setuptools' editable finder does not provide.  Reinstalled when a source changes.
SOURCES := setup.cfg pyproject.toml $(shell find pychat twisted -name '*.py' -o -name '*.typed')

# Bytecode is written (into .venv and the checkout's __pycache__ directories, which git
# ignores) even where PYTHONDONTWRITEBYTECODE is set: without it each of the test suite's
# processes compiles pyChat, its tests and Twisted from source again.
export PYTHONDONTWRITEBYTECODE :=

# The at-rest key beside the data dir, not in it (a copy of the data dir is then no copy of
# the key: the server would warn otherwise).
RUN_ARGS ?= --data-dir ./pychat-data --store-key ./pychat-store.key --listen ssl:8765:interface=127.0.0.1

.PHONY: run test lint typecheck unit soak soak-database bench clean install-systemd

# The venv's own pip is recent enough; setuptools and wheel build pyChat (no build isolation:
# no second download of them per install).  --no-compile: Python writes the bytecode of what
# is imported on first use, rather than pip compiling all of Twisted, mypy and the rest.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(INSTALL) --upgrade setuptools wheel

$(VENV)/.installed-run: $(SOURCES) | $(BIN)/python
	$(INSTALL) --no-compile --no-build-isolation .
	touch $@

$(VENV)/.installed-test: $(SOURCES) | $(BIN)/python
	$(INSTALL) --no-compile --no-build-isolation '.[test]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/twistd --nodaemon --pidfile= pychat $(RUN_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check pychat tests twisted bench
	$(BIN)/ruff format --check pychat tests twisted bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# One worker per core (pytest-xdist; idle workers steal queued tests, so a slow test at the
# end does not leave a core idle); PYTEST_ARGS="-n 0" runs in one process.
unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

test: lint typecheck unit

# Not part of `make test`: pyChat beside the bare TLS relay (ratios), and the store at sizes.
# Logins first: of all the figures, only a login's CPU moves with how busy the machine is
# (the relay lines are ratios against a baseline timed in the same minutes), so they are timed
# in the minute the command starts, which can be chosen (docs/performance.md).
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench.sessions login --loops 30 --seconds 5 --runs 3
	$(BIN)/python -m bench.relay --pairs 1 --window 64 --messages 20000
	$(BIN)/python -m bench.relay --pairs 1 --window 1 --messages 2000
	$(BIN)/python -m bench.relay --pairs 50 --window 64 --messages 1000 --postgresql --nodes 2
	$(BIN)/python -m bench.relay --pairs 50 --window 1 --messages 200 --postgresql --nodes 2
	$(BIN)/python -m bench.relay --pairs 200 --window 64 --messages 1000 --versus 50 --runs 7
	$(BIN)/python -m bench.relay --pairs 200 --window 1 --messages 50
	$(BIN)/python -m bench.relay --pairs 50 --window 64 --messages 200 --rate 1000
	$(BIN)/python -m bench.sessions idle --sessions 2000
	$(BIN)/python -m bench.sessions idle --sessions 5000
	$(BIN)/python bench/bench_store.py --sizes 100,10000,100000,1000000
	$(BIN)/python bench/bench_inflight.py
	$(BIN)/python -m bench.group_fanout --members 10,50 --messages 1000 --window 16 --runs 3
	$(BIN)/python -m bench.client_start --runs 10 --commands

# Not part of `make test`: 300 SIGKILLs under load and 20 disk-full cycles (root, for a tmpfs).
soak: $(VENV)/.installed-test
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Not part of `make test`: SIGKILLs of PostgreSQL itself, then of one of two nodes, under load.
soak-database: $(VENV)/.installed-test
	$(BIN)/python -m bench.soak_database --kill postgresql --kills 50
	$(BIN)/python -m bench.soak_database --kill node --kills 50

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# As root: a venv in $(PREFIX), the store key in /etc/pychat (kept, never overwritten), the
# unit in /etc/systemd/system, started now and at boot (docs/operations.md).
PREFIX ?= /opt/pychat
install-systemd:
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/python -m pip install --quiet --disable-pip-version-check .
	install -d -m 0700 /etc/pychat
	test -e /etc/pychat/store.key || $(PREFIX)/bin/pychat-admin make-store-key /etc/pychat/store.key
	sed 's|/opt/pychat/|$(PREFIX)/|g' contrib/systemd/pychat.service > /etc/systemd/system/pychat.service
	systemctl daemon-reload
	systemctl enable --now pychat.service
	@echo "pyChat runs; its certificate fingerprint: journalctl -u pychat | grep fingerprint"
