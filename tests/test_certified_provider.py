"""OAuth against a certified OpenID provider (panva/oidc-provider, OpenID Certified), configured strictly: openid
required, PKCE S256 required, resource indicators with JWT access tokens, refresh tokens only for offline_access,
login and consent through its own interaction pages, which the test fills in as a user would.

The provider runs from tests/oidc (`npm ci` there, as .ci/run does); without Node.js or its packages these tests
skip locally and fail in CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import httpx2
import pytest
from conftest import ROOT, free_port, ps
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from test_oauth import BASE, CLIENT_REDIRECT, HEADERS, MemoryStorage, client_document, documents_served

pytestmark = pytest.mark.anyio

PROVIDER_DIR = ROOT / "tests" / "oidc"
CLIENT_ID, CLIENT_SECRET = "postgres-mcp", "a-secret-of-the-application"


@contextlib.contextmanager
def certified_provider(base: str = BASE) -> Iterator[str]:
    """The provider on a loopback port (its URL), its one client being the OAuth application of the server at
    `base` (its callback; its /mcp the one resource)."""
    installed = (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir()
    if not shutil.which("node") or not installed:
        if os.environ.get("CI"):
            pytest.fail("Node.js and tests/oidc's packages are required in CI (.ci/run installs them)")
        pytest.skip("Node.js or tests/oidc/node_modules missing: run `npm ci` in tests/oidc")
    port = free_port()
    process = subprocess.Popen(["node", "provider.mjs", str(port), CLIENT_ID, CLIENT_SECRET,
                                f"{base}/oauth/callback", f"{base}/mcp"], cwd=PROVIDER_DIR,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/.well-known/openid-configuration").status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """The provider, its one client being this (in-memory) server's OAuth application."""
    with certified_provider() as url:
        yield url


def strict_config(issuer: str, database_url: str, **overrides: Any) -> ps.Config:
    return ps.Config(conn=database_url, transport="streamable-http", stateless=True, auth_issuer=issuer,
                     auth_client_id=CLIENT_ID, auth_client_secret=CLIENT_SECRET, **overrides)  # fmt: skip


async def sign_in(start: str, user: str = "alice", home: str = BASE) -> str:
    """A browser at the provider: follows its redirects, fills in its login and consent pages, and stops at this
    server's callback on `home` (returned as a path for the in-memory app)."""
    url = start
    async with httpx.AsyncClient(timeout=10) as browser:  # keeps the provider's cookies
        for _ in range(20):
            if url.startswith(home):
                return url[len(home) :]
            response = await browser.get(url)
            if response.status_code in (302, 303):
                url = urljoin(url, response.headers["location"])
                continue
            action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            assert action, f"no form on the provider's page: {response.status_code} {response.text[:300]}"
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
            if 'name="login"' in response.text:  # its sign-in page (its consent page has only hidden fields)
                fields |= {"login": user, "password": "any"}
            answer = await browser.post(urljoin(url, action[1]), data=fields)
            assert "location" in answer.headers, f"{action[1]}: {answer.status_code} {answer.text[:500]}"
            url = urljoin(url, answer.headers["location"])
    raise AssertionError("the provider never sent the browser back")


async def oauth_client_flow(app: Any, oauth_args: dict[str, Any]) -> tuple[set[str], Any, MemoryStorage, dict]:
    """The SDK's OAuthClientProvider end to end: discovery, registration or CIMD, authorization at the provider,
    token, then tools/list and a query with the token (the app's lifespan running)."""
    landed: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as browser:
            relayed = await browser.get(url[len(BASE) :])  # our /authorize
            assert relayed.status_code == 302, relayed.text
            back = await sign_in(relayed.headers["location"])
            final = await browser.get(back)  # our /oauth/callback
        landed.update({k: v[0] for k, v in parse_qs(urlsplit(final.headers["location"]).query).items()})

    async def callback_handler() -> AuthorizationCodeResult:
        assert "code" in landed, f"the provider refused: {landed}"
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"), iss=landed.get("iss"))

    storage = MemoryStorage()
    metadata = OAuthClientMetadata(redirect_uris=[CLIENT_REDIRECT], client_name="strict-flow",
                                   grant_types=["authorization_code", "refresh_token"])  # fmt: skip
    oauth = OAuthClientProvider(server_url=f"{BASE}/mcp", client_metadata=metadata, storage=storage,
                                redirect_handler=redirect_handler, callback_handler=callback_handler,
                                **oauth_args)  # fmt: skip
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE, auth=oauth)
    async with http, Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("execute_sql", {"sql": "SELECT count(*) FROM shop.customers"})
    return tools, result, storage, landed


async def test_the_sdk_client_completes_the_flow_with_registration(issuer: str, database_url: str) -> None:
    """Dynamic registration; the client asks for the scopes the 401 names, the relay adds prompt=consent for
    offline_access, and the refresh token the provider then issues works."""
    app = ps.build_http_app(strict_config(issuer, database_url))
    async with app.router.lifespan_context(app):
        tools, result, storage, landed = await oauth_client_flow(app, {})
        assert storage.tokens and storage.tokens.refresh_token, "no refresh token: offline_access was not granted"
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as http:
            refreshed = await http.post("/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": storage.tokens.refresh_token})  # fmt: skip
            bearer = {**HEADERS, "Authorization": f"Bearer {refreshed.json()['access_token']}"}
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=bearer)
    assert "execute_sql" in tools and result.structured_content["rows"] == [[500]]
    assert landed["iss"] == BASE and storage.client and storage.client.client_id == CLIENT_ID
    assert refreshed.status_code == 200 and refreshed.headers["cache-control"] == "no-store"
    assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == len(ps.TOOL_NAMES)


async def test_a_claude_ai_style_client_with_a_metadata_document(issuer: str, database_url: str) -> None:
    """claude.ai's way against the strict provider: CIMD client id, claude.ai's callback, PKCE, resource."""
    import base64
    import hashlib
    import secrets

    from test_oauth import authorize_query

    claude = "https://claude.ai/api/mcp/auth_callback"
    documents: dict[str, tuple[int, dict[str, str], bytes]] = {}
    with documents_served(documents) as origin:
        client_id = f"{origin}/claude.json"
        documents["/claude.json"] = (200, {}, client_document(client_id, claude))
        app = ps.build_http_app(strict_config(issuer, database_url, cimd_allow_loopback=True))
        async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                                                         base_url=BASE) as http:  # fmt: skip
            verifier = secrets.token_urlsafe(40)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            query = {k: v for k, v in authorize_query(claude, code_challenge=challenge, client_id=client_id).items()
                     if k != "scope"}  # claude.ai asks for what the server advertises; here: nothing  # fmt: skip
            go = await http.get("/authorize", params=query)
            back = await http.get(await sign_in(go.headers["location"]))
            landed = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
            tokens = await http.post("/token", data={"grant_type": "authorization_code", "code": landed["code"],
                                                     "redirect_uri": claude, "code_verifier": verifier,
                                                     "client_id": client_id, "resource": f"{BASE}/mcp"})  # fmt: skip
            bearer = {**HEADERS, "Authorization": f"Bearer {tokens.json()['access_token']}"}
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=bearer)
    assert back.headers["location"].startswith(claude + "?") and landed["iss"] == BASE
    assert tokens.status_code == 200, tokens.text
    assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == len(ps.TOOL_NAMES)


async def test_provider_errors_reach_the_client_with_its_state(issuer: str, database_url: str) -> None:
    """A resource the provider does not know: its invalid_target comes back to the client's redirect URI with the
    client's state, never a dead end at the provider."""
    from test_oauth import authorize_query

    app = ps.build_http_app(strict_config(issuer, database_url))
    async with app.router.lifespan_context(app), httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                                                     base_url=BASE) as http:  # fmt: skip
        go = await http.get(
            "/authorize", params=authorize_query(resource="https://elsewhere.example/api", client_id=CLIENT_ID)
        )
        async with httpx.AsyncClient(timeout=10) as browser:
            at_provider = await browser.get(go.headers["location"])
        back = await http.get(at_provider.headers["location"][len(BASE) :])
    landed = {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
    assert landed["error"] == "invalid_target" and landed["state"] == "client-state" and landed["iss"] == BASE


async def test_the_sdk_client_completes_the_flow_with_a_metadata_document(
    issuer: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK client with a Client ID Metadata Document: the server advertises support, so the client skips
    registration and uses its document's URL as its client id. (The SDK insists on https for that URL; here the
    document is served on loopback http, which the test lets both sides accept.)"""
    import mcp.client.auth.oauth2 as sdk_oauth

    monkeypatch.setattr(sdk_oauth, "is_valid_client_metadata_url", bool)
    documents: dict[str, tuple[int, dict[str, str], bytes]] = {}
    with documents_served(documents) as origin:
        client_id = f"{origin}/sdk-client.json"
        documents["/sdk-client.json"] = (200, {}, client_document(client_id, CLIENT_REDIRECT))
        app = ps.build_http_app(strict_config(issuer, database_url, cimd_allow_loopback=True))
        async with app.router.lifespan_context(app):
            tools, result, storage, landed = await oauth_client_flow(app, {"client_metadata_url": client_id})
    assert "execute_sql" in tools and result.structured_content["rows"] == [[500]]
    assert storage.client and storage.client.client_id == client_id  # no registration: the document's URL
    assert landed["iss"] == BASE and storage.tokens and storage.tokens.refresh_token
