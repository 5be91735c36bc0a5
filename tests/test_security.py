"""Read-only by construction: every attack as a superuser, then each defence layer on its own.

The server under test connects as a superuser (the threat model's misconfiguration). After every attack
the database's fingerprint (data, relations, functions, roles, sequences, settings, advisory locks) must be
unchanged, and the pooled connection must be clean for the next call.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from conftest import call, connect, fingerprint, ps
from test_gate import REFUSED

pytestmark = pytest.mark.anyio

# Statements the gate lets through (they are reads) that still try to write: Postgres must refuse them.
RUNTIME_ATTACKS = [
    ("SELECT public.sneaky()", "25006"),  # a user function that INSERTs
    ("EXPLAIN ANALYZE SELECT public.sneaky()", "25006"),
    ("SELECT * FROM victim WHERE public.sneaky() = 1", "25006"),
]

# Writes and session changes sent with the gate switched off: the other layers must hold alone.
BYPASS_WRITES = [
    "DELETE FROM victim",
    "UPDATE victim SET v = 'x'",
    "INSERT INTO victim VALUES (50, 'x')",
    "TRUNCATE victim",
    "DROP TABLE victim",
    "CREATE TABLE pwned (i int)",
    "CREATE TEMP TABLE pwned (i int)",
    "ALTER TABLE victim ADD COLUMN pwned int",
    "CREATE ROLE pwned SUPERUSER",
    "ALTER ROLE mcp_test_reader SUPERUSER",
    "GRANT ALL ON victim TO PUBLIC",
    "COMMENT ON TABLE victim IS 'pwned'",
    "SELECT nextval('public.counter_seq')",
    "SELECT setval('public.counter_seq', 100)",
    "SELECT public.sneaky()",
    "SELECT public.sneaky_definer()",
    "WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d",
    "COPY victim FROM STDIN",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "VACUUM victim",
    "CREATE DATABASE pwned",
    "REFRESH MATERIALIZED VIEW analytics.customer_value",
    "SELECT 1; DELETE FROM victim",
    "SELECT 1; COMMIT; DELETE FROM victim",
    "COMMIT; DELETE FROM victim",
    "SELECT * FROM victim FOR UPDATE",
    "DO $$ BEGIN DELETE FROM victim; END $$",
    "CALL nothing()",
]


async def test_every_known_escape_is_refused_and_nothing_changes(config: ps.Config, database_url: str) -> None:
    before = fingerprint(database_url)
    async with connect(config) as client:
        for sql, _words in REFUSED:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error, f"not refused: {sql}"
            assert result.text and "Error executing tool" not in result.text
        for sql, sqlstate in RUNTIME_ATTACKS:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error and f"ERROR {sqlstate}" in result.text, (sql, result.text)
            assert "read-only" in result.text
        assert (await call(client, "execute_sql", sql="SELECT count(*) FROM victim")).data["rows"] == [[3]]
    assert fingerprint(database_url) == before


@pytest.fixture(params=["direct", "cursor"])
def gate_bypassed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Switch the SQL gate off: every statement goes to Postgres, by the direct or the cursor path."""
    kind = "explain" if request.param == "direct" else "select"
    monkeypatch.setattr(ps, "gate", lambda sql: ps.GatedStatement(sql=sql, kind=kind, offset=0))
    return request.param


async def test_transaction_and_protocol_hold_without_the_gate(
    config: ps.Config, database_url: str, gate_bypassed: str
) -> None:
    before = fingerprint(database_url)
    async with connect(config) as client:
        for sql in BYPASS_WRITES:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error, f"{gate_bypassed} path ran: {sql}"
            assert result.text.startswith("ERROR ")
        after = await call(
            client, "execute_sql", sql="SELECT count(*), current_setting('transaction_read_only') FROM victim"
        )
    assert after.data["rows"] == [[3, "on"]]
    assert fingerprint(database_url) == before


async def test_protocol_refuses_several_statements_without_the_gate(config: ps.Config, gate_bypassed: str) -> None:
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT 1; SELECT 2")
    assert "ERROR 42601" in result.text and "cannot insert multiple commands" in result.text


SESSION_CHANGES: list[tuple[str, str, Any]] = [
    # (statement sent with the gate off, check run on the next call, expected answer)
    ("SELECT pg_advisory_lock(4242)", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", 0),
    # (the server's own statements are prepared at the protocol level: from_sql is false for them)
    ("PREPARE leak AS SELECT 1", "SELECT count(*) FROM pg_prepared_statements WHERE from_sql", 0),
    ("LISTEN leak", "SELECT count(*) FROM pg_listening_channels()", 0),
    ("DECLARE leak CURSOR WITH HOLD FOR SELECT 1", "SELECT count(*) FROM pg_cursors WHERE name = 'leak'", 0),
    ("SET work_mem = '77MB'", "SELECT current_setting('work_mem') <> '77MB'", True),
    ("SET ROLE mcp_test_reader", "SELECT current_user <> 'mcp_test_reader'", True),
    ("SET SESSION AUTHORIZATION mcp_test_reader", "SELECT session_user <> 'mcp_test_reader'", True),
    ("SET default_transaction_read_only = off", "SELECT current_setting('default_transaction_read_only')", "on"),
    ("SELECT set_config('default_transaction_read_only', 'off', false)",
     "SELECT current_setting('default_transaction_read_only')", "on"),
    ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "SELECT current_setting('transaction_read_only')", "on"),
    ("SET search_path = pg_temp, public", "SELECT current_setting('search_path') NOT LIKE 'pg_temp%'", True),
    ("COMMIT", "SELECT current_setting('transaction_read_only')", "on"),
    # Postgres allows LOCK in a read-only transaction; the rollback in the same round trip releases it.
    ("LOCK victim IN ACCESS EXCLUSIVE MODE",
     "SELECT count(*) FROM pg_locks WHERE relation = 'victim'::regclass AND mode = 'AccessExclusiveLock'", 0),
    ("SET statement_timeout = 0", "SELECT current_setting('statement_timeout')", "30s"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "check", "expected"), SESSION_CHANGES)
async def test_session_state_never_survives_into_the_next_call(
    database_url: str, monkeypatch: pytest.MonkeyPatch, change: str, check: str, expected: Any
) -> None:
    """One pooled connection, gate off: whatever the first call changes is gone for the next."""
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1)
    monkeypatch.setattr(ps, "gate", lambda sql: ps.GatedStatement(sql=sql, kind="explain", offset=0))
    async with connect(config) as client:
        await call(client, "execute_sql", sql=change)
        result = await call(client, "execute_sql", sql=check)
    assert not result.is_error, result.text
    assert result.data["rows"] == [[expected]], (change, result.data)


async def test_new_connections_default_to_read_only(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SHOW default_transaction_read_only")
    assert result.data["rows"] == [["on"]]


async def test_role_posture_flags_a_superuser_and_clears_a_reader(database_url: str, reader_url: str) -> None:
    for url, read_only in ((database_url, False), (reader_url, True)):
        posture = await ps.probe_posture(ps.Config(conn=url))
        assert posture["read_only_role"] is read_only, posture
        if not read_only:
            assert "role is a superuser" in posture["warnings"]


async def test_reader_role_cannot_read_secrets_even_past_the_gate(
    reader_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ps, "gate", lambda sql: ps.GatedStatement(sql=sql, kind="select", offset=0))
    async with connect(ps.Config(conn=reader_url)) as client:
        secrets = await call(client, "execute_sql", sql="SELECT rolpassword FROM pg_authid")
        files = await call(client, "execute_sql", sql="SELECT pg_read_file('postgresql.conf')")
    assert "ERROR 42501" in secrets.text and "ERROR 42501" in files.text


async def test_agent_sql_cannot_reach_outside_the_transaction_by_cursor_name(config: ps.Config) -> None:
    """The server's own cursor name is not a handle an agent can use: FETCH and CLOSE are refused."""
    async with connect(config) as client:
        fetch = await call(client, "execute_sql", sql="FETCH ALL FROM mcp_rows")
        close = await call(client, "execute_sql", sql="CLOSE mcp_rows")
    assert fetch.is_error and close.is_error


async def test_password_never_appears_in_errors(database_url: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(database_url)
    params.update(host="127.0.0.1", port="1", password="sup3r-s3cret")
    config = ps.Config(conn=psycopg.conninfo.make_conninfo(**params), pool_timeout_s=1)
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT 1")
    assert result.is_error and "cannot connect to the database at 127.0.0.1:1" in result.text
    assert "sup3r-s3cret" not in result.text


async def test_own_statements_are_prepared_once_per_connection(database_url: str) -> None:
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1)
    async with connect(config) as client:
        for _ in range(3):
            assert not (await call(client, "describe_table", table="shop.orders")).is_error
        result = await call(client, "execute_sql", sql=(
            "SELECT count(*) FILTER (WHERE name LIKE 'mcp\\_%'), count(*) FILTER (WHERE from_sql) "
            "FROM pg_prepared_statements"))  # fmt: skip
    prepared, by_sql = result.data["rows"][0]
    assert prepared >= 3 and by_sql == 0  # limits, describe, hygiene: protocol-level, and kept


async def test_vanished_prepared_statements_switch_preparing_off(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """What a transaction pooler does (the next transaction lands on another backend) is simulated with
    DEALLOCATE ALL sent past the gate: the call still answers, and nothing is prepared any more."""
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1)
    async with connect(config) as client:
        assert not (await call(client, "list_schemas")).is_error
        with monkeypatch.context() as patched:
            patched.setattr(ps, "gate", lambda sql: ps.GatedStatement(sql=sql, kind="explain", offset=0))
            await call(client, "execute_sql", sql="DEALLOCATE ALL")
        again = await call(client, "list_schemas")
        after = await call(client, "describe_table", table="shop.orders")
    assert not again.is_error and not after.is_error
    assert "no longer prepared" in caplog.text
