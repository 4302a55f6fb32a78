"""A real PostgreSQL server for tests and benches: the distribution's server binaries, a fresh
cluster in a temporary directory, listening on 127.0.0.1 (a free port) and a Unix socket there.

PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the ``postgres``
system user the Debian package creates (``nobody`` when there is none) and its programs run
through ``runuser``; a developer's own account runs them directly.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

#: The stores the collector tests run against (the ``db`` fixture's parameters).
STORES = ("sqlite", "postgres")
#: ``pytestmark = BOTH_STORES``: every test of the module that uses the ``db`` fixture (directly
#: or through ``collector``, ``xray_client``, ``collector_process``) runs on each store
#: (conftest.py's ``pytest_generate_tests``).
BOTH_STORES = pytest.mark.both_stores

#: Where Debian's postgresql-NN packages put the server programs (newest version first).
BIN_GLOB = "/usr/lib/postgresql/*/bin"


def server_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (PATH first, then Debian's layout)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(
        (Path(d) for d in glob.glob(BIN_GLOB) if (Path(d) / "initdb").exists()),
        key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0,
        reverse=True,
    )
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server programs not found (initdb); run scripts/prereqs.sh "
            "(apt-get install postgresql)"
        )
    return candidates[0]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One throwaway cluster; ``create_database()`` hands out empty databases by URL."""

    USER = "xray"

    def __init__(self, durable: bool = False) -> None:
        #: False (tests): no fsync, as the tests kill collectors, never this server; True
        #: (benches): PostgreSQL's defaults, every commit flushed.
        self.durable = durable
        self.bin = server_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="otel-xray-pg-"))
        self.data = self.root / "data"
        self.port = 0
        self._names = itertools.count(1)
        self._as: list[str] = []
        if os.geteuid() == 0:
            owner = self._unprivileged_user()
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self._as = ["runuser", "-u", owner.pw_name, "--"]
        self.started = False

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd:
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._as, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
        )

    def start(self) -> PostgresServer:
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr}")
        last = ""
        for _ in range(5):  # another process may take the free port before the server binds
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    f"-c unix_socket_directories={self.root}",
                    "-c max_connections=300",
                    *([] if self.durable else ["-c fsync=off", "-c full_page_writes=off"]),
                ]
            )
            done = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
                "-w", "-t", "120", "start",
            )  # fmt: skip
            if done.returncode == 0:
                self.started = True
                return self
            last = done.stdout + done.stderr + self.log()
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def log(self) -> str:
        try:
            return (self.root / "log").read_text(errors="replace")
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Run ``sql`` as the server's superuser (autocommit)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
