"""Configuration: precedence, validation with one clear line, and no way to switch writes on."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest
from conftest import ROOT, ps


def load(*argv: str, **env: str) -> ps.Config:
    return ps.load_config(list(argv), environ=env)


def refusal(*argv: str, **env: str) -> str:
    with pytest.raises(ps.ConfigError) as refused:
        load(*argv, **env)
    return str(refused.value)


def test_defaults() -> None:
    config = load()
    assert (config.conn, config.transport, config.host, config.port) == (None, "stdio", "127.0.0.1", 8000)
    assert (config.statement_timeout_ms, config.max_rows, config.command) == (30_000, 500, "serve")


def test_nothing_given_is_the_declared_defaults() -> None:
    assert load() == ps.Config()
    assert [setting.key for setting in ps.SETTINGS] == [f.name for f in fields(ps.Config) if f.name != "command"]


def test_flag_beats_environment_beats_default() -> None:
    assert load(MCP_PORT="9000").port == 9000
    assert load("--port", "9100", MCP_PORT="9000").port == 9100
    assert load(DATABASE_URL="postgresql://a@h/db").conn == "postgresql://a@h/db"
    assert load(POSTGRES_CONNECTION_STRING="postgresql://b@h/db").conn == "postgresql://b@h/db"
    assert load("--conn", "postgresql://c@h/db", DATABASE_URL="postgresql://a@h/db").conn == "postgresql://c@h/db"
    assert load(POSTGRES_SCHEMAS="shop, hr").schemas == ("shop", "hr")
    assert load("--stateless").stateless is True and load(MCP_STATELESS="yes").stateless is True
    assert load("--check").command == "check" and load("--demo").command == "demo"


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--port", "abc"], {}, "--port must be an integer between 1 and 65535 (got 'abc')"),
        ([], {"MCP_PORT": "70000"}, "MCP_PORT must be an integer between 1 and 65535 (got '70000')"),
        ([], {"MCP_TRANSPORT": "sse"}, "MCP_TRANSPORT must be one of: stdio, streamable-http (got 'sse')"),
        ([], {"POSTGRES_STATEMENT_TIMEOUT_MS": "0"}, "POSTGRES_STATEMENT_TIMEOUT_MS must be an integer between 100"),
        ([], {"POSTGRES_MAX_ROWS": "-1"}, "POSTGRES_MAX_ROWS must be an integer between 1"),
        ([], {"MCP_STATELESS": "maybe"}, "MCP_STATELESS must be true or false (got 'maybe')"),
        ([], {"MCP_PUBLIC_URL": "mcp.example.com"}, "MCP_PUBLIC_URL must be an absolute http(s) URL"),
        ([], {"MCP_POOL_MIN": "5", "MCP_POOL_MAX": "2"}, "MCP_POOL_MIN (5) must not exceed MCP_POOL_MAX (2)"),
        (["--no-such-flag"], {}, "unrecognized arguments: --no-such-flag"),
        (["--demo", "--check"], {}, "not allowed with argument"),
    ],
)
def test_bad_values_name_the_setting(argv: list[str], env: dict[str, str], message: str) -> None:
    assert message in refusal(*argv, **env)


def test_a_bad_connection_string_never_echoes_it() -> None:
    message = refusal(DATABASE_URL="host=x password=hunter2 dbname")
    assert "DATABASE_URL is not a valid PostgreSQL connection string" in message and "hunter2" not in message


@pytest.mark.parametrize(
    "env",
    [{"POSTGRES_READONLY": "false"}, {"POSTGRES_READ_ONLY": "0"}, {"READ_ONLY": "off"}, {"POSTGRES_ALLOW_WRITES": "1"},
     {"MCP_ALLOW_WRITES": "true"}],
)  # fmt: skip
def test_no_setting_weakens_read_only(env: dict[str, str]) -> None:
    message = refusal(**env)
    assert "read-only by construction" in message and "no write mode" in message


def test_settings_that_agree_with_read_only_are_accepted() -> None:
    load(POSTGRES_READONLY="true")
    load(POSTGRES_ALLOW_WRITES="false")


def test_remote_bind_needs_auth_or_an_explicit_flag() -> None:
    message = refusal("--transport", "streamable-http", "--host", "0.0.0.0")
    assert "MCP_API_TOKEN" in message and "--allow-unauthenticated" in message
    assert load("--transport", "streamable-http", "--host", "0.0.0.0", MCP_API_TOKEN="t").api_token == "t"
    assert load("--transport", "streamable-http", "--host", "0.0.0.0", "--allow-unauthenticated").host == "0.0.0.0"
    assert load("--transport", "streamable-http", "--host", "localhost").host == "localhost"


def run_server(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "postgres_server.py"), *argv]
    environment = {"PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=timeout, env=environment)


@pytest.mark.parametrize(
    ("argv", "env"),
    [(["--port", "abc"], {}), ([], {"POSTGRES_READONLY": "false"}), (["--bogus"], {}),
     (["--transport", "streamable-http", "--host", "0.0.0.0"], {})],
)  # fmt: skip
def test_bad_configuration_exits_2_with_one_line(argv: list[str], env: dict[str, str]) -> None:
    finished = run_server(*argv, env=env)
    assert finished.returncode == 2
    assert finished.stdout == ""
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("postgres_server: "), finished.stderr
