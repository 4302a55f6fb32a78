"""The tests' PostgreSQL server dies with the session that started it, even one killed with
``kill -9`` (support/postgres.py), and a later start removes what that session left on disk."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import psycopg

from .support.postgres import PostgresServer, sweep_abandoned

REPO = Path(__file__).resolve().parents[2]
#: A session in miniature: the fixture's server, its facts on stdout, then wait to be killed.
SESSION = """
import json, sys
from collector.tests.support.postgres import PostgresServer
server = PostgresServer().start()
facts = {"pid": server.process.pid, "url": server.url(), "root": str(server.root)}
print(json.dumps(facts), flush=True)
sys.stdin.read()
"""


def await_exit(pid: int, timeout: float = 60.0) -> bool:
    """Whether process ``pid`` (not our child) ended within ``timeout``: a pidfd becomes
    readable when it does."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def session_members(sid: int) -> list[str]:
    """Command lines of the live processes of session ``sid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                members.append((stat.parent / "cmdline").read_text().replace("\0", " "))
        except (OSError, IndexError):  # ended while we looked
            continue
    return members


def test_the_server_dies_with_a_session_killed_with_sigkill() -> None:
    session = subprocess.Popen(
        [sys.executable, "-c", SESSION],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own session: whatever it starts is counted below
    )
    try:
        assert session.stdout is not None
        facts = json.loads(session.stdout.readline())
        conn = psycopg.connect(facts["url"], autocommit=True)  # up, and a backend serving us
        try:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            session.kill()
            session.wait()
            assert await_exit(facts["pid"]), f"postmaster {facts['pid']} outlived its session"
        finally:
            conn.close()
        assert session_members(session.pid) == []  # no backend or helper left either
        assert Path(facts["root"]) in sweep_abandoned()
        assert not Path(facts["root"]).exists()
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
        assert session.stdout is not None
        session.stdout.close()
        assert session.stdin is not None
        session.stdin.close()


def test_stop_ends_the_server_and_removes_its_directory() -> None:
    server = PostgresServer().start()
    assert server.process is not None
    pid = server.process.pid
    with psycopg.connect(server.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert await_exit(pid, timeout=0)  # stop() returned after the server exited
    assert not server.root.exists()
