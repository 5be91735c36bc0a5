"""The production topology, end to end: Debian's nginx running deploy/nginx.conf (TLS ends there) in front of two
--stateless replicas of the server (processes of their own), which reach PostgreSQL through PgBouncer in
transaction mode. Everything listens on loopback ports the test picks, and everything stops afterwards.

nginx runs the file verbatim but for its listen ports, certificate paths and replica addresses. The public name
is never resolved: the test's client connects to nginx's loopback port and sends that name as a client of the real
deployment would (Host header, TLS SNI), and checks the certificate for it.

Without nginx or pgbouncer (Debian packages) the module is skipped locally, and fails under CI, which installs
them; the OAuth test likewise needs the certified provider (Node.js and tests/oidc's packages).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.client import HTTPSConnection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import httpx2
import psycopg
import pytest
from conftest import ROOT, SLOW_SQL, TOOL_CALLS, cancel_midway, free_port, pgbouncer, ps, system_binary, wait_for
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from psycopg.conninfo import make_conninfo

pytestmark = pytest.mark.anyio

CONFIG = ROOT / "deploy" / "nginx.conf"
PUBLIC_HOST = "mcp.example.com"  # deploy/nginx.conf's server_name, kept
ALIAS_HOST = "postgres-mcp.example.com"  # a second name the replicas answer to (MCP_ALLOWED_HOSTS)
TOKEN = "topology-token-5d1c"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LEGACY = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
          "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
MODERN_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
               "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip


def sql_call(sql: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "execute_sql", "arguments": {"sql": sql}}}  # fmt: skip


def certificate(directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for the public names and 127.0.0.1: (certificate file, key file, PEM to trust)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, PUBLIC_HOST)])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName(PUBLIC_HOST), x509.DNSName(ALIAS_HOST), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    issued = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(key, hashes.SHA256()))  # fmt: skip
    pem = issued.public_bytes(serialization.Encoding.PEM).decode()
    (directory / "tls.pem").write_text(pem)
    (directory / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))  # fmt: skip
    (directory / "tls.key").chmod(0o600)
    return directory / "tls.pem", directory / "tls.key", pem


class PublicName(httpx2.AsyncBaseTransport):
    """Connects to nginx on loopback for the public names, still sending the name (Host, SNI) and checking the
    certificate for it: a client of the deployment, without a DNS entry."""

    def __init__(self, trust: str) -> None:
        self.inner = httpx2.AsyncHTTPTransport(verify=ssl.create_default_context(cadata=trust))

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.host in (PUBLIC_HOST, ALIAS_HOST):
            request.extensions = {**request.extensions, "sni_hostname": request.url.host}
            request.url = request.url.copy_with(host="127.0.0.1")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Replica:
    """One server process (--stateless) on a loopback port of its own; it can be killed and started again there."""

    def __init__(self, name: str, env: dict[str, str], logs: Path) -> None:
        self.name, self.port, self.log = name, free_port(), logs / f"{name}.log"
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MCP_TRANSPORT": "streamable-http",
                    "MCP_STATELESS": "true", "MCP_HOST": "127.0.0.1", "MCP_PORT": str(self.port), **env}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "postgres_server"], env=self.env, cwd=ROOT,
                                            stdout=subprocess.DEVNULL, stderr=log)  # fmt: skip

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"replica {self.name} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    return
            time.sleep(0.05)
        pytest.fail(f"replica {self.name} did not answer /health within 20 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        if self.process is not None:
            self.process.wait(15)

    def logged(self, text: str) -> bool:
        return text in self.log.read_text()


@dataclass
class Topology:
    port: int  # nginx's TLS port
    http_port: int  # its plain-HTTP port (redirects only)
    trust: str  # the certificate, as PEM
    replicas: list[Replica]
    nginx_errors: Path  # nginx's error log

    @property
    def public(self) -> str:
        return f"https://{PUBLIC_HOST}:{self.port}"

    def client(self, **options: Any) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=PublicName(self.trust), timeout=30, **options)

    @contextlib.asynccontextmanager
    async def mcp(self, mode: str) -> AsyncIterator[Client]:
        """The SDK's client, with the bearer token, through nginx."""
        async with (
            self.client(headers=BEARER) as http,
            Client(streamable_http_client(f"{self.public}/mcp", http_client=http), mode=mode) as client,  # type: ignore[arg-type]
        ):
            yield client


@contextlib.contextmanager
def nginx(binary: str, workdir: Path, site: str, ports: tuple[int, ...]) -> Iterator[Path]:
    """nginx in the foreground, everything it writes (pid, logs, request bodies) in `workdir`; `site` (an http-context
    file) is included as an operator's conf.d file is. Yields its error log."""
    (workdir / "postgres-mcp.conf").write_text(site)
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""  # as root, its workers drop to nobody
    (workdir / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {workdir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/access.log;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/postgres-mcp.conf;
}}
""")
    errors = workdir / "error.log"
    command = [binary, "-e", str(errors), "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, f"nginx -t refused the configuration: {checked.stderr}"
    process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        for port in ports:
            while not port_open(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"nginx did not start: {errors.read_text() if errors.exists() else ''}")
                time.sleep(0.02)
        yield errors
    finally:
        process.terminate()  # fast shutdown
        process.wait(10)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def topology(bouncer: str, label: str, env: dict[str, str], port: int | None = None) -> Iterator[Topology]:
    """Two replicas named `<label>_a` and `_b` (DATABASE_URL: PgBouncer, with their name as application_name;
    MCP_PUBLIC_URL: nginx's public URL; plus `env`) behind nginx on `port` (else a free one) with deploy/nginx.conf."""
    binary = system_binary("nginx", "nginx")
    workdir = Path(tempfile.mkdtemp(prefix=f"topology-{label}-"))
    workdir.chmod(0o755)  # nginx's workers (nobody, when the test runs as root) keep request bodies in it
    port = port or free_port()
    public = f"https://{PUBLIC_HOST}:{port}"
    replicas = [Replica(f"{label}_{name}", {"DATABASE_URL": make_conninfo(bouncer, application_name=f"{label}_{name}"),
                                            "MCP_PUBLIC_URL": public, "MCP_POOL_MIN": "1", "MCP_POOL_MAX": "4", **env},
                        workdir) for name in ("a", "b")]  # fmt: skip
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_healthy()
        cert, key, trust = certificate(workdir)
        http_port = free_port()
        site = CONFIG.read_text()
        replacements = {
            "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "server 127.0.0.1:8001 ": f"server 127.0.0.1:{replicas[0].port} ",
            "server 127.0.0.1:8002 ": f"server 127.0.0.1:{replicas[1].port} ",
            "/etc/ssl/certs/mcp.example.com.pem": str(cert),
            "/etc/ssl/private/mcp.example.com.key": str(key),
        }
        for old, new in replacements.items():
            assert site.count(old) == 1, f"deploy/nginx.conf no longer has {old!r} once: update test_topology.py"
            site = site.replace(old, new)
        with nginx(binary, workdir, site, (port, http_port)) as errors:
            yield Topology(port, http_port, trust, replicas, errors)
    finally:
        for replica in replicas:
            replica.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer(database_url: str) -> Iterator[str]:
    system_binary("nginx", "nginx")  # skip (or fail in CI) before starting anything
    with pgbouncer(database_url, pool_size=6) as url:
        yield url


@pytest.fixture(scope="module")
def edge(bouncer: str) -> Iterator[Topology]:
    """The static-token deployment."""
    with topology(bouncer, "edge", {"MCP_API_TOKEN": TOKEN, "MCP_ALLOWED_HOSTS": ALIAS_HOST}) as served:
        yield served


async def served_by(http: httpx2.AsyncClient, public: str) -> str:
    """Which replica answered a call (its application_name, as PostgreSQL saw it through PgBouncer)."""
    answer = await http.post(f"{public}/mcp", json=sql_call("SELECT current_setting('application_name')"),
                             headers={**LEGACY, **BEARER})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]["structuredContent"]["rows"][0][0]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_every_tool_in_both_protocol_eras(edge: Topology, mode: str) -> None:
    """The SDK's client through nginx, every tool: in the 2025 era (initialize, then calls; it settles on
    2025-11-25) and in 2026-07-28's (self-contained requests), each request on whichever replica nginx picks."""
    assert set(TOOL_CALLS) == set(ps.TOOL_NAMES)
    async with edge.mcp(mode) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        results = {name: await client.call_tool(name, args) for name, args in TOOL_CALLS.items()}
        version = client.protocol_version
    assert tools == set(ps.TOOL_NAMES)
    assert not [name for name, result in results.items() if result.is_error]
    assert results["execute_sql"].structured_content["rows"] == [[42]]  # type: ignore[index]
    assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")


async def test_a_stream_passes_unbuffered(edge: Topology) -> None:
    """What streams in stateless mode: a 2026-07-28 subscriptions/listen response is an SSE stream that stays open
    (the server acknowledges at once, then pings every 15 s; other answers are single JSON bodies). Its first event
    reaches the client through nginx while the stream is open: a buffering proxy would hold it until the stream
    ended or a buffer filled. (This response also says X-Accel-Buffering: no, which nginx obeys whatever its
    proxy_buffering; the configuration's proxy_buffering off covers the responses that do not say it.)"""
    body = {"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True}, "_meta": MODERN_META}}  # fmt: skip
    headers = {**LEGACY, **BEARER, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"}
    event: list[str] = []
    async with edge.client() as http:
        with anyio.fail_after(5):
            async with http.stream("POST", f"{edge.public}/mcp", json=body, headers=headers) as response:
                lines = response.aiter_lines()
                async for line in lines:
                    if not line and event:
                        break
                    event.append(line)
                more: list[str] = []
                with anyio.move_on_after(0.5) as waiting:  # the stream stays open: it neither ends nor sends more
                    async for line in lines:
                        more.append(line)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.headers
    assert waiting.cancelled_caught and not more
    data = json.loads(next(line for line in event if line.startswith("data:")).removeprefix("data:"))
    assert data["method"] == "notifications/subscriptions/acknowledged"


async def test_bearer_token_through_the_proxy(edge: Topology) -> None:
    """No token or a wrong one: 401, whichever replica answers; the right one: 200."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with edge.client() as http:
        missing = [await http.post(f"{edge.public}/mcp", json=body, headers=LEGACY) for _ in range(2)]
        wrong = [await http.post(f"{edge.public}/mcp", json=body, headers={**LEGACY, "Authorization": "Bearer nope"})
                 for _ in range(2)]  # fmt: skip
        right = [await http.post(f"{edge.public}/mcp", json=body, headers={**LEGACY, **BEARER}) for _ in range(2)]
    assert [r.status_code for r in missing + wrong] == [401] * 4
    assert [r.status_code for r in right] == [200] * 2
    assert all(len(r.json()["result"]["tools"]) == len(ps.TOOL_NAMES) for r in right)


async def test_public_url_and_forwarded_headers(edge: Topology) -> None:
    """What a client learns of URLs through nginx is the public URL, never a replica's loopback address.

    With a static token only (no OAuth) the 401 is a bare Bearer challenge: no resource_metadata (the SDK adds it
    only when there is protected-resource metadata, i.e. with OAuth) and no metadata documents. /mcp/ redirects to
    the public /mcp: built from the Host nginx passes on and X-Forwarded-Proto (https), which the replica trusts
    from 127.0.0.1."""
    async with edge.client() as http:
        challenge = await http.post(f"{edge.public}/mcp", json=sql_call("SELECT 1"), headers=LEGACY)
        metadata = await http.get(f"{edge.public}/.well-known/oauth-protected-resource")
        slash = await http.get(f"{edge.public}/mcp/", headers=BEARER)
        plain = await http.post(f"http://{PUBLIC_HOST}:{edge.http_port}/mcp", json=sql_call("SELECT 1"))
        elsewhere = await http.get(f"{edge.public}/metrics")
        health = await http.get(f"{edge.public}/health")
        ready = await http.get(f"{edge.public}/ready")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="Authentication required"'
    )
    assert metadata.status_code == 404
    assert slash.status_code == 307 and slash.headers["location"] == f"{edge.public}/mcp"
    assert plain.status_code == 308 and plain.headers["location"] == f"https://{PUBLIC_HOST}/mcp"
    assert elsewhere.status_code == 404  # nginx serves only the server's routes
    assert health.json() == {"status": "ok"} and ready.json()["status"] == "ready"
    for response in (challenge, metadata, slash):
        assert "127.0.0.1" not in str(response.headers) + response.text


async def test_the_host_check_through_the_proxy(edge: Topology) -> None:
    """nginx passes Host as the client sent it, and the replicas refuse a Host they do not answer to with 421 (their
    own answer, not nginx's): the public URL's host:port and MCP_ALLOWED_HOSTS pass; the public host on another
    port or another name does not. The probes answer any Host."""
    call = sql_call("SELECT 1")
    port = edge.port
    async with edge.client(headers={**LEGACY, **BEARER}) as http:
        answers = {host: await http.post(f"{edge.public}/mcp", json=call, headers={"Host": host})
                   for host in (f"{PUBLIC_HOST}:{port}", f"{ALIAS_HOST}:{port}", "evil.example",
                                f"evil.example:{port}", PUBLIC_HOST, f"{PUBLIC_HOST}:1")}  # fmt: skip
        probe = await http.get(f"{edge.public}/health", headers={"Host": "evil.example"})
    assert {host: r.status_code for host, r in answers.items()} == {
        f"{PUBLIC_HOST}:{port}": 200, f"{ALIAS_HOST}:{port}": 200, "evil.example": 421, f"evil.example:{port}": 421,
        PUBLIC_HOST: 421, f"{PUBLIC_HOST}:1": 421}  # fmt: skip
    assert "MCP_ALLOWED_HOSTS" in answers["evil.example"].json()["error"]
    assert probe.status_code == 200


async def test_request_bodies_up_to_the_servers_limit(edge: Topology) -> None:
    """A body larger than nginx keeps in memory (spooled to its temp files) still reaches a replica, which answers
    it; one over 16 MiB is refused by nginx before any replica reads it."""
    large = sql_call("SELECT '" + "x" * 2_000_000 + "'")
    async with edge.client(headers={**LEGACY, **BEARER}) as http:
        answered = await http.post(f"{edge.public}/mcp", json=large)
        refused = await http.post(f"{edge.public}/mcp", content=b" " * (16 * 1024 * 1024 + 1))
    assert answered.status_code == 200, answered.text
    assert "MCP_MAX_SQL_BYTES" in answered.json()["result"]["content"][0]["text"]
    assert refused.status_code == 413


@pytest.mark.parametrize("era", ["2025-06-18", "2026-07-28"])
async def test_cancellation_reaches_postgres(edge: Topology, database_url: str, era: str) -> None:
    """A client that goes away mid-call: nginx closes its connection to the replica, the replica cancels the query,
    PgBouncer passes the cancel on, and the query stops inside PostgreSQL within seconds (else it would run for
    POSTGRES_STATEMENT_TIMEOUT_MS). 2025-06-18: a raw client closes its connection; 2026-07-28: the SDK's client
    cancels the call (it closes the response)."""
    marker = f"cancelled through nginx, {era}"
    sql = f"SELECT '{marker}' AS marker, n FROM ({SLOW_SQL}) AS slow(n)"
    applications = [replica.name for replica in edge.replicas]

    def query_runs() -> bool:
        with psycopg.connect(database_url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                               "application_name = ANY(%s) AND strpos(query, %s) > 0",
                               [applications, marker]).fetchone()  # fmt: skip
        return bool(row and row[0])

    if era == "2026-07-28":
        async with edge.mcp("auto") as client:
            stopped = await cancel_midway(client, query_runs, sql)
            after = await client.call_tool("execute_sql", {"sql": "SELECT 1"})
        assert stopped, "the query ran on in PostgreSQL"
        assert not after.is_error
        return
    context = ssl.create_default_context(cadata=edge.trust)
    connection = HTTPSConnection("127.0.0.1", edge.port, context=context, timeout=30)
    headers = {**LEGACY, **BEARER, "Host": f"{PUBLIC_HOST}:{edge.port}"}
    connection.request("POST", "/mcp", json.dumps(sql_call(sql)), headers)
    assert await wait_for(query_runs), "the query never started"
    connection.close()
    assert await wait_for(lambda: not query_runs(), 5), "the query ran on in PostgreSQL"


async def test_a_killed_replica_leaves_the_other_serving(edge: Topology) -> None:
    """Both replicas serve; one is killed (SIGKILL, with the connections nginx keeps alive to it): every call still
    succeeds, nginx finding the dead one refusing connections and sending each call to the other. (It is started
    again afterwards, for the tests that follow.)"""
    first, second = edge.replicas
    names = {first.name, second.name}
    async with edge.client() as http:
        seen: set[str] = set()
        deadline = time.monotonic() + 15  # a replica marked failed by an earlier test is retried after fail_timeout
        while seen != names and time.monotonic() < deadline:
            seen.add(await served_by(http, edge.public))
        assert seen == names
        first.stop(signal.SIGKILL)
        try:
            after = [await served_by(http, edge.public) for _ in range(10)]
            async with edge.mcp("legacy") as legacy, edge.mcp("auto") as modern:
                calls = [await client.call_tool("execute_sql", {"sql": "SELECT 1"}) for client in (legacy, modern)]
        finally:
            first.start()
            first.wait_healthy()
    assert after == [second.name] * 10
    assert not any(result.is_error for result in calls)
    assert "(111: Connection refused) while connecting to upstream" in edge.nginx_errors.read_text()


@pytest.fixture(scope="module")
def oauth_edge(bouncer: str) -> Iterator[Topology]:
    """The OAuth deployment: the certified provider as issuer, the replicas sharing MCP_OAUTH_STATE_SECRET."""
    from test_certified_provider import CLIENT_ID, CLIENT_SECRET, certified_provider

    port = free_port()  # the provider must know the public URL (callback, resource) before the replicas start
    with certified_provider(f"https://{PUBLIC_HOST}:{port}") as issuer:
        env = {"MCP_AUTH_ISSUER": issuer, "MCP_AUTH_CLIENT_ID": CLIENT_ID, "MCP_AUTH_CLIENT_SECRET": CLIENT_SECRET,
               "MCP_OAUTH_STATE_SECRET": secrets.token_hex(32)}  # fmt: skip
        with topology(bouncer, "oauth", env, port) as served:
            yield served


async def test_oauth_through_the_proxy(oauth_edge: Topology) -> None:
    """The metadata documents and the 401's challenge name the public URL; then the SDK's OAuth client signs in
    through nginx (discovery, registration, /authorize, the provider's pages, /oauth/callback, /token) and calls a
    tool. nginx alternates the replicas, so the sign-in that one replica starts comes back to the other: the
    shared MCP_OAUTH_STATE_SECRET opens its state."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
    from test_certified_provider import sign_in
    from test_oauth import CLIENT_REDIRECT, MemoryStorage

    served = oauth_edge
    public = served.public
    async with served.client() as http:
        resource = (await http.get(f"{public}/.well-known/oauth-protected-resource")).json()
        resource_at_path = (await http.get(f"{public}/.well-known/oauth-protected-resource/mcp")).json()
        authorization = (await http.get(f"{public}/.well-known/oauth-authorization-server")).json()
        challenge = await http.post(f"{public}/mcp", json=sql_call("SELECT 1"), headers=LEGACY)
    assert resource["resource"] == f"{public}/mcp" and resource["authorization_servers"] == [public]
    assert resource_at_path["resource"] == f"{public}/mcp"
    assert resource_at_path["authorization_servers"] == [public]
    assert authorization["issuer"] == public
    for endpoint, path in (("authorization_endpoint", "/authorize"), ("token_endpoint", "/token"),
                           ("registration_endpoint", "/register")):  # fmt: skip
        assert authorization[endpoint] == f"{public}{path}"
    challenged = challenge.headers["www-authenticate"]
    assert challenge.status_code == 401 and 'scope="openid' in challenged
    assert f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"' in challenged

    landed: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:  # the user's browser
        assert url.startswith(f"{public}/authorize?")
        async with served.client() as browser:
            relayed = await browser.get(url)
            assert relayed.status_code == 302, relayed.text
            back = await sign_in(relayed.headers["location"], home=public)
            final = await browser.get(f"{public}{back}")
        assert final.status_code == 302, final.text
        landed.update({k: v[0] for k, v in parse_qs(urlsplit(final.headers["location"]).query).items()})

    async def callback_handler() -> AuthorizationCodeResult:
        assert "code" in landed, f"the provider refused: {landed}"
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"), iss=landed.get("iss"))

    metadata = OAuthClientMetadata(redirect_uris=[CLIENT_REDIRECT], client_name="through-nginx",
                                   grant_types=["authorization_code", "refresh_token"])  # fmt: skip
    oauth = OAuthClientProvider(server_url=f"{public}/mcp", client_metadata=metadata, storage=MemoryStorage(),
                                redirect_handler=redirect_handler, callback_handler=callback_handler)  # fmt: skip
    async with (
        served.client(auth=oauth) as http,
        Client(streamable_http_client(f"{public}/mcp", http_client=http), mode="legacy") as client,  # type: ignore[arg-type]
    ):
        result = await client.call_tool("execute_sql", {"sql": "SELECT count(*) FROM shop.customers"})
    assert not result.is_error and result.structured_content["rows"] == [[500]]  # type: ignore[index]
    assert landed["iss"] == public
    started = [r.name for r in served.replicas if r.logged("oauth authorize: relaying to the issuer")]
    returned = [r.name for r in served.replicas if r.logged("oauth callback: returning to the client (code)")]
    assert len(started) == len(returned) == 1 and started != returned, (started, returned)
