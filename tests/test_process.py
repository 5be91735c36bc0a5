"""The server as a user runs it: a subprocess over stdio, --check, --require-readonly-role, --demo."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import pytest
from conftest import ROOT, TOOL_CALLS, ps
from mcp import Client, StdioServerParameters
from test_config import run_server

pytestmark = pytest.mark.anyio


def stdio(*args: str, **env: str) -> Client:
    # As .mcp.json runs it (tests/test_config.py runs it as a script).
    params = StdioServerParameters(command=sys.executable, args=["-m", "postgres_server", *args], cwd=str(ROOT),
                                   env=env)  # fmt: skip
    return Client(params, mode="legacy", read_timeout_seconds=60)  # type: ignore[arg-type]


async def test_stdio_server_serves_every_tool(database_url: str) -> None:
    assert set(TOOL_CALLS) == set(ps.TOOL_NAMES)
    async with stdio(DATABASE_URL=database_url) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        results = {name: await client.call_tool(name, args) for name, args in TOOL_CALLS.items()}
        result = await client.call_tool("execute_sql", {"sql": "SELECT count(*) FROM shop.orders"})
        refused = await client.call_tool("execute_sql", {"sql": "DROP TABLE shop.orders"})
    assert tools == set(ps.TOOL_NAMES)
    assert not [name for name, called in results.items() if called.is_error]
    assert results["execute_sql"].structured_content["rows"] == [[42]]  # type: ignore[index]
    assert result.structured_content is not None and result.structured_content["rows"] == [[2000]]
    assert refused.is_error and "DROP refused" in refused.content[0].text  # type: ignore[union-attr]


async def test_stdio_without_a_database_starts_and_explains() -> None:
    async with stdio() as client:
        result = await client.call_tool("list_schemas", {})
    assert result.is_error and "no database is configured" in result.content[0].text  # type: ignore[union-attr]


def test_check_reports_posture_and_runs_every_tool(database_url: str, reader_url: str) -> None:
    """Exit 0: serves as it should; 3: serves, with warnings (one line each, saying what to do); 1: cannot."""
    from conftest import objects

    superuser = run_server("--check", env={"DATABASE_URL": database_url})
    assert superuser.returncode == 3, superuser.stdout + superuser.stderr
    assert "WARN role is a superuser: connect as a role that can only read (README, Security model)" in superuser.stdout
    for tool in ps.TOOL_NAMES:
        assert f"ok   {tool}(" in superuser.stdout
    assert re.search(r"check passed with \d+ warnings: the server serves, every call read-only; fix the WARN lines "
                     r"above$", superuser.stdout.strip())  # fmt: skip
    assert "calls run as pg_read_all_data (privileges dropped with SET LOCAL ROLE)" in superuser.stdout
    assert "per call: work_mem 16MB, temp_file_limit 256MB" in superuser.stdout
    reader = run_server("--check", "--conn", reader_url)
    assert reader.returncode == 3 and "role posture: read-only role" in reader.stdout
    assert "WARN temp files of a call are unbounded" in reader.stdout  # only a superuser may set it per call
    assert "ALTER ROLE mcp_test_reader SET temp_file_limit = '256MB'" in reader.stdout
    bounded = "ALTER ROLE mcp_test_reader SET temp_file_limit = '256MB'"
    with objects(database_url, bounded, "ALTER ROLE mcp_test_reader RESET temp_file_limit"):
        clean = run_server("--check", "--conn", reader_url)
    assert clean.returncode == 0, clean.stdout
    assert "ok   calls run as mcp_test_reader; per call" in clean.stdout and "WARN" not in clean.stdout
    assert clean.stdout.strip().endswith("check passed")


def test_check_fails_clearly_without_a_database() -> None:
    finished = run_server("--check", "--conn", "postgresql://nobody@127.0.0.1:1/none", "--pool-timeout", "1")
    assert finished.returncode == 1
    assert "FAIL cannot connect to the database at 127.0.0.1:1" in finished.stdout
    assert "keeps retrying" not in finished.stdout  # a check does not
    assert finished.stdout.strip().endswith("check failed: the server cannot serve")
    malformed = run_server("--check", "--conn", "host=db port=abc = x")
    assert malformed.returncode == 1 and malformed.stdout == ""
    assert malformed.stderr.strip().splitlines() == [
        "postgres_server: --conn is not a valid PostgreSQL connection string (use "
        "postgresql://user:password@host:5432/dbname or 'host=... dbname=...')"
    ]
    unconfigured = run_server("--check")
    assert unconfigured.returncode == 1 and "FAIL no database" in unconfigured.stdout


def test_require_readonly_role_refuses_a_superuser(database_url: str) -> None:
    finished = run_server("--require-readonly-role", env={"DATABASE_URL": database_url})
    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert lines[-1].startswith("postgres_server: --require-readonly-role: user ")
    assert "role is a superuser" in lines[-1]


async def test_require_readonly_role_accepts_a_reader(reader_url: str) -> None:
    async with stdio("--require-readonly-role", DATABASE_URL=reader_url) as client:
        result = await client.call_tool("execute_sql", {"sql": "SELECT current_user"})
    assert result.structured_content["rows"] == [["mcp_test_reader"]]  # type: ignore[index]


@pytest.mark.slow
async def test_demo_serves_a_seeded_database() -> None:
    """The README's first command: an embedded, seeded PostgreSQL behind a SELECT-only role."""
    async with stdio("--demo") as client:
        schemas = await client.call_tool("list_schemas", {})
        join = await client.call_tool("execute_sql", {"sql": (
            "SELECT c.country, count(*) FROM shop.orders o JOIN shop.customers c ON c.id = o.customer_id "
            "GROUP BY 1 ORDER BY 1")})  # fmt: skip
        who = await client.call_tool("execute_sql", {"sql": "SELECT current_user"})
    names = {row[0] for row in schemas.structured_content["rows"]}  # type: ignore[index]
    assert {"shop", "hr", "analytics"} <= names
    assert len(join.structured_content["rows"]) == 5  # type: ignore[index]
    assert who.structured_content["rows"] == [["mcp_reader"]]  # type: ignore[index]


INITIALIZE = (
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},'
    '"clientInfo":{"name":"shell","version":"1"}}}\n{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
    '{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n'
)


def test_stdin_at_eof_ends_the_server_cleanly(database_url: str) -> None:
    import subprocess

    finished = subprocess.run([sys.executable, "-m", "postgres_server"], stdin=subprocess.DEVNULL, capture_output=True,
                              cwd=str(ROOT), env={"DATABASE_URL": database_url}, timeout=30, check=False)  # fmt: skip
    assert finished.returncode == 0 and b"Traceback" not in finished.stderr, finished.stderr.decode()[-2000:]


def test_stdout_to_a_file_works(database_url: str, tmp_path: Any) -> None:
    """A pipe in, a regular file out (`… > answers.jsonl`): the file gets every answer."""
    import subprocess

    out = tmp_path / "answers.jsonl"
    with out.open("wb") as sink:
        env = {"DATABASE_URL": database_url}
        server = subprocess.Popen([sys.executable, "-m", "postgres_server"], stdin=subprocess.PIPE, stdout=sink,
                                  stderr=subprocess.PIPE, cwd=str(ROOT), env=env)  # fmt: skip
        assert server.stdin is not None
        server.stdin.write(INITIALIZE.encode())
        server.stdin.flush()
        deadline = time.monotonic() + 30
        while out.read_bytes().count(b"\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        _, stderr = server.communicate(timeout=30)  # closes stdin: the server ends
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert [a["id"] for a in answers] == [1, 2] and len(answers[1]["result"]["tools"]) == len(ps.TOOL_NAMES)
    assert server.returncode == 0 and b"Traceback" not in stderr


def test_an_oversized_stdio_message_is_answered_and_serving_goes_on(database_url: str) -> None:
    """A 40 MB line (past the 16 MiB message limit) gets a JSON-RPC error; the next request is served, and the
    server never held the whole line (peak RSS)."""
    import subprocess

    server = subprocess.Popen([sys.executable, "-m", "postgres_server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=str(ROOT), env={"DATABASE_URL": database_url})  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    first, second, _ = INITIALIZE.splitlines()
    server.stdin.write(f"{first}\n{second}\n".encode())
    server.stdin.flush()
    answers = [json.loads(server.stdout.readline())]
    chunk = b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"sql":"' + b"x" * (1 << 20)
    for _ in range(40):
        server.stdin.write(chunk)
    server.stdin.write(b'"}}\n{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
    server.stdin.flush()
    answers += [json.loads(server.stdout.readline()) for _ in range(2)]
    with open(f"/proc/{server.pid}/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    server.stdin.close()
    assert server.wait(30) == 0
    assert answers[1] == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": answers[1]["error"]["message"]},
    }
    assert "refused unread" in answers[1]["error"]["message"]
    assert answers[2]["id"] == 2 and len(answers[2]["result"]["tools"]) == len(ps.TOOL_NAMES)
    assert peak_kb < 200_000, f"peak RSS {peak_kb} kB"  # ~95 MB idle; the 40 MB line never sat in memory whole


# Starts the server with the demo over stdio, waits for its first answers, says so, then waits to be killed.
DEMO_PARENT = f"""
import subprocess, sys, time
server = subprocess.Popen([sys.executable, "-m", "postgres_server", "--demo"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
server.stdin.write({INITIALIZE.encode()!r})
server.stdin.flush()
server.stdout.readline(), server.stdout.readline()
print(server.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["SIGTERM", "SIGINT", "stdin closed", "SIGKILL", "parent killed"])
def test_the_demo_database_is_gone_however_the_server_ends(tmp_path: Any, ending: str) -> None:
    """What Docker, systemd and Claude Code send, a closed stdin, a killed server and a killed parent (the
    server's stdin then closes) all leave no PostgreSQL running and no data directory behind."""
    import os
    import signal
    import subprocess

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = ["-c", DEMO_PARENT] if ending == "parent killed" else ["-m", "postgres_server", "--demo"]
    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    try:
        if ending == "parent killed":
            assert process.stdout.readline().strip().isdigit()  # the server's pid: it has answered
        else:
            process.stdin.write(INITIALIZE.encode())
            process.stdin.flush()
            answers = [json.loads(process.stdout.readline()) for _ in range(2)]
            assert answers[1]["id"] == 2, answers
        (datadir,) = tmp_path.glob("postgres-mcp-demo-*")
        postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
        if ending == "stdin closed":
            process.stdin.close()
        else:
            process.send_signal(signal.SIGKILL if ending == "parent killed" else getattr(signal, ending))
        process.wait(30)
    finally:
        process.kill()
        process.wait()

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 20
    while (datadir.exists() or alive(postmaster)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(postmaster), f"the demo's PostgreSQL ({postmaster}) still runs after {ending}"
    assert not datadir.exists(), f"{datadir} is still there after {ending}"
