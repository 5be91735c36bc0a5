"""OAuth: JWKS-verified JWTs, the relay on this server's origin, and the whole flow with the SDK's OAuth client.

The upstream identity provider is a real authorization server stand-in (an ASGI app with its own RSA keys,
JWKS, PKCE and client-secret checks) reached through an httpx2 client, never a mock of this project's code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import httpx2
import jwt
import pytest
from conftest import ps
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

pytestmark = pytest.mark.anyio

ISSUER = "https://idp.test"
CLIENT_ID = "mcp-app-123"
CLIENT_SECRET = "s3cret/with+chars"
BASE = "http://127.0.0.1:8000"
CLIENT_REDIRECT = "http://127.0.0.1:33418/callback"


class Provider:
    """The upstream authorization server: what Clerk, Auth0 or Keycloak do, in a few dozen lines."""

    def __init__(self, auth_method: str = "client_secret_basic") -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "key-1"
        self.auth_method = auth_method
        self.codes: dict[str, dict[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []
        self.app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self.metadata),
            Route("/.well-known/jwks.json", self.jwks),
            Route("/oauth/authorize", self.authorize),
            Route("/oauth/token", self.token, methods=["POST"]),
        ])  # fmt: skip

    def rotate(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"key-{secrets.token_hex(4)}"

    def mint(
        self, key: Any = None, headers: dict[str, Any] | None = None, algorithm: str = "RS256", **claims: Any
    ) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "sub": "user_42", "client_id": CLIENT_ID, "iat": now, "exp": now + 300, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key or self.key, algorithm=algorithm, headers={"kid": self.kid, **(headers or {})})

    async def metadata(self, request: Request) -> Response:
        endpoints = {"authorization_endpoint": "/oauth/authorize", "token_endpoint": "/oauth/token",
                     "jwks_uri": "/.well-known/jwks.json"}  # fmt: skip
        return JSONResponse(
            {
                "issuer": ISSUER,
                **{name: ISSUER + path for name, path in endpoints.items()},
                "scopes_supported": ["openid", "profile", "email", "offline_access", "phone"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return JSONResponse({"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]})

    async def authorize(self, request: Request) -> Response:
        """The user signs in at once; the provider sends its code back with its own state and iss. Strict as an
        OpenID provider is: a request without the openid scope ends in access_denied."""
        query = request.query_params
        assert query["client_id"] == CLIENT_ID
        if "openid" not in query.get("scope", "").split():
            back = urlencode({"error": "access_denied", "error_description": "openid scope required",
                              "state": query["state"], "iss": ISSUER})  # fmt: skip
            return RedirectResponse(f"{query['redirect_uri']}?{back}", 302)
        code = secrets.token_urlsafe(16)
        self.codes[code] = dict(query)
        back = urlencode({"code": code, "state": query["state"], "iss": ISSUER})
        return RedirectResponse(f"{query['redirect_uri']}?{back}", 302)

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests.append(form)
        if self.auth_method == "client_secret_basic":
            expected = (
                "Basic "
                + base64.b64encode(
                    f"{CLIENT_ID}:{CLIENT_SECRET.replace('/', '%2F').replace('+', '%2B')}".encode()
                ).decode()
            )
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "invalid_client"}, 401)
        elif form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, 401)
        if form["grant_type"] == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)
            if issued is None or form.get("redirect_uri") != issued["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, 400)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(form["code_verifier"].encode()).digest()).rstrip(b"=")
            if challenge.decode() != issued["code_challenge"]:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        elif form["grant_type"] != "refresh_token" or form.get("refresh_token") != "refresh-1":
            return JSONResponse({"error": "invalid_grant"}, 400)
        return JSONResponse({"access_token": self.mint(), "token_type": "Bearer", "expires_in": 300,
                             "refresh_token": "refresh-1"})  # fmt: skip


def oauth_config(**overrides: Any) -> ps.Config:
    fields = {"transport": "streamable-http", "auth_issuer": ISSUER, "auth_client_id": CLIENT_ID,
              "auth_client_secret": CLIENT_SECRET, **overrides}  # fmt: skip
    return ps.Config(**fields)


@contextlib.asynccontextmanager
async def served(provider: Provider, config: ps.Config) -> AsyncIterator[httpx2.AsyncClient]:
    """This server's ASGI app (lifespan running), an HTTP client to it, and the provider behind it."""
    issuer_http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=provider.app))
    app = ps.build_http_app(config, ps.build_server(config, issuer_http=issuer_http))
    async with (
        app.router.lifespan_context(app),
        issuer_http,
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as http,
    ):
        yield http


CLIENT_INFO = {"name": "auth-test", "version": "1"}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": CLIENT_INFO}}  # fmt: skip
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip


async def status_with(http: httpx2.AsyncClient, token: str) -> int:
    response = await http.post("/mcp", json=INITIALIZE, headers={**HEADERS, "Authorization": f"Bearer {token}"})
    return response.status_code


async def test_a_valid_jwt_is_accepted_and_every_forgery_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ps.Upstream, "REFRESH_EVERY_S", 0)  # let the key rotation below refetch at once
    provider = Provider()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = provider.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header, payload, _ = provider.mint().split(".")
    forged = {
        "alg none": unsigned(provider),
        "HMAC keyed with the public key": hmac_with_public_key(provider, public_pem),
        "another key": provider.mint(key=other),
        "wrong issuer": provider.mint(iss="https://evil.test"),
        "wrong client id": provider.mint(client_id="someone-else"),
        "wrong audience": provider.mint(aud="https://other-api.test"),
        "expired": provider.mint(exp=int(time.time()) - 120),
        "not yet valid": provider.mint(nbf=int(time.time()) + 600),
        "no expiry": provider.mint(exp=None),
        "tampered": f"{header}.{payload[:-2]}xx.{provider.mint().split('.')[2]}",
        "garbage": "not.a.jwt",
    }
    async with served(provider, oauth_config()) as http:
        assert await status_with(http, provider.mint()) == 200
        assert await status_with(http, provider.mint(aud=f"{BASE}/mcp")) == 200  # audience: this resource
        assert await status_with(http, provider.mint(azp=CLIENT_ID, client_id=None)) == 200  # azp-style
        for name, token in forged.items():
            assert await status_with(http, token) == 401, name
        missing = await http.post("/mcp", json=INITIALIZE, headers=HEADERS)
        provider.rotate()  # the provider rotates its key: an unknown kid makes the server refetch the JWKS
        assert await status_with(http, provider.mint()) == 200
    assert missing.status_code == 401
    challenge = missing.headers["www-authenticate"]
    assert (
        challenge.startswith("Bearer")
        and f'resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp"' in challenge
    )


def unsigned(provider: Provider) -> str:
    claims = {"iss": ISSUER, "sub": "x", "client_id": CLIENT_ID, "exp": int(time.time()) + 60}
    return jwt.encode(claims, None, algorithm="none", headers={"kid": provider.kid})


def hmac_with_public_key(provider: Provider, public_pem: bytes) -> str:
    """The classic key-confusion forgery: HS256 with the RSA public key as the shared secret."""
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": provider.kid}).encode())
    body = base64.urlsafe_b64encode(json.dumps({"iss": ISSUER, "sub": "x", "client_id": CLIENT_ID,
                                                "exp": int(time.time()) + 60}).encode())  # fmt: skip
    signing_input = header.rstrip(b"=") + b"." + body.rstrip(b"=")
    import hmac

    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


async def test_static_token_and_jwt_share_the_endpoint() -> None:
    provider = Provider()
    async with served(provider, oauth_config(api_token="static-tok")) as http:
        assert await status_with(http, "static-tok") == 200
        assert await status_with(http, provider.mint()) == 200
        assert await status_with(http, "static-to") == 401


async def test_metadata_endpoints_name_this_server() -> None:
    async with served(Provider(), oauth_config()) as http:
        root = await http.get("/.well-known/oauth-protected-resource")
        suffixed = await http.get("/.well-known/oauth-protected-resource/mcp")
        server = await http.get("/.well-known/oauth-authorization-server")
        preflight = await http.options("/token", headers={"Origin": "http://localhost:6274",
                                                          "Access-Control-Request-Method": "POST"})  # fmt: skip
    for response in (root, suffixed):
        assert response.json()["resource"] == f"{BASE}/mcp"
        assert response.json()["authorization_servers"] == [BASE]
    metadata = server.json()
    assert metadata["issuer"] == BASE and metadata["authorization_endpoint"] == f"{BASE}/authorize"
    assert metadata["token_endpoint"] == f"{BASE}/token" and metadata["registration_endpoint"] == f"{BASE}/register"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert server.headers["access-control-allow-origin"] == "*"
    assert preflight.status_code == 204 and "POST" in preflight.headers["access-control-allow-methods"]


@pytest.mark.parametrize(
    ("uris", "allowed"),
    [
        (["https://claude.ai/api/mcp/auth_callback"], True),
        (["https://claude.com/api/mcp/auth_callback"], True),
        (["http://127.0.0.1:54321/callback", "http://localhost:1/cb", "http://[::1]:9/x"], True),
        (["https://evil.example/callback"], False),
        (["https://claude.ai.evil.example/api/mcp/auth_callback"], False),
        (["https://claude.ai/api/mcp/auth_callback#frag"], False),
        (["http://127.0.0.1.evil.example/cb"], False),
        (["https://localhost/cb"], False),  # loopback redirects are http (RFC 8252)
        ([], False),
    ],
)
async def test_register_checks_redirect_uris(uris: list[str], allowed: bool) -> None:
    async with served(Provider(), oauth_config()) as http:
        response = await http.post("/register", json={"redirect_uris": uris, "client_name": "test"})
    if allowed:
        assert response.status_code == 201 and response.json()["client_id"] == CLIENT_ID
        assert CLIENT_SECRET not in response.text and "client_secret" not in response.json()
    else:
        assert response.status_code == 400 and response.json()["error"] == "invalid_redirect_uri"


def authorize_query(redirect_uri: str = CLIENT_REDIRECT, **extra: str) -> dict[str, str]:
    return {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "state": "client-state",
            "code_challenge": "x" * 43, "code_challenge_method": "S256", "scope": "openid profile",
            "resource": f"{BASE}/mcp", **extra}  # fmt: skip


async def test_authorize_never_redirects_to_an_unlisted_uri() -> None:
    async with served(Provider(), oauth_config()) as http:
        for query in (authorize_query("https://evil.example/cb"), authorize_query(client_id="other"),
                      {k: v for k, v in authorize_query().items() if k != "code_challenge"}):  # fmt: skip
            response = await http.get("/authorize", params=query)
            assert response.status_code == 400 and "location" not in response.headers
            assert "evil.example" not in response.text


async def test_authorize_relays_to_the_issuer_with_this_servers_callback() -> None:
    """The issuer is sent this server's own callback and a sealed state: neither the client's state nor its
    redirect URI in clear, and only this server can open it (its callback returns both to the client)."""
    asked = authorize_query(nonce="n-1", prompt="consent")
    async with served(Provider(), oauth_config(oauth_state_secret="k")) as http:
        response = await http.get("/authorize", params=asked)
        target = urlsplit(response.headers["location"])
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        back = await http.get("/oauth/callback", params={"code": "c", "state": query["state"]})
    assert response.status_code == 302
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{ISSUER}/oauth/authorize"
    assert query["redirect_uri"] == f"{BASE}/oauth/callback" and query["client_id"] == CLIENT_ID
    for clear in ("client-state", urlsplit(CLIENT_REDIRECT).netloc):  # the issuer never sees the client's values
        assert not [value for value in query.values() if clear in value], (clear, query)
    for key in ("code_challenge", "code_challenge_method", "scope", "resource", "nonce", "prompt"):
        assert query[key] == asked[key]
    opened = ps.StateSealer("k").open(query["state"])  # the server's secret opens it, another does not
    assert opened is not None and {"client-state", CLIENT_REDIRECT} <= set(opened.values()), opened
    assert ps.StateSealer("other-key").open(query["state"]) is None
    assert back.status_code == 302 and back.headers["location"].startswith(CLIENT_REDIRECT + "?")
    assert parse_qs(urlsplit(back.headers["location"]).query)["state"] == ["client-state"]


async def test_callback_refuses_forged_or_expired_state() -> None:
    config = oauth_config(oauth_state_secret="k")
    sealer = ps.StateSealer("k")
    expired = sealer.seal({"s": "x", "r": CLIENT_REDIRECT, "c": CLIENT_ID}, ttl_s=-1)
    evil = ps.StateSealer("other-key").seal({"s": "x", "r": "https://evil.example/cb", "c": CLIENT_ID}, ttl_s=60)
    async with served(Provider(), config) as http:
        for state in ("garbage", expired, evil, expired[:-3] + "abc"):
            response = await http.get("/oauth/callback", params={"code": "c", "state": state})
            assert response.status_code == 400 and "location" not in response.headers


async def test_token_endpoint_relays_with_the_secret_and_checks_the_redirect_uri() -> None:
    """claude.ai-style (its own callback) and native-style (loopback): register → authorize → callback → token →
    refresh → tools/list with the refreshed token."""
    claude = "https://claude.ai/api/mcp/auth_callback"
    for method, redirect in (("client_secret_basic", claude), ("client_secret_post", CLIENT_REDIRECT)):
        provider = Provider(auth_method=method)
        async with served(provider, oauth_config(auth_token_auth_method=method, stateless=True)) as http:
            registered = await http.post("/register", json={"redirect_uris": [redirect]})
            assert registered.json()["client_id"] == CLIENT_ID
            verifier = secrets.token_urlsafe(40)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            go = await http.get("/authorize", params=authorize_query(redirect, code_challenge=challenge))
            back = await provider_follow(provider, go.headers["location"])
            answer = await http.get(back)  # our callback
            client_side = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
            assert answer.headers["location"].startswith(redirect + "?")
            assert client_side["state"] == "client-state" and client_side["iss"] == BASE
            wrong = await http.post("/token", data={"grant_type": "authorization_code", "code": client_side["code"],
                                                    "redirect_uri": "http://127.0.0.1:1/other",
                                                    "code_verifier": verifier})  # fmt: skip
            tokens = await http.post("/token", data={"grant_type": "authorization_code", "code": client_side["code"],
                                                     "redirect_uri": redirect, "code_verifier": verifier,
                                                     "client_id": CLIENT_ID})  # fmt: skip
            refreshed = await http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "refresh-1"})
            bearer = {**HEADERS, "Authorization": f"Bearer {refreshed.json()['access_token']}"}
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=bearer)
            forged = await http.post("/token", data={"grant_type": "authorization_code", "code": "made-up"})
            other_grant = await http.post("/token", data={"grant_type": "password", "username": "u"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        assert tokens.status_code == 200, tokens.text
        assert tokens.headers["cache-control"] == "no-store"
        assert jwt.decode(tokens.json()["access_token"], options={"verify_signature": False})["iss"] == ISSUER
        assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] == "refresh-1"
        assert listed.status_code == 200 and len(listed.json()["result"]["tools"]) == len(ps.TOOL_NAMES)
        assert forged.json()["error"] == "invalid_grant" and other_grant.json()["error"] == "unsupported_grant_type"
        exchange = provider.token_requests[0]
        assert exchange["redirect_uri"] == f"{BASE}/oauth/callback" and exchange["code_verifier"] == verifier


async def provider_follow(provider: Provider, url: str) -> str:
    """The browser at the provider: sign in, and follow the redirect back to this server's callback."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=provider.app)) as browser:
        response = await browser.get(url)
    location = response.headers["location"]
    assert location.startswith(f"{BASE}/oauth/callback")
    return location[len(BASE) :]


class MemoryStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_sdk_oauth_client_completes_the_whole_flow(
    database_url: str, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Discovery → registration → authorization (RFC 9207 iss checked) → token → tools/list and a query."""
    caplog.set_level("INFO", logger="postgres_mcp")
    provider = Provider()
    # Stateless: in memory, the client's long-lived GET event stream would hold the OAuth client's lock.
    config = oauth_config(conn=database_url, stateless=True)
    issuer_http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=provider.app))
    app = ps.build_http_app(config, ps.build_server(config, issuer_http=issuer_http))
    landed: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE) as browser:
            relayed = await browser.get(url[len(BASE) :])  # our /authorize
            back = await provider_follow(provider, relayed.headers["location"])
            final = await browser.get(back)  # our /oauth/callback
        landed.update({k: v[0] for k, v in parse_qs(urlsplit(final.headers["location"]).query).items()})

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(code=landed["code"], state=landed.get("state"), iss=landed.get("iss"))

    storage = MemoryStorage()
    metadata = OAuthClientMetadata(
        redirect_uris=[CLIENT_REDIRECT], client_name="flow-test", grant_types=["authorization_code", "refresh_token"]
    )
    oauth = OAuthClientProvider(
        server_url=f"{BASE}/mcp",
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with app.router.lifespan_context(app), issuer_http:
        http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE, auth=oauth)
        async with http, Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("execute_sql", {"sql": "SELECT count(*) FROM shop.customers"})
    assert "execute_sql" in tools and result.structured_content["rows"] == [[500]]  # type: ignore[index]
    assert landed["iss"] == BASE and storage.client and storage.client.client_id == CLIENT_ID
    assert "tool=execute_sql principal=user_42 " in caplog.text  # the JWT's subject, in the call log
    assert storage.tokens and storage.tokens.refresh_token == "refresh-1"


def test_half_an_oauth_configuration_is_refused() -> None:
    with pytest.raises(ps.ConfigError) as refused:
        ps.load_config([], environ={"MCP_AUTH_ISSUER": ISSUER})
    assert "MCP_AUTH_ISSUER and MCP_AUTH_CLIENT_ID go together" in str(refused.value)
    with pytest.raises(ps.ConfigError) as refused:
        ps.load_config(["--transport", "streamable-http", "--stateless", "--workers", "2"],
                       environ={"MCP_AUTH_ISSUER": ISSUER, "MCP_AUTH_CLIENT_ID": CLIENT_ID})  # fmt: skip
    assert "MCP_OAUTH_STATE_SECRET is required" in str(refused.value)


def test_state_sealing() -> None:
    sealer = ps.StateSealer("secret")
    sealed = sealer.seal({"s": "abc"}, ttl_s=60)
    assert sealer.open(sealed)["s"] == "abc"  # type: ignore[index]
    assert ps.StateSealer("other").open(sealed) is None
    assert sealer.open(sealed.replace(".", "x.", 1)) is None and sealer.open(None) is None
    assert sealer.open(sealer.seal({"s": 1}, ttl_s=-5)) is None


DEFAULT_SCOPES = "openid profile email offline_access"


async def test_scopes_are_advertised_everywhere_a_client_looks() -> None:
    """Without scopes advertised, the SDK client asks for none and a strict provider ends the sign-in."""
    async with served(Provider(), oauth_config()) as http:
        resource = (await http.get("/.well-known/oauth-protected-resource")).json()
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
        challenge = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=HEADERS)
        bare = {k: v for k, v in authorize_query().items() if k != "scope"}
        relayed = await http.get("/authorize", params=bare)
    assert resource["scopes_supported"] == server["scopes_supported"] == DEFAULT_SCOPES.split()
    assert challenge.status_code == 401 and f'scope="{DEFAULT_SCOPES}"' in challenge.headers["www-authenticate"]
    assert "resource_metadata=" in challenge.headers["www-authenticate"]
    assert parse_qs(urlsplit(relayed.headers["location"]).query)["scope"] == [DEFAULT_SCOPES]
    assert server["client_id_metadata_document_supported"] is True and "none" in server[
        "token_endpoint_auth_methods_supported"]  # fmt: skip


async def test_configured_scopes_win() -> None:
    async with served(Provider(), oauth_config(auth_scopes=("openid", "email"))) as http:
        resource = (await http.get("/.well-known/oauth-protected-resource")).json()
    assert resource["scopes_supported"] == ["openid", "email"]


@contextlib.contextmanager
def documents_served(documents: dict[str, tuple[int, dict[str, str], bytes]]) -> Any:
    """Client metadata documents on a real loopback HTTP server: path -> (status, headers, body)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = documents.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def client_document(url: str, redirect: str = "https://claude.ai/api/mcp/auth_callback", **extra: Any) -> bytes:
    return json.dumps({"client_id": url, "client_name": "Claude", "redirect_uris": [redirect],
                       "token_endpoint_auth_method": "none", **extra}).encode()  # fmt: skip


async def test_a_client_with_a_metadata_document_completes_the_flow(database_url: str) -> None:
    """claude.ai's way: its client id is the URL of its metadata document, its callback is claude.ai's. The relay
    fetches and checks the document, asks the provider with the pre-provisioned client id, and the client gets a
    token that lists the tools."""
    claude = "https://claude.ai/api/mcp/auth_callback"
    documents: dict[str, tuple[int, dict[str, str], bytes]] = {}
    with documents_served(documents) as origin:
        client_id = f"{origin}/oauth/client.json"
        documents["/oauth/client.json"] = (200, {"Cache-Control": "max-age=600"}, client_document(client_id))
        provider = Provider()
        config = oauth_config(conn=database_url, stateless=True, cimd_allow_loopback=True)
        async with served(provider, config) as http:
            verifier = secrets.token_urlsafe(40)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            query = {**authorize_query(claude, code_challenge=challenge, client_id=client_id)}
            go = await http.get("/authorize", params=query)
            back = await provider_follow(provider, go.headers["location"])
            answer = await http.get(back)
            landed = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
            tokens = await http.post("/token", data={"grant_type": "authorization_code", "code": landed["code"],
                                                     "redirect_uri": claude, "code_verifier": verifier,
                                                     "client_id": client_id})  # fmt: skip
            bearer = {**HEADERS, "Authorization": f"Bearer {tokens.json()['access_token']}"}
            listed = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=bearer)
            unlisted = await http.get("/authorize", params={**query, "redirect_uri": CLIENT_REDIRECT})
    relayed = parse_qs(urlsplit(go.headers["location"]).query)
    assert go.status_code == 302 and relayed["client_id"] == [CLIENT_ID] and relayed["scope"] == ["openid profile"]
    assert answer.headers["location"].startswith(claude + "?") and landed["iss"] == BASE
    assert tokens.status_code == 200 and listed.json()["result"]["tools"]
    assert unlisted.status_code == 400 and "Claude did not list this redirect address" in unlisted.text


async def test_metadata_documents_are_fetched_with_care() -> None:
    """The URL is the client's choice: https and public addresses only, no redirects, small, and it must
    describe itself under its own URL."""
    documents: dict[str, tuple[int, dict[str, str], bytes]] = {}
    with documents_served(documents) as origin:
        documents["/wrong-id.json"] = (200, {}, client_document(f"{origin}/other.json"))
        documents["/no-uris.json"] = (200, {}, json.dumps({"client_id": f"{origin}/no-uris.json"}).encode())
        documents["/big.json"] = (200, {}, client_document(f"{origin}/big.json", client_uri="x" * 6000))
        documents["/moved.json"] = (302, {"Location": "http://169.254.169.254/latest"}, b"")
        documents["/secret.json"] = (
            200,
            {},
            client_document(f"{origin}/secret.json", token_endpoint_auth_method="private_key_jwt"),
        )
        careful, strict = ps.ClientDocuments(allow_loopback=True), ps.ClientDocuments()
        found = {
            name: await careful.get(f"{origin}/{name}")
            for name in ("wrong-id.json", "no-uris.json", "big.json", "moved.json", "secret.json", "missing.json")
        }
        loopback = await strict.get(f"{origin}/wrong-id.json")
    private = await strict.get("https://10.1.2.3/client.json")
    # the same class spelled otherwise: a decimal IPv4, IPv4-mapped IPv6, NAT64 and 6to4 carrying a private IPv4
    disguised = {
        url: await strict.get(url)
        for url in (
            "https://2130706433/c.json",
            "https://[::ffff:127.0.0.1]/c.json",
            "https://[64:ff9b::a00:1]/c.json",
            "https://[2002:a00:1::]/c.json",
        )
    }
    no_path = await strict.get("https://claude.ai")
    plain = await strict.get("http://claude.ai/client.json")
    assert found["wrong-id.json"] == "its client_id is not its own URL"
    assert found["no-uris.json"] == "it lists no redirect_uris"
    assert found["big.json"] == "it is over 5120 bytes"
    assert found["moved.json"] == "it answered HTTP 302" and found["missing.json"] == "it answered HTTP 404"
    assert "only public clients" in found["secret.json"]
    assert "must be https" in loopback and "must be https" in plain
    assert "not public (10.1.2.3)" in private and "must have a path" in no_path
    assert all("resolves to an address that is not public" in why for why in disguised.values()), disguised


async def test_a_metadata_document_dripping_slowly_is_cut_at_the_time_limit() -> None:
    """httpx2's timeout is per read: a server sending a byte every 0.3 s would hold the fetch for hours. The whole
    fetch has TIMEOUT_S, and a timeout is not remembered (the next attempt may find the server well)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Dripping(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "5000")
            self.end_headers()
            for _ in range(40):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.3)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Dripping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    documents = ps.ClientDocuments(allow_loopback=True)
    documents.TIMEOUT_S = 1.0
    url = f"http://127.0.0.1:{server.server_address[1]}/client.json"
    try:
        started = time.monotonic()
        why = await documents.get(url)
        elapsed = time.monotonic() - started
    finally:
        server.shutdown()
    assert why == "fetching it took over 1 s" and elapsed < 3 and url not in documents.cache


async def test_an_answer_from_another_issuer_is_refused() -> None:
    """RFC 9207 on this server's side: the provider's callback names its issuer; another one (a mix-up attack
    replaying a code from a different provider) never reaches the client."""
    config = oauth_config(oauth_state_secret="k")
    state = ps.StateSealer("k").seal({"s": "x", "r": CLIENT_REDIRECT, "c": CLIENT_ID}, ttl_s=60)
    async with served(Provider(), config) as http:
        mixed_up = await http.get("/oauth/callback", params={"code": "c", "state": state, "iss": "https://evil.test"})
        right = await http.get("/oauth/callback", params={"code": "c", "state": state, "iss": ISSUER})
    assert mixed_up.status_code == 400 and "location" not in mixed_up.headers
    assert right.status_code == 302 and right.headers["location"].startswith(CLIENT_REDIRECT)


async def test_malformed_requests_are_refused_not_failed() -> None:
    """A redirect URI that does not parse, redirect_uris that is no list, and a sealed state offered as a code
    each get the OAuth error, never a 500."""
    config = oauth_config(oauth_state_secret="k")
    state = ps.StateSealer("k").seal({"s": "x", "r": CLIENT_REDIRECT, "c": CLIENT_ID}, ttl_s=60)
    async with served(Provider(), config) as http:
        unparsable = await http.post("/register", json={"redirect_uris": ["http://[::1/cb"]})
        not_a_list = await http.post("/register", json={"redirect_uris": 5})
        state_as_code = await http.post("/token", data={"grant_type": "authorization_code", "code": state})
    assert unparsable.status_code == not_a_list.status_code == 400
    assert unparsable.json()["error"] == not_a_list.json()["error"] == "invalid_redirect_uri"
    assert state_as_code.status_code == 400 and state_as_code.json()["error"] == "invalid_grant"


async def test_the_clients_redirect_uri_keeps_its_query() -> None:
    """RFC 6749 3.1.2: a redirect URI's own query is kept when the answer's parameters are added to it."""
    redirect = "http://127.0.0.1:33418/callback?tenant=7&flag&empty=&next=/a%20b"
    config = oauth_config(oauth_state_secret="k")
    state = ps.StateSealer("k").seal({"s": "x", "r": redirect, "c": CLIENT_ID}, ttl_s=60)
    async with served(Provider(), config) as http:
        answer = await http.get("/oauth/callback", params={"code": "c", "state": state, "iss": ISSUER})
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://127.0.0.1:33418/callback"
    assert location.query.startswith("tenant=7&flag&empty=&next=/a%20b&")  # verbatim: nothing dropped or re-encoded
    query = parse_qs(location.query)
    assert query["tenant"] == ["7"] and query["state"] == ["x"] and query["iss"] == [BASE] and query["code"]


def test_a_state_sealed_by_one_worker_opens_in_another() -> None:
    """Workers and replicas share MCP_OAUTH_STATE_SECRET: each has its own sealer, keyed alike."""
    sealed = ps.StateSealer("shared").seal({"s": "abc", "r": CLIENT_REDIRECT}, ttl_s=60)
    assert ps.StateSealer("shared").open(sealed) == {"s": "abc", "r": CLIENT_REDIRECT}
    assert ps.StateSealer(None).open(sealed) is None  # no secret: a key of this process alone


def test_scopes_are_read_from_scope_and_scp() -> None:
    """`scope` is a space-separated string; `scp` a list (Okta) or a space-separated string (Entra ID)."""
    claims = {"sub": "u", "exp": 1, "scope": "openid email"}
    assert ps.jwt_access_token("t", {**claims, "scp": ["db:read"]}).scopes == ["openid", "email", "db:read"]
    assert ps.jwt_access_token("t", {**claims, "scp": "User.Read Files.Read"}).scopes == [
        "openid", "email", "User.Read", "Files.Read"]  # fmt: skip
