"""Streamable HTTP through the real ASGI app and the real MCP client: auth, probes, host checks, both eras."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.client import HTTPConnection
from typing import Any

import httpx2
import pytest
from conftest import READER_ROLE, TOOL_CALLS, active_queries, cancel_midway, free_port, ps, server_process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

BASE = "http://127.0.0.1:8000"
TOKEN = "test-token-7f3a"
HANDSHAKE = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def initialize(version: str = "2025-06-18") -> dict[str, Any]:
    client = {"name": "raw", "version": "1"}
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": client}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


@contextlib.asynccontextmanager
async def http_app(config: ps.Config, token: str | None = TOKEN) -> AsyncIterator[httpx2.AsyncClient]:
    """The real Starlette app with its lifespan running, and an HTTP client wired to it in memory."""
    app = ps.build_http_app(config)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE, headers=headers) as http:
            yield http


@contextlib.asynccontextmanager
async def mcp_over_http(config: ps.Config, mode: str = "legacy", token: str | None = TOKEN) -> AsyncIterator[Client]:
    async with (
        http_app(config, token) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
    ):
        yield client


def http_config(database_url: str, **overrides: Any) -> ps.Config:
    return ps.Config(conn=database_url, transport="streamable-http", api_token=TOKEN, **overrides)


@pytest.mark.parametrize("stateless", [False, True])
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_every_tool_over_http(database_url: str, stateless: bool, mode: str) -> None:
    config = http_config(database_url, stateless=stateless)
    async with mcp_over_http(config, mode) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        results = {name: await client.call_tool(name, args) for name, args in TOOL_CALLS.items()}
    assert tools == set(TOOL_CALLS)
    assert not any(r.is_error for r in results.values())
    assert results["execute_sql"].structured_content["rows"] == [[42]]  # type: ignore[index]


async def test_missing_or_wrong_token_is_401(database_url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with http_app(http_config(database_url), token=None) as http:
        missing = await http.post("/mcp", json=body, headers=HANDSHAKE)
        wrong = await http.post("/mcp", json=body, headers={**HANDSHAKE, "Authorization": "Bearer nope"})
        health = await http.get("/health", headers={"Authorization": "Bearer nope"})
    for response in (missing, wrong):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200  # a bad token never breaks the open routes


async def test_token_verifier_never_raises() -> None:
    verifier = ps.BearerVerifier(ps.Config(api_token=TOKEN), None)
    for token in ["", "ünïcødé", "\x00" * 5, TOKEN[:-1], TOKEN + "x", "a" * 100_000]:
        assert await verifier.verify_token(token) is None
    accepted = await verifier.verify_token(TOKEN)
    assert accepted is not None and accepted.client_id == "static-token"


async def test_health_and_ready(database_url: str, reader_url: str) -> None:
    async with http_app(http_config(database_url), token=None) as http:
        health = await http.get("/health")
        ready = await http.get("/ready")
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["read_only_role"] is False and "role is a superuser" in ready.json()["warnings"]
    assert ready.json()["calls_run_as"] == "pg_read_all_data"  # the privilege drop
    assert ready.json()["work_mem"] == "16MB" and ready.json()["temp_file_limit"] == "256MB"
    async with http_app(http_config(reader_url), token=None) as http:
        reader = (await http.get("/ready")).json()
    assert reader["read_only_role"] is True and reader["warnings"] == []
    assert reader["user"] == reader["calls_run_as"] == READER_ROLE  # nothing to drop


async def test_ready_is_503_without_a_database() -> None:
    config = ps.Config(conn="postgresql://nobody@127.0.0.1:1/none", transport="streamable-http", pool_timeout_s=1)
    async with http_app(config, token=None) as http:
        ready = await http.get("/ready")
        health = await http.get("/health")
    assert ready.status_code == 503 and "cannot connect" in ready.json()["reason"]
    assert health.status_code == 200


async def test_dns_rebinding_guard(database_url: str) -> None:
    config = http_config(database_url, public_url="https://mcp.example.com")
    body = initialize()
    async with http_app(config) as http:
        evil = await http.post("/mcp", json=body, headers={**HANDSHAKE, "Host": "evil.example"})
        public = await http.post("/mcp", json=body, headers={**HANDSHAKE, "Host": "mcp.example.com"})
        local = await http.post("/mcp", json=body, headers={**HANDSHAKE, "Host": "localhost:8000"})
    assert evil.status_code == 421
    assert public.status_code == 200 and local.status_code == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "127.0.0.1:8000@evil.example", "localhost:8000/x", "localhost:80000", "", "a b", "[::1"]
)
async def test_host_is_checked_strictly_before_any_routing(database_url: str, host: str) -> None:
    async with http_app(http_config(database_url)) as http:
        for method, path in (("GET", "/mcp/"), ("GET", "/mcp"), ("POST", "/mcp"), ("GET", "/.well-known/x")):
            response = await http.request(method, path, headers={"Host": host}, follow_redirects=False)
            assert response.status_code == 421, (method, path, host, response.status_code)
        probe = await http.get("/health", headers={"Host": host})
    assert probe.status_code == 200


def test_host_parsing() -> None:
    allowed = ["localhost", "localhost:*", "mcp.example.com"]
    assert ps.host_answered("LOCALHOST:8000", allowed) and ps.host_answered("mcp.example.com", allowed)
    assert not ps.host_answered("mcp.example.com:8443", allowed)  # only the port it was given
    assert not ps.host_answered("localhost:8000@evil.example", allowed)


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_raw_handshake_of_each_protocol_revision(database_url: str, version: str) -> None:
    """Clients of every 2024-2025 revision initialize and call a tool (stateless JSON keeps it simple)."""
    config = http_config(database_url, stateless=True)
    init = initialize(version)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "execute_sql", "arguments": {"sql": "SELECT 'ok' AS answer"}}}  # fmt: skip
    async with http_app(config) as http:
        started = await http.post("/mcp", json=init, headers=HANDSHAKE)
        headers = {**HANDSHAKE, "MCP-Protocol-Version": version}
        result = await http.post("/mcp", json=call, headers=headers)
    assert started.status_code == 200 and started.json()["result"]["protocolVersion"] == version
    payload = result.json()["result"]
    assert payload["structuredContent"]["rows"] == [["ok"]]
    assert payload["content"][0]["text"].startswith("answer (text)")


@contextlib.contextmanager
def uvicorn_server(config: ps.Config) -> Iterator[str]:
    """The real server on a real socket, in a thread (for what in-memory transports cannot show)."""
    import uvicorn

    server = uvicorn.Server(ps.uvicorn_config(config, ps.build_http_app(config)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_both_eras_over_a_real_socket(database_url: str, mode: str) -> None:
    """Stateful sessions (SSE in the 2025 eras) through uvicorn with its uvloop event loop and httptools parser."""
    config = http_config(database_url, port=free_port())
    with uvicorn_server(config) as base:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
            tools = await client.list_tools()
            result = await client.call_tool("execute_sql", {"sql": "SELECT count(*) FROM shop.orders"})
    assert len(tools.tools) == len(ps.TOOL_NAMES) and not result.is_error
    assert result.structured_content is not None and result.structured_content["rows"] == [[2000]]


async def test_closed_http_response_cancels_the_query(database_url: str) -> None:
    """2026-07-28 clients cancel by closing the response: the query must stop inside Postgres too."""
    from psycopg.conninfo import make_conninfo

    marker = "http_cancel_me"
    config = http_config(make_conninfo(database_url, application_name=marker), port=free_port(), pool_min=1, pool_max=1)
    with uvicorn_server(config) as base:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="auto") as client:
            stopped = await cancel_midway(client, lambda: active_queries(database_url, marker) == 1)
            after = await client.call_tool("execute_sql", {"sql": "SELECT 1"})
    assert stopped and not after.is_error


def test_serve_over_a_real_socket_and_log_one_line_per_call(database_url: str) -> None:
    """End to end in a process of its own: uvicorn + bearer token + raw JSON-RPC over TCP. Its stderr holds one
    line per tool call, naming the tool, the token's principal and the outcome; a call refused at the door
    (no token) never reaches a tool and is not logged as one."""
    import httpx

    def tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": arguments}}

    calls = [("execute_sql", {"sql": "SELECT 1"}), ("list_tables", {"schema": "shop"}),
             ("execute_sql", {"sql": "DELETE FROM t"}), ("execute_sql", {"sql": "SELECT * FROM nope"})]  # fmt: skip
    env = {"DATABASE_URL": database_url, "MCP_STATELESS": "true", "MCP_API_TOKEN": TOKEN}
    headers = {**HANDSHAKE, "Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": "2025-06-18"}
    with server_process(env) as (server, base):
        started = httpx.post(f"{base}/mcp", json=initialize(), headers=headers)
        unauthorized = httpx.post(f"{base}/mcp", json=tool_call("execute_sql", {"sql": "SELECT 2"}), headers=HANDSHAKE)
        answered = [httpx.post(f"{base}/mcp", json=tool_call(*call), headers=headers) for call in calls]
    assert started.status_code == 200 and json.loads(started.text)["result"]["serverInfo"]["name"] == ps.SERVER_NAME
    assert unauthorized.status_code == 401 and [answer.status_code for answer in answered] == [200] * len(calls)
    stderr = server.stderr.read().decode()  # the server has ended: all of it
    logged = [line.split(" postgres_mcp: ", 1)[1] for line in stderr.splitlines() if " postgres_mcp: tool=" in line]
    assert [re.sub(r" ms=[\d.]+ ", " ", line) for line in logged] == [
        "tool=execute_sql principal=static-token rows=1 truncated=false error=-",
        "tool=list_tables principal=static-token rows=6 truncated=false error=-",
        "tool=execute_sql principal=static-token rows=0 truncated=false error=refused",
        "tool=execute_sql principal=static-token rows=0 truncated=false error=42P01",
    ], stderr


WORKER_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "execute_sql", "arguments": {"sql": "SELECT pg_backend_pid()"}}}  # fmt: skip
WORKER_HEADERS = {**HANDSHAKE, "Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": "2025-06-18"}


@pytest.fixture
def two_workers(database_url: str) -> Iterator[tuple[Any, str]]:
    """--stateless --workers 2, each worker with a single-connection pool: a backend pid names a worker."""
    env = {"DATABASE_URL": database_url, "MCP_STATELESS": "true", "MCP_WORKERS": "2", "MCP_POOL_MIN": "1",
           "MCP_POOL_MAX": "1", "MCP_API_TOKEN": TOKEN}  # fmt: skip
    with server_process(env) as served:
        yield served


def raw_backend_pid(connection: HTTPConnection) -> int:
    connection.request("POST", "/mcp", json.dumps(WORKER_CALL), WORKER_HEADERS)
    return json.loads(connection.getresponse().read())["result"]["structuredContent"]["rows"][0][0]


def backend_pid(client: Any, base: str) -> int:
    answer = client.post(f"{base}/mcp", json=WORKER_CALL, headers=WORKER_HEADERS).json()
    return answer["result"]["structuredContent"]["rows"][0][0]


def test_two_worker_processes_serve_one_client_population(two_workers: tuple[Any, str]) -> None:
    """Any worker answers any request, whether clients connect afresh or keep their connections alive."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    server, base = two_workers

    def fresh_connection(_: int) -> int:
        with httpx.Client() as client:
            return backend_pid(client, base)

    with ThreadPoolExecutor(8) as pool:
        fresh = set(pool.map(fresh_connection, range(200)))
    # A burst of connections kept alive: with one listener shared by the workers, the first to wake accepted
    # them all and the other idled.
    host, port = base.removeprefix("http://").split(":")
    burst = [HTTPConnection(host, int(port), timeout=30) for _ in range(16)]
    for connection in burst:
        connection.connect()
    try:
        kept_alive = {raw_backend_pid(connection) for connection in burst}
    finally:
        for connection in burst:
            connection.close()
    server.terminate()
    assert server.wait(10) == 0
    assert len(fresh) == 2, fresh  # two workers, one pooled connection each: both served
    assert kept_alive == fresh, kept_alive


def test_a_dead_worker_stops_the_server(two_workers: tuple[Any, str]) -> None:
    """A worker that dies takes the server down (exit 1) for its supervisor to restart, never half-serving."""
    import os
    import signal

    server, _ = two_workers
    with open(f"/proc/{server.pid}/task/{server.pid}/children") as listing:
        workers = [int(pid) for pid in listing.read().split()]
    os.kill(workers[-1], signal.SIGKILL)
    assert server.wait(10) == 1
    assert b"a worker process ended unexpectedly" in server.stderr.read()


@pytest.mark.parametrize(("workers", "shared"), [(1, False), (2, False), (2, True)])
def test_a_taken_port_fails_the_start_with_one_line(workers: int, shared: bool) -> None:
    """Also when the port's holder shares it (SO_REUSEPORT, as another server's workers would): never join it."""
    import socket
    import subprocess
    import sys

    from conftest import ROOT

    with socket.socket() as taken:
        if shared:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "MCP_TRANSPORT": "streamable-http", "MCP_PORT": str(port),
               "MCP_STATELESS": "true", "MCP_WORKERS": str(workers)}  # fmt: skip
        run = subprocess.run([sys.executable, str(ROOT / "postgres_server.py")], env=env, capture_output=True,
                             timeout=60, check=False)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.decode().strip().splitlines()[-1] == (
        f"{ps.PROG}: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


def test_workers_need_stateless_http() -> None:
    """The message names the setting as the operator gave it: the flag, or the variable."""
    with pytest.raises(ps.ConfigError) as by_flag:
        ps.load_config(["--transport", "streamable-http", "--workers", "2"], environ={})
    with pytest.raises(ps.ConfigError) as by_variable:
        ps.load_config([], environ={"MCP_WORKERS": "3"})
    assert str(by_flag.value) == ("--workers 2 needs --transport streamable-http and --stateless (sessions live in "
                                  "one process)")  # fmt: skip
    assert str(by_variable.value).startswith("MCP_WORKERS 3 needs --transport streamable-http and --stateless")


async def test_one_principal_cannot_take_the_whole_pool(database_url: str) -> None:
    """Pool of 2: alice's share is 1 call in flight; her second waits for it (here, past the pool timeout),
    while bob's runs at once."""
    import anyio
    from conftest import SLOW_SQL
    from test_oauth import Provider, oauth_config, served

    provider = Provider()
    config = oauth_config(conn=database_url, stateless=True, pool_max=2, pool_timeout_s=1, statement_timeout_ms=4000)
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip

    def sql_call(sql: str) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "execute_sql", "arguments": {"sql": sql}}}  # fmt: skip

    async with served(provider, config) as http:
        alice = {**headers, "Authorization": f"Bearer {provider.mint(sub='alice')}"}
        bob = {**headers, "Authorization": f"Bearer {provider.mint(sub='bob')}"}
        await http.post("/mcp", json=sql_call("SELECT 1"), headers=alice)  # posture and catalog loaded
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: http.post("/mcp", json=sql_call(SLOW_SQL), headers=alice))
            await anyio.sleep(0.5)
            second = (await http.post("/mcp", json=sql_call("SELECT 2"), headers=alice)).json()["result"]
            other = (await http.post("/mcp", json=sql_call("SELECT 3"), headers=bob)).json()["result"]
    assert second["isError"] and "server busy for you: 1 of your calls stayed in flight" in second["content"][0]["text"]
    assert other["structuredContent"]["rows"] == [[3]]


def test_stateful_sessions_are_bounded_in_number_and_idle_time() -> None:
    config = ps.Config(transport="streamable-http", session_idle_timeout_s=60, max_sessions=7)
    server = ps.build_server(config)
    ps.build_http_app(config, server)
    manager = server.session_manager
    assert (manager.session_idle_timeout, manager.max_sessions) == (60, 7)


async def test_sessions_per_principal_are_capped_and_half_open_ones_end(database_url: str) -> None:
    """alice may hold 3 sessions: her 4th gets 429 while bob opens his; sessions that never follow their
    initialize with a request end after MCP_SESSION_INIT_TIMEOUT_S (a DELETE as their owner), one that does
    stays, and alice can open sessions again."""
    import anyio
    from test_oauth import Provider, oauth_config, served

    provider = Provider()
    config = oauth_config(conn=database_url, max_sessions_per_principal=3, session_init_timeout_s=2)
    headers = {**HANDSHAKE, "MCP-Protocol-Version": "2025-06-18"}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    async with served(provider, config) as http:
        alice = {**headers, "Authorization": f"Bearer {provider.mint(sub='alice')}"}
        bob = {**headers, "Authorization": f"Bearer {provider.mint(sub='bob')}"}
        opened = [await http.post("/mcp", json=initialize(), headers=alice) for _ in range(4)]
        by_bob = await http.post("/mcp", json=initialize(), headers=bob)
        kept = opened[0].headers["mcp-session-id"]
        used = await http.post("/mcp", json=initialized, headers={**alice, "mcp-session-id": kept})
        await anyio.sleep(3.5)
        unused = opened[1].headers["mcp-session-id"]
        half_open = await http.post("/mcp", json=initialized, headers={**alice, "mcp-session-id": unused})
        still = await http.post("/mcp", json={**initialize(), "method": "ping", "id": 2},
                                headers={**alice, "mcp-session-id": kept})  # fmt: skip
        again = await http.post("/mcp", json=initialize(), headers=alice)
    assert [r.status_code for r in opened] == [200, 200, 200, 429] and by_bob.status_code == 200
    assert "too many open sessions: you hold 3 (MCP_MAX_SESSIONS_PER_PRINCIPAL)" in opened[3].text
    assert used.status_code == 202 and still.status_code == 200
    assert half_open.status_code == 404 and again.status_code == 200


def test_a_connection_that_trickles_its_headers_is_closed(database_url: str, monkeypatch: Any) -> None:
    """uvicorn waits for request headers forever; the server closes a connection that has not sent them within
    HEADER_TIMEOUT_S, so slow-header floods cannot pile up connections. Complete requests are unaffected."""
    import socket

    import httpx

    monkeypatch.setattr(ps, "HEADER_TIMEOUT_S", 1)
    config = http_config(database_url, port=free_port())
    with uvicorn_server(config) as base:
        slow = [socket.create_connection((config.host, config.port)) for _ in range(20)]
        for conn in slow:
            conn.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_at: dict[int, float] = {}
        started = time.monotonic()
        while len(closed_at) < len(slow) and time.monotonic() - started < 5:
            for index, conn in enumerate(slow):
                if index in closed_at:
                    continue
                with contextlib.suppress(OSError):
                    conn.sendall(b"X")  # one byte a tick: never a whole header
                conn.settimeout(0.05)
                with contextlib.suppress(TimeoutError):
                    if conn.recv(1) == b"":
                        closed_at[index] = time.monotonic() - started
        healthy = httpx.get(f"{base}/health")
        for conn in slow:
            conn.close()
    assert len(closed_at) == len(slow) and max(closed_at.values()) < 3, closed_at
    assert healthy.status_code == 200


def test_a_session_flood_over_a_real_socket_is_capped_and_reclaimed(database_url: str) -> None:
    """One token opening sessions and never using them: past its cap it gets 429; the half-open ones end after
    MCP_SESSION_INIT_TIMEOUT_S, and then it can open sessions again."""
    import httpx

    config = http_config(database_url, port=free_port(), max_sessions_per_principal=5, session_init_timeout_s=3)
    headers = {**HANDSHAKE, "Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": "2025-06-18"}
    with uvicorn_server(config) as base, httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        flood = [http.post("/mcp", json=initialize()).status_code for _ in range(8)]
        time.sleep(4.5)
        after = [http.post("/mcp", json=initialize()).status_code for _ in range(5)]
    assert flood == [200] * 5 + [429] * 3 and after == [200] * 5


MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
               "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip


def slow_call(era: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A tools/call of SLOW_SQL as a raw client of `era` sends it: (body, extra headers)."""
    from conftest import SLOW_SQL

    params: dict[str, Any] = {"name": "execute_sql", "arguments": {"sql": SLOW_SQL}}
    if era == "2026-07-28":
        params["_meta"] = MODERN_META
        return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}, {
            "Mcp-Method": "tools/call", "Mcp-Name": "execute_sql"}  # fmt: skip
    return {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}, {}


@pytest.mark.parametrize(("stateless", "era"), [(False, "2025-06-18"), (True, "2025-06-18"), (True, "2026-07-28"),
                                                (False, "2026-07-28")])  # fmt: skip
def test_a_closed_connection_cancels_its_query_in_every_mode(database_url: str, stateless: bool, era: str) -> None:
    """A client that closes its connection mid-call: the query stops inside PostgreSQL within a second and its
    pooled connection is free (before: in three of these four modes it ran on)."""
    from psycopg.conninfo import make_conninfo

    marker = f"disconnect_{int(stateless)}_{era[:4]}"
    config = http_config(make_conninfo(database_url, application_name=marker), port=free_port(), stateless=stateless,
                         pool_min=1, pool_max=1)  # fmt: skip
    headers = {**HANDSHAKE, "Authorization": f"Bearer {TOKEN}", "MCP-Protocol-Version": era}
    with uvicorn_server(config) as base:
        connection = HTTPConnection(config.host, config.port, timeout=30)
        if not stateless and era != "2026-07-28":  # a session: initialize, initialized, then the call on it
            connection.request("POST", "/mcp", json.dumps(initialize(era)), headers)
            answer = connection.getresponse()
            answer.read()
            headers["mcp-session-id"] = answer.getheader("mcp-session-id") or ""
            connection.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                               headers)  # fmt: skip
            connection.getresponse().read()
        body, extra = slow_call(era)
        connection.request("POST", "/mcp", json.dumps(body), {**headers, **extra})
        deadline = time.monotonic() + 10
        while active_queries(database_url, marker) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert active_queries(database_url, marker) == 1, "the query never started"
        connection.close()
        closed_at = time.monotonic()
        while active_queries(database_url, marker) and time.monotonic() - closed_at < 5:
            time.sleep(0.02)
        stopped_after = time.monotonic() - closed_at
        import httpx

        quick = {**body["params"], "arguments": {"sql": "SELECT 1"}}
        after = httpx.post(f"{base}/mcp", json={**body, "params": quick}, headers={**headers, **extra}, timeout=30)
    assert stopped_after < 1, f"still running {stopped_after:.1f} s after the client left"
    assert after.status_code == 200
