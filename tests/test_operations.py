"""The operator's view: /metrics read with the Prometheus client library's own parser, and the audit trail, both
through real calls of the real MCP client."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from conftest import ROOT, SLOW_SQL, call, connect, ps, server_process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from test_http import BASE, TOKEN, http_app, http_config

pytestmark = pytest.mark.anyio


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, parsed by prometheus_client: (name, labels) -> value."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposition) for sample in family.samples}  # fmt: skip


def calls(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], tool: str, outcome: str) -> float:
    return found[("mcp_tool_calls_total", (("outcome", outcome), ("tool", tool)))]


async def test_metrics_count_every_call_by_tool_and_outcome(database_url: str) -> None:
    config = http_config(database_url, metrics=True, statement_timeout_ms=300)
    async with http_app(config) as http:
        async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client:  # type: ignore[arg-type]
            await call(client, "execute_sql", sql="SELECT 1")
            await call(client, "execute_sql", sql="SELECT g FROM generate_series(1, 10) g", max_rows=3)
            await call(client, "execute_sql", sql="DROP TABLE shop.orders")
            await call(client, "execute_sql", sql="SELECT * FROM no_such_table")
            await call(client, "execute_sql", sql=SLOW_SQL)
            await call(client, "list_tables", schema="shop")
        anonymous = await http.get("/metrics", headers={"Authorization": ""})
        scraped = await http.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(scraped.text)
    # the gate's refusal and the agent's own mistake (42P01) are refusals; nothing here is the database's trouble
    assert calls(found, "execute_sql", "ok") == 2 and calls(found, "execute_sql", "refused") == 2
    assert calls(found, "execute_sql", "database_error") == 0 and calls(found, "execute_sql", "timeout") == 1
    assert calls(found, "list_tables", "ok") == 1 and calls(found, "describe_table", "ok") == 0  # every series
    assert found[("mcp_tool_truncated_total", (("tool", "execute_sql"),))] == 1
    assert found[("mcp_tool_rows_total", (("tool", "execute_sql"),))] == 4  # 1 + 3
    assert found[("mcp_tool_response_bytes_total", (("tool", "list_tables"),))] > 100
    assert found[("mcp_tool_call_duration_seconds_count", (("tool", "execute_sql"),))] == 5
    quick = found[("mcp_tool_call_duration_seconds_bucket", (("le", "0.25"), ("tool", "execute_sql")))]
    assert quick <= 4  # the slow one ran 0.3 s until its timeout (how long the others took is the machine's)
    assert found[("mcp_database_up", ())] == 1 and found[("mcp_db_pool_connections", ())] >= 1
    assert ("mcp_db_pool_in_use", ()) in found and ("mcp_db_pool_waiting", ()) in found


async def test_metrics_off_by_default_public_on_request(database_url: str) -> None:
    async with http_app(http_config(database_url)) as http:
        off = await http.get("/metrics")
    async with http_app(http_config(database_url, metrics=True, metrics_public=True), token=None) as http:
        public = await http.get("/metrics")
    assert off.status_code == 404
    assert public.status_code == 200 and "mcp_tool_calls_total" in public.text


def test_metrics_need_http() -> None:
    with pytest.raises(ps.ConfigError) as refused:
        ps.load_config(["--metrics"], environ={})
    assert str(refused.value) == "--metrics needs --transport streamable-http: /metrics is served over HTTP"


def test_metrics_add_up_across_workers(database_url: str, tmp_path: Path) -> None:
    """Two worker processes: whichever answers /metrics, it counts the calls both served (multiprocess mode);
    the directory where their values meet is gone once the server stops."""
    env = {"DATABASE_URL": database_url, "MCP_API_TOKEN": TOKEN, "MCP_STATELESS": "on", "MCP_WORKERS": "2",
           "MCP_METRICS": "on", "MCP_LOG_LEVEL": "WARNING", "TMPDIR": str(tmp_path)}  # fmt: skip
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": "execute_sql", "arguments": {"sql": "SELECT 1"}}}  # fmt: skip
    with server_process(env) as (server, base):
        for _ in range(20):  # a new connection each: the kernel spreads them over both workers
            with httpx.Client(headers=headers) as http:
                assert http.post(f"{base}/mcp", json=request).status_code == 200
        with httpx.Client(headers=headers) as http:
            totals = {calls(samples(http.get(f"{base}/metrics").text), "execute_sql", "ok") for _ in range(10)}
        assert server.poll() is None and len(list(tmp_path.glob("postgres-mcp-metrics-*/*.db"))) >= 2
    assert totals == {20}
    assert not list(tmp_path.glob("postgres-mcp-metrics-*"))


def permissions_file(tmp_path: Path) -> str:
    path = tmp_path / "permissions.yaml"
    document = {"roles": {"analyst": {"schemas": ["shop"], "tools": ["execute_sql", "list_tables"]}},
                "principals": [{"match": {"static_token": True}, "role": "analyst"}]}  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    ps.load_permissions.cache_clear()
    return str(path)


async def test_audit_records_every_call_without_secrets(database_url: str, tmp_path: Path) -> None:
    """One JSON line per call: who, as which roles, what, the outcome and its size; the token never, parameter
    values only when asked."""
    audit = tmp_path / "audit.jsonl"
    config = http_config(database_url, audit_log=str(audit), permissions_file=permissions_file(tmp_path))
    async with (
        http_app(config) as http,
        Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client,  # type: ignore[arg-type]
    ):
        await call(client, "execute_sql", sql="SELECT $1::text AS secret", params=["hunter2"], max_rows=5)
        await call(client, "execute_sql", sql="SELECT * FROM nowhere")
        await call(client, "describe_table", table="shop.orders")  # not among the role's tools
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["ok", "refused", "denied"]
    first = records[0]
    assert first["principal"] == "static-token" and first["role"] == "analyst" and first["tool"] == "execute_sql"
    assert first["arguments"] == {"sql": "SELECT $1::text AS secret", "max_rows": 5,
                                  "params": "1 values (MCP_AUDIT_PARAMS records them)"}  # fmt: skip
    assert first["rows"] == 1 and first["truncated"] is False and first["bytes"] > 0 and first["duration_ms"] > 0
    assert first["run_as"] == "pg_read_all_data" and first["time"].endswith("+00:00")
    assert first["client"].startswith("mcp/") and first["sqlstate"] is None and first["error"] is None
    assert records[1]["sqlstate"] == "42P01" and records[1]["error"] == "42P01"
    assert records[2]["error"] == "denied" and records[2]["arguments"] == {"table": "shop.orders"}
    text = audit.read_text()
    assert "hunter2" not in text and TOKEN not in text
    assert oct(audit.stat().st_mode & 0o777) == "0o600"


async def test_audit_fingerprints_and_parameter_values_on_request(database_url: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    config = ps.Config(conn=database_url, audit_log=str(audit), audit_sql="fingerprint", audit_params=True)
    async with connect(config) as client:
        await call(client, "execute_sql", sql="SELECT * FROM shop.orders WHERE id = 42")
        await call(client, "execute_sql", sql="SELECT * FROM shop.orders WHERE id = 7", params=[])
        await call(client, "execute_sql", sql="SELECT $1::int", params=[5])
        await call(client, "execute_sql", sql="SELEC broken")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    shapes = [r["arguments"].get("sql_fingerprint") for r in records]
    assert shapes[0] == shapes[1] and shapes[0] != shapes[2] and shapes[3] == "not parsed: 12 characters"
    assert not any("sql" in r["arguments"] for r in records) and "42" not in json.dumps(records[0]["arguments"])
    assert records[2]["arguments"]["params"] == [5] and records[0]["principal"] is None


def test_audit_to_stderr_and_an_unwritable_file_stops_the_start(database_url: str, tmp_path: Path) -> None:
    from test_process import INITIALIZE

    started = subprocess.run([sys.executable, "-m", "postgres_server"], check=False, cwd=ROOT, input=INITIALIZE.encode()
                             + b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_schemas",'
                             b'"arguments":{}}}\n', capture_output=True, timeout=60,
                             env={**os.environ, "DATABASE_URL": database_url, "MCP_AUDIT_LOG": "stderr",
                                  "MCP_LOG_LEVEL": "WARNING"})  # fmt: skip
    lines = [json.loads(line) for line in started.stderr.decode().splitlines() if line.startswith("{")]
    assert [(line["tool"], line["outcome"]) for line in lines] == [("list_schemas", "ok")]
    refused = subprocess.run([sys.executable, "-m", "postgres_server", "--audit-log", str(tmp_path / "no/such/dir")],
                             check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"postgres_server: --audit-log {tmp_path}/no/such/dir: cannot append to it "
                                      "(no such directory)")  # fmt: skip
    assert not (tmp_path / "no").exists()


async def test_audit_survives_rotation_and_bounds_each_line(database_url: str, tmp_path: Path) -> None:
    """A file moved away (logrotate without copytruncate) is reopened at its path; a huge argument is recorded by
    its start, its length and its hash; outcomes: an agent's mistake is refused, the database's trouble is not."""
    audit = tmp_path / "audit.jsonl"
    async with connect(ps.Config(conn=database_url, audit_log=str(audit))) as client:
        await call(client, "list_schemas")
        audit.rename(tmp_path / "audit.jsonl.1")
        await call(client, "describe_table", table="x" * 100_000)
    (rotated,) = [json.loads(line) for line in (tmp_path / "audit.jsonl.1").read_text().splitlines()]
    lines = audit.read_text().splitlines()
    assert rotated["tool"] == "list_schemas" and len(lines) == 1 and len(lines[0]) < 5_000
    digest = hashlib.sha256(b"x" * 100_000).hexdigest()[:16]
    assert json.loads(lines[0])["arguments"]["table"].endswith(f"…[+96000 chars, sha256 {digest}]")
    assert [ps.call_outcome(kind) for kind in ("42P01", "22012", "42501", "25006", "53400", "08006", "57P01",
                                               "cancelled", "KeyError")] == [
        "refused", "refused", "denied", "denied", "refused", "database_error", "database_error", "cancelled",
        "internal"]  # fmt: skip


async def test_a_busy_server_is_not_a_database_down(database_url: str) -> None:
    """A principal's calls past its share wait, then are told the server is busy: counted as timeout, with
    mcp_database_up still 1 (the database answers); a wrong number of params is the agent's mistake (refused)."""
    config = http_config(database_url, metrics=True, max_calls_per_principal=1, pool_timeout_s=1,
                         statement_timeout_ms=2_500)  # fmt: skip
    async with http_app(config) as http:
        async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode="legacy") as client:  # type: ignore[arg-type]
            await call(client, "execute_sql", sql="SELECT 1")
            answers: list[Any] = []
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: call(client, "execute_sql", sql=SLOW_SQL))
                await anyio.sleep(0.3)
                answers.append(await call(client, "execute_sql", sql="SELECT 2"))
            miscounted = await call(client, "execute_sql", sql="SELECT $1::int AS n", params=[1, 2])
        found = samples((await http.get("/metrics")).text)
    assert answers[0].is_error and "server busy for you" in answers[0].text
    assert miscounted.is_error and "params has 2 values but the statement uses $1 to $1" in miscounted.text
    assert calls(found, "execute_sql", "timeout") == 2  # the slow one, and the one that waited for a slot
    assert calls(found, "execute_sql", "refused") == 1 and calls(found, "execute_sql", "database_error") == 0
    assert found[("mcp_database_up", ())] == 1


async def test_an_audit_file_that_cannot_be_reopened_costs_no_call(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The directory of a rotated audit file gone (or a new file the server may not open): the call still answers,
    and the failure is logged."""
    directory = tmp_path / "audit"
    directory.mkdir()
    async with connect(ps.Config(conn=database_url, audit_log=str(directory / "audit.jsonl"))) as client:
        await call(client, "list_schemas")
        shutil.rmtree(directory)
        answer = await call(client, "execute_sql", sql="SELECT 1 AS one")
    assert not answer.is_error and answer.data["rows"] == [[1]]
    assert "cannot write the audit record of a execute_sql call" in caplog.text


async def test_audit_bounds_and_escapes_every_argument(database_url: str, tmp_path: Path) -> None:
    """Parameter values are cut like every string, however nested; a refused lone surrogate is still recorded
    (escaped); a long statement's fingerprint is taken (off the event loop) like a short one's."""
    audit = tmp_path / "audit.jsonl"
    config = ps.Config(conn=database_url, audit_log=str(audit), audit_sql="fingerprint", audit_params=True)
    values = ", ".join(str(n) for n in range(5_000))  # over GATE_OFF_LOOP_CHARS
    async with connect(config) as client:
        await call(client, "execute_sql", sql="SELECT $1::text, $2::text[]", params=["x" * 10_000, ["y" * 5_000]])
        refused = await call(client, "execute_sql", sql="SELECT '\ud800'")
        await call(client, "execute_sql", sql=f"SELECT 1 WHERE 1 IN ({values})")
        await call(client, "execute_sql", sql=f"SELECT 2 WHERE 2 IN ({values})")
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len(records) == 4 and refused.is_error and records[1]["error"] == "invalid_text"
    text, array = records[0]["arguments"]["params"]
    assert text.startswith("x" * 4_000) and "…[+6000 chars, sha256 " in text and len(array[0]) < 4_100
    assert len(values) > ps.GATE_OFF_LOOP_CHARS and not records[2]["arguments"]["sql_fingerprint"].startswith("not")
    assert records[2]["arguments"]["sql_fingerprint"] == records[3]["arguments"]["sql_fingerprint"]


async def test_an_open_metrics_page_keeps_the_host_check(database_url: str) -> None:
    """/metrics with no token asked answers only the Hosts /mcp answers (a rebound DNS name must not read it);
    with a token it answers any Host, as scrapers call it by address."""
    rebound = {"Host": "attacker.example"}
    async with http_app(ps.Config(conn=database_url, transport="streamable-http", metrics=True), token=None) as http:
        open_page = await http.get("/metrics", headers=rebound)
        health = await http.get("/health", headers=rebound)
    async with http_app(http_config(database_url, metrics=True), token=None) as http:
        guarded = await http.get("/metrics", headers=rebound)
    assert open_page.status_code == 421 and health.status_code == 200
    assert guarded.status_code == 401  # past the Host check, at the token check


def test_check_calls_every_tool_as_the_server_whatever_the_permissions_file(database_url: str, tmp_path: Path) -> None:
    """--check with a permissions file that denies unknown callers (the shipped example does): the tools are
    checked as the server itself, and the file is reported."""
    from test_process import run_server

    path = tmp_path / "permissions.yaml"
    path.write_text(yaml.safe_dump({"roles": {"viewer": {"tools": ["list_schemas"]}}, "default_role": "deny"}))
    checked = run_server("--check", "--permissions-file", str(path), env={"DATABASE_URL": database_url})
    assert checked.returncode == 3, checked.stdout + checked.stderr  # 3: a superuser login warns
    assert f"ok   permissions file {path}: roles viewer; default role none (deny)" in checked.stdout
    assert "FAIL" not in checked.stdout
    for tool in ps.TOOL_NAMES:
        assert f"ok   {tool}(" in checked.stdout
