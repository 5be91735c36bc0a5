"""Faults and malformed input: every request answered, nothing silently changed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest
from conftest import ROOT, SLOW_SQL, PrivateCluster, call, connect, ps, wait_for
from psycopg.conninfo import make_conninfo
from test_http import HANDSHAKE, http_app, http_config, initialize

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
HUGE = "9" * 4300
# (what is wrong, the raw message, the JSON-RPC error code, the id the answer carries)
MALFORMED: list[tuple[str, bytes, int, Any]] = [
    ("not JSON", b"SELECT 1", -32700, None),
    ("a scalar", b"42", -32600, None),
    ("a batch", b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]', -32600, None),
    ("no method", b'{"jsonrpc": "2.0", "id": 5}', -32600, 5),
    ("jsonrpc 1.0", b'{"jsonrpc": "1.0", "id": 6, "method": "ping"}', -32600, 6),
    ("a number as method", b'{"jsonrpc": "2.0", "id": 7, "method": 5}', -32600, 7),
    ("an object as id", b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}', -32600, None),
    ("params as a list", b'{"jsonrpc": "2.0", "id": 8, "method": "tools/list", "params": [1]}', -32602, 8),
    ("a lone surrogate", b'{"jsonrpc": "2.0", "id": 9, "method": "ping", "params": {"x": "\\ud800"}}', -32700, None),
    ("a 4,300-digit number", b'{"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": '
     b'"execute_sql", "arguments": {"sql": "SELECT 1", "max_rows": ' + HUGE.encode() + b"}}}", -32700, None),
    ("100,000-deep JSON", b"[" * 100_000 + b"]" * 100_000, -32700, None),
    ("invalid UTF-8", b'{"jsonrpc": "2.0", "id": 11, "method": "ping", "params": {"x": "\xff"}}', -32700, None),
]  # fmt: skip


def test_every_malformed_stdio_message_is_answered(database_url: str) -> None:
    """Each malformed line gets its JSON-RPC error (the SDK alone answered none of these), and serving goes on."""
    first = json.dumps({**initialize(), "id": 0}).encode()
    notified = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    lines = [first, notified, *(raw for _, raw, _, _ in MALFORMED), json.dumps(PING).encode()]
    done = subprocess.run([sys.executable, "-m", "postgres_server"], input=b"\n".join(lines) + b"\n", cwd=ROOT,
                          capture_output=True, timeout=60, env={"DATABASE_URL": database_url}, check=False)  # fmt: skip
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    errors = [answer for answer in answers if "error" in answer]  # answered as read, in order
    served = {answer["id"]: answer for answer in answers if "result" in answer}
    assert set(served) == {0, 99} and served[99]["result"] == {}
    for (case, _, code, request_id), answer in zip(MALFORMED, errors, strict=True):
        assert (answer["error"]["code"], answer["id"]) == (code, request_id), case
    assert done.returncode == 0 and b"Traceback" not in done.stderr


@pytest.mark.parametrize("stateless", [True, False])
async def test_every_malformed_http_message_is_answered(database_url: str, stateless: bool) -> None:
    config = http_config(database_url, stateless=stateless)
    headers = {**HANDSHAKE, "MCP-Protocol-Version": "2025-06-18"}
    async with http_app(config) as http:
        answers = [await http.post("/mcp", content=raw, headers=headers) for _, raw, _, _ in MALFORMED]
        oversized = await http.post("/mcp", content=b" " * (ps.MAX_MESSAGE_BYTES + 1), headers=headers)
        fine = await http.post("/mcp", json=initialize(), headers=headers)
    for (case, _, code, request_id), answer in zip(MALFORMED, answers, strict=True):
        assert answer.status_code == 400, case
        assert (answer.json()["error"]["code"], answer.json()["id"]) == (code, request_id), case
    assert oversized.status_code == 413 and oversized.json()["error"]["code"] == -32600
    assert fine.status_code == 200


async def test_text_postgres_cannot_take_as_sent_is_refused(config: ps.Config) -> None:
    """A NUL ends a string inside PostgreSQL: what ran would differ from what was sent. Refused, never cut."""
    async with connect(config) as client:
        nul_sql = await call(client, "execute_sql", sql="SELECT 1\x00; SELECT 2")
        nul_param = await call(client, "execute_sql", sql="SELECT $1::text", params=["a\x00b"])
        nul_name = await call(client, "describe_table", table="orders\x00")
        surrogate = await call(client, "execute_sql", sql="SELECT '\ud800'")
        nested = await call(client, "execute_sql", sql="SELECT $1::text[]", params=[["a", "b\x00c"]])
        in_object = await call(client, "execute_sql", sql="SELECT $1::jsonb", params=[{"k": "v\x00"}])
        fine = await call(client, "execute_sql", sql="SELECT $1::text", params=["a b"])
    assert nul_sql.is_error and "sql holds a NUL character (U+0000) at character 9" in nul_sql.text
    assert nul_param.is_error and "params[0] holds a NUL character (U+0000) at character 2" in nul_param.text
    assert nul_name.is_error and "table holds a NUL character" in nul_name.text
    assert surrogate.is_error and "an unpaired surrogate (U+D800) at character 9" in surrogate.text
    assert nested.is_error and "params[0][1] holds a NUL character (U+0000) at character 2" in nested.text
    assert in_object.is_error and "params[0].k holds a NUL character" in in_object.text
    assert fine.data["rows"] == [["a b"]]


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("SELECT * FROM orders WHERE", "syntax error at end of input"),
        ("SELECT 1 +", "syntax error at end of input"),
        ("SELECT count(*) FROM orders WHERE id IN (" + ",".join(map(str, range(15_000))) + ") AND", "end of input"),
        ("SELECT " + "+".join(["1"] * 20_000), "nested too deeply"),
        ("SELEC 1", 'syntax error at or near "SELEC"'),
    ],
)
async def test_parse_errors_of_every_kind_are_clear_refusals(config: ps.Config, sql: str, said: str) -> None:
    async with connect(config) as client:
        answer = await call(client, "execute_sql", sql=sql)
    assert answer.is_error and said in answer.text, answer.text[:300]
    assert "internal error" not in answer.text


@pytest.mark.parametrize(
    ("stop", "sqlstate", "said"),
    [("pg_terminate_backend", "57P01", "not retried"), ("pg_cancel_backend", "57014", "cancelled from outside")],
)
async def test_a_query_stopped_by_an_administrator_is_reported_at_once_and_never_rerun(
    cluster: PrivateCluster, stop: str, sqlstate: str, said: str
) -> None:
    """Before: a terminated query was run again on another backend and reported as a success 6 s later."""
    import anyio

    marker = f"mcp_{stop}"
    url = make_conninfo(cluster.url, application_name=marker)
    config = ps.Config(conn=url, pool_min=1, pool_max=2, statement_timeout_ms=8000)
    async with connect(config) as client:
        await call(client, "execute_sql", sql="SELECT 1")
        answered: list[Any] = []
        async with anyio.create_task_group() as group:

            async def slow() -> None:
                answered.extend([await call(client, "execute_sql", sql=SLOW_SQL), time.monotonic()])

            group.start_soon(slow)
            assert await wait_for(lambda: len(cluster.backends(marker)) == 1)
            (pid,) = cluster.backends(marker)
            stopped_at = time.monotonic()
            with psycopg.connect(cluster.url, autocommit=True) as admin_conn:
                admin_conn.execute(f"SELECT {stop}(%s)", [pid])  # type: ignore[arg-type]
        answer, reported_after = answered[0], answered[1] - stopped_at
        rerun = await wait_for(lambda: bool(cluster.backends(marker)), 1)
        after = await call(client, "execute_sql", sql="SELECT 2")
    assert answer.is_error and f"ERROR {sqlstate}" in answer.text and said in answer.text, answer.text
    assert not rerun, "the stopped query ran again"
    assert reported_after < 2, reported_after
    assert after.data["rows"] == [[2]]


async def test_calls_are_served_as_soon_as_the_database_is_back(cluster: PrivateCluster) -> None:
    """A restart breaks every pooled connection: the first call after it is served (its broken connection never
    ran anything, so the call moves to a fresh one). A call queued while the database is down is served within a
    fraction of a second of its return (before: about 5 s of failures)."""
    import anyio

    config = ps.Config(conn=cluster.url, pool_min=2, pool_max=3, pool_timeout_s=10)
    async with connect(config) as client:
        assert (await call(client, "execute_sql", sql="SELECT 1")).data["rows"] == [[1]]
        cluster.pg_ctl("restart")
        first = await call(client, "execute_sql", sql="SELECT 2")
        cluster.pg_ctl("stop")
        queued: list[Any] = []
        async with anyio.create_task_group() as group:

            async def during_outage() -> None:
                queued.append(await call(client, "execute_sql", sql="SELECT 3"))
                queued.append(time.monotonic())

            group.start_soon(during_outage)
            await anyio.sleep(3)
            cluster.pg_ctl("start")
            back_at = time.monotonic()
        listed = await call(client, "list_schemas")
    assert first.data["rows"] == [[2]], first.text
    assert queued[0].data["rows"] == [[3]], queued[0].text
    assert queued[1] - back_at < 1.0, f"served {queued[1] - back_at:.2f} s after the database was back"
    assert not listed.is_error


# About a second of work: still running when the server is told to stop, done well within the grace period.
SECOND_SQL = "SELECT count(*) FROM (SELECT generate_series(1, 40000000)) s"


@pytest.mark.parametrize("stateless", [False, True])
async def test_sigterm_lets_calls_finish_and_answers_the_rest(database_url: str, stateless: bool) -> None:
    """SIGTERM over HTTP: a call that finishes within MCP_SHUTDOWN_GRACE_S is answered normally; one still running
    after it is cancelled inside PostgreSQL and answered with an error saying why; the server exits 0 (before:
    stateful mode dropped the calls in flight)."""
    import signal

    import anyio
    import httpx2
    from conftest import active_queries, server_process
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    marker = f"sigterm_{int(stateless)}"
    env = {"DATABASE_URL": make_conninfo(database_url, application_name=marker), "MCP_API_TOKEN": "t",
           "MCP_SHUTDOWN_GRACE_S": "3", "MCP_STATELESS": str(stateless).lower()}  # fmt: skip
    with server_process(env) as (process, base):
        http = httpx2.AsyncClient(headers={"Authorization": "Bearer t"}, timeout=60)
        answers: dict[str, Any] = {}
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy") as client:
            await call(client, "execute_sql", sql="SELECT 1")
            async with anyio.create_task_group() as group:

                async def run(name: str, sql: str) -> None:
                    answers[name] = await call(client, "execute_sql", sql=sql)

                group.start_soon(run, "short", SECOND_SQL)
                group.start_soon(run, "long", SLOW_SQL)
                assert await wait_for(lambda: active_queries(database_url, marker) == 2)
                process.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
            status = await anyio.to_thread.run_sync(process.wait, 15)
            exited_after = time.monotonic() - stopped_at
    assert answers["short"].data["rows"] == [[40_000_000]], answers["short"].text
    assert answers["long"].is_error and "the server is shutting down" in answers["long"].text
    assert "MCP_SHUTDOWN_GRACE_S" in answers["long"].text
    assert status == 0 and exited_after < 3 + 3, exited_after
    assert active_queries(database_url, marker) == 0


def test_sigterm_on_stdio_answers_every_call_in_flight(database_url: str) -> None:
    import signal

    server = subprocess.Popen([sys.executable, "-m", "postgres_server"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                              env={"DATABASE_URL": database_url, "MCP_SHUTDOWN_GRACE_S": "2"})  # fmt: skip
    assert server.stdin is not None and server.stdout is not None
    calls = [{"jsonrpc": "2.0", "id": n, "method": "tools/call",
              "params": {"name": "execute_sql", "arguments": {"sql": sql}}}
             for n, sql in ((2, SECOND_SQL), (3, SLOW_SQL))]  # fmt: skip
    lines = [{**initialize(), "id": 1}, {"jsonrpc": "2.0", "method": "notifications/initialized"}, *calls]
    server.stdin.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    server.stdin.flush()
    assert json.loads(server.stdout.readline())["id"] == 1
    time.sleep(0.5)
    server.send_signal(signal.SIGTERM)
    answers = {answer["id"]: answer["result"] for answer in map(json.loads, server.stdout.read().splitlines())}
    assert server.wait(10) == 0
    assert answers[2]["structuredContent"]["rows"] == [[40_000_000]]
    assert answers[3]["isError"] and "the server is shutting down" in answers[3]["content"][0]["text"]


async def test_ready_follows_the_database(cluster: PrivateCluster) -> None:
    from test_http import http_app

    config = ps.Config(conn=cluster.url, transport="streamable-http", pool_min=1, pool_timeout_s=2)
    async with http_app(config, token=None) as http:
        before = (await http.get("/ready")).status_code
        cluster.pg_ctl("stop")
        down = await http.get("/ready")
        cluster.pg_ctl("start")
        back_at = time.monotonic()
        while (await http.get("/ready")).status_code != 200 and time.monotonic() - back_at < 5:
            pass
        ready_after = time.monotonic() - back_at
    assert before == 200 and down.status_code == 503 and "cannot connect" in down.json()["reason"]
    assert ready_after < 1, ready_after


def test_the_pools_reconnection_warnings_are_thinned(caplog: pytest.LogCaptureFixture) -> None:
    """While the database is away the pool warns at every attempt (four a second): one line per 30 s is kept."""
    import logging

    ps.configure_logging("INFO")
    with caplog.at_level(logging.WARNING, logger="psycopg.pool"):
        for attempt in range(10):
            logging.getLogger("psycopg.pool").warning("error connecting in %r: attempt %s", "thinned-test", attempt)
    assert [r.getMessage() for r in caplog.records if r.name == "psycopg.pool"] == [
        "error connecting in 'thinned-test': attempt 0"
    ]


async def test_an_unauthenticated_body_is_refused_before_it_is_read(database_url: str) -> None:
    """The message check sits inside the SDK's auth check: without a token, even a malformed or oversized body
    gets 401, never buffered or parsed."""
    async with http_app(http_config(database_url), token=None) as http:
        garbage = await http.post("/mcp", content=b"SELECT 1", headers=HANDSHAKE)
        big = await http.post("/mcp", content=b" " * (ps.MAX_MESSAGE_BYTES + 1), headers=HANDSHAKE)
    assert garbage.status_code == 401 and big.status_code == 401


async def test_large_bodies_at_once_are_bounded_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each body is capped, and so are all bodies being read at once: many clients trickling large bodies cannot
    add up to any size. Here the shared budget is 200 bytes: the second body that would pass it gets 503, and
    what was counted is given back once a request is done."""
    import anyio

    monkeypatch.setattr(ps, "MAX_BUFFERED_BYTES", 200)
    served: list[bytes] = []

    async def app(_scope: Any, receive: Any, _send: Any) -> None:
        served.append((await receive())["body"])

    check = ps.MessageCheck(app)
    answers: list[int] = []
    hold = anyio.Event()

    def client(chunks: list[bytes], wait: bool) -> Any:
        pending = list(chunks)

        async def receive() -> dict[str, Any]:
            if not pending:  # the body is read: as a server does, wait for the client to leave
                await anyio.sleep_forever()
            if wait and len(pending) == 1:
                await hold.wait()  # stays mid-body, its first chunk counted
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        return receive

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    scope = {"type": "http", "method": "POST", "headers": []}
    ping = json.dumps(PING).encode()
    async with anyio.create_task_group() as group:
        group.start_soon(check, scope, client([b" " * 80, ping], True), send)
        await anyio.sleep(0.05)
        await check(scope, client([b" " * 150, ping], False), send)  # 80 + 150 > 200
        hold.set()
    await check(scope, client([ping], False), send)
    assert answers == [503] and check.buffered == 0 and len(served) == 2
