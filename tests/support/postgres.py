"""A real PostgreSQL server for tests and benchmarks: Debian's `postgresql` binaries, a cluster made with `initdb`
in a temporary folder, listening on a free loopback port; each test gets a database of its own.

As root (CI containers), the server runs as the `postgres` user the Debian package creates: PostgreSQL refuses to
run as root.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

START_TIMEOUT_S = 30.0


def _bin_dir() -> Path:
    """The newest installed server's bin folder (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: `make sysdeps` installs Debian's postgresql package")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One cluster: `start()`, `new_database()` for a URL to an empty database, `stop()`."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="gridwatch-pg-"))
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._bin = _bin_dir()
        self._names = itertools.count(1)
        self._user: str | None = "postgres" if os.geteuid() == 0 else None

    @property
    def admin_url(self) -> str:
        return f"postgresql://gridwatch@127.0.0.1:{self.port}/postgres"

    def _run_as(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self._user, "--", *args] if self._user is not None else args

    def start(self) -> None:
        bin_dir = self._bin
        data = self.root / "data"
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        init = [str(bin_dir / "initdb"), "-D", str(data), "-U", "gridwatch", "--auth=trust", "-E", "UTF8"]
        subprocess.run(self._run_as([*init, "--locale=C"]), check=True, capture_output=True)
        server = [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.root),
            "-c",
            "fsync=on",
            "-c",
            "max_connections=200",
        ]
        with (self.root / "server.log").open("wb") as log:  # the server keeps its own copy of the descriptor
            self._proc = subprocess.Popen(self._run_as(server), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start on port {self.port}:\n{tail}") from None
                time.sleep(0.1)

    def version(self) -> str:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"

    def new_database(self) -> str:
        """The URL of a new, empty database."""
        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")  # name: letters, digits, _ only
        return f"postgresql://gridwatch@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            stop = [str(self._bin / "pg_ctl"), "stop", "-D", str(self.root / "data"), "-m", "fast", "-w"]
            subprocess.run(self._run_as(stop), capture_output=True, timeout=60)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class StoreTargets:
    """Where a test's event and case stores live: two SQLite files, or one PostgreSQL database for both."""

    dialect: str
    events: Path | str
    cases: Path | str
