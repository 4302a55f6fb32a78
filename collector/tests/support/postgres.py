"""A real PostgreSQL server for tests and benches: the distribution's server binaries, a fresh
cluster in a temporary directory, listening on 127.0.0.1 (a free port) and a Unix socket there.

PostgreSQL refuses to run as root, so as root (CI) the cluster belongs to the ``postgres``
system user the Debian package creates (``nobody`` when there is none); a developer's own
account runs it as itself.

The server dies with the process that started it, even one killed with ``kill -9``: ``postgres``
runs in the foreground as a direct child (not detached by ``pg_ctl``), switched to that user by
``subprocess`` itself and given a parent-death signal after the switch (a credential change
clears it, and ``runuser`` would put itself in between: it answers the signal by killing the
server after 2 s with SIGKILL, which strands its backends). The signal is SIGQUIT, PostgreSQL's
immediate shutdown: the data is thrown away anyway, and a smart shutdown (SIGTERM) would wait
for clients such as collector processes the dead session left behind. Each cluster's directory
holds a lock the session and the server share; a later start removes the directories whose
lock nobody holds any more.
"""

from __future__ import annotations

import ctypes
import fcntl
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

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


#: Prefix of every cluster's temporary directory (what ``sweep_abandoned`` looks at).
ROOT_PREFIX = "otel-xray-pg-"
#: The lock file in each cluster directory, held while the session or its server lives.
LOCK_NAME = "in-use.lock"
#: What PostgreSQL logs once it accepts connections.
READY_LINE = "database system is ready to accept connections"
_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGQUIT) -> Callable[[], None]:
    """A ``preexec_fn`` (runs after ``subprocess`` switched user) asking the kernel to send
    ``sig`` to the child when the process that started it dies. Linux sends it when the
    *thread* that forked ends, so start the server from one that lives as long as it should
    (the main thread, as the session fixture and bench/store.py do)."""
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork, not in the child
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), sig)

    return arm


def sweep_abandoned() -> list[Path]:
    """Remove the cluster directories of sessions that ended without stopping their server
    (killed): nobody holds their lock. Returns what it removed."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(ROOT_PREFIX + "*"):
        try:
            with (root / LOCK_NAME).open("rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held (alive), or no lock file yet (being created): not ours to take
            continue
        shutil.rmtree(root, ignore_errors=True)
        removed.append(root)
    return removed


class PostgresServer:
    """One throwaway cluster; ``create_database()`` hands out empty databases by URL."""

    USER = "xray"

    def __init__(self, durable: bool = False) -> None:
        #: False (tests): no fsync, as the tests kill collectors, never this server; True
        #: (benches): PostgreSQL's defaults, every commit flushed.
        self.durable = durable
        self.bin = server_bin_dir()
        sweep_abandoned()
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        # Locked before it gets the name a sweeper looks for, so no sweeper ever takes it.
        self._lock = (self.root / (LOCK_NAME + ".new")).open("wb")
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        (self.root / (LOCK_NAME + ".new")).rename(self.root / LOCK_NAME)
        self.data = self.root / "data"
        self.port = 0
        self._names = itertools.count(1)
        self._owner: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._owner = self._unprivileged_user()
            os.chown(self.root, self._owner.pw_uid, self._owner.pw_gid)
        self.process: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @staticmethod
    def _unprivileged_user() -> pwd.struct_passwd:
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")

    def _as_owner(self) -> dict[str, object]:
        """``subprocess`` arguments running a program as the cluster's owner."""
        if self._owner is None:
            return {}
        return {"user": self._owner.pw_uid, "group": self._owner.pw_gid, "extra_groups": []}

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload,no-any-return]
            [str(self.bin / program), *args],
            capture_output=True,
            text=True,
            cwd=self.root,
            check=False,
            **self._as_owner(),
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
            options = [
                "-c", "listen_addresses=127.0.0.1",
                "-p", str(self.port),
                "-c", f"unix_socket_directories={self.root}",
                "-c", "max_connections=300",
                *([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
            ]  # fmt: skip
            self.process = subprocess.Popen(  # type: ignore[call-overload]
                [str(self.bin / "postgres"), "-D", str(self.data), *options],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                cwd=self.root,
                pass_fds=(self._lock.fileno(),),  # the directory stays in use while it runs
                preexec_fn=die_with_parent(),
                **self._as_owner(),
            )
            if self._await_ready():
                return self
            last = self.log()
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def _await_ready(self) -> bool:
        """Read the server's log until it says it accepts connections (True) or it exits
        (False); from then on a thread keeps copying it to ``log`` so the pipe never fills."""
        assert self.process is not None and self.process.stderr is not None
        stderr = self.process.stderr
        with (self.root / "log").open("a") as log:
            for line in stderr:
                log.write(line)
                if READY_LINE in line:
                    self._drain = threading.Thread(
                        target=self._copy_log, args=(stderr,), daemon=True
                    )
                    self._drain.start()
                    return True
        self.process.wait()
        return False

    def _copy_log(self, stderr: IO[str]) -> None:
        with (self.root / "log").open("a") as log:
            for line in stderr:
                log.write(line)
                log.flush()

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
        """Fast shutdown (clients disconnected, a clean checkpoint), then the directory goes."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=120)
            if self._drain is not None:
                self._drain.join(timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
        self._lock.close()
