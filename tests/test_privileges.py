"""Read-only that the database itself enforces: the catalog function policy, the per-call privilege drop, each
layer alone, the strict allowlist mode, a policy that follows DDL, and identities that cannot be forged.

The server connects as a superuser (the threat model): every call still drops to pg_read_all_data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import admin, call, connect, fingerprint, objects, permissions_file, ps
from test_security import BYPASS_WRITES

pytestmark = pytest.mark.anyio

SETUP_SQL = """
CREATE SCHEMA hidden_fns;
CREATE FUNCTION hidden_fns.peek() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'hidden' $$;
-- A SECURITY DEFINER function the operator allowed as a definer, whose labels the allowlist policy does not trust
-- (what it really does is harmless here: a body that named a refused function would be refused by any policy).
CREATE FUNCTION public.mislabelled() RETURNS int LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
BEGIN RETURN 1; END $$;
-- Bodies are read as text: a STABLE function wrapping a refused one is refused, and so is dynamic SQL.
CREATE FUNCTION public.wraps_sleep() RETURNS void LANGUAGE sql STABLE AS 'SELECT pg_catalog.pg_sleep(1)';
CREATE FUNCTION public.runs_text(q text) RETURNS void LANGUAGE plpgsql STABLE AS $$ BEGIN EXECUTE q; END $$;
CREATE VIEW public.sleepy_view AS SELECT pg_catalog.pg_sleep(1)::text AS slept;
CREATE VIEW public.secrets_view AS SELECT rolname, rolpassword FROM pg_catalog.pg_authid;
CREATE FUNCTION public.plain_reader() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM public.victim $$;
CREATE FUNCTION public.definer_reader() RETURNS bigint LANGUAGE sql STABLE SECURITY DEFINER AS
$$ SELECT count(*) FROM public.victim $$;
CREATE FUNCTION public.plus_definer(int, int) RETURNS int LANGUAGE sql IMMUTABLE SECURITY DEFINER AS
$$ SELECT $1 + $2 $$;
CREATE OPERATOR public.=== (FUNCTION = public.plus_definer, LEFTARG = int, RIGHTARG = int);
CREATE VIEW public.definer_view AS SELECT public.definer_reader() AS n;
CREATE DOMAIN public.checked_int AS int CHECK (public.plus_definer(VALUE, 0) > 0);
"""
TEARDOWN_SQL = """
DROP VIEW IF EXISTS public.sleepy_view, public.secrets_view;
DROP FUNCTION IF EXISTS public.plus_definer(int, int), public.definer_reader(), public.plain_reader(),
    public.mislabelled(), public.later_definer(), public.flipped(), public.wraps_sleep(), public.runs_text(text)
    CASCADE;
DROP SCHEMA IF EXISTS hidden_fns CASCADE;
"""


@pytest.fixture(scope="module")
def functions_db(database_url: str) -> Iterator[str]:
    with objects(database_url, SETUP_SQL, TEARDOWN_SQL) as url:
        yield url


# (statement, words the refusal names: the function and the rule)
CATALOG_REFUSALS = [
    ("SELECT pg_sleep(1)", "pg_sleep() refused: it is VOLATILE"),
    ('SELECT U&"pg_sl\\0065ep"(1)', "pg_sleep() refused"),
    ("SELECT pg_catalog.pg_sleep_for('1 s')", "pg_sleep_for() refused"),
    ("SELECT pg_sleep_until(now() + interval '1 s')", "pg_sleep_until() refused"),
    ("SELECT (1::float8).pg_sleep", "pg_sleep() refused (reached through attribute notation .pg_sleep)"),
    ("SELECT setseed(0.5)", "setseed() refused: it is VOLATILE"),
    ("SELECT v.x.setseed FROM (VALUES (0.5::float8)) v(x)", "setseed() refused"),
    ("SELECT (pg_backend_pid()).pg_terminate_backend", "pg_terminate_backend() refused"),
    ("SELECT ((('data_directory'::text).current_setting) || '/PG_VERSION').pg_read_file", "refused"),
    ("SELECT (('postgresql.conf')::text).pg_read_file", "pg_read_file() refused"),
    ("SELECT ('slot'::name).pg_create_physical_replication_slot", "pg_create_physical_replication_slot"),
    ("SELECT ('label'::text).pg_backup_start", "pg_backup_start"),
    ("SELECT (1::oid).lo_get", "lo_get"),
    ("SELECT ('shop.orders'::regclass::oid).pg_stat_reset_single_table_counters", "pg_stat_reset_single_table"),
    ("SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')", "ts_rewrite() refused"),
    ("SELECT ('a'::tsquery).ts_rewrite", "ts_rewrite() refused"),
    ("SELECT table_to_xml('victim'::regclass, true, true, '')", "table_to_xml() refused"),
    ("SELECT pg_stat_clear_snapshot()", "pg_stat_clear_snapshot() refused"),
    ("SELECT currval('public.counter_seq')", "currval() refused: it is VOLATILE"),
    ("SELECT pg_sequence_last_value('public.counter_seq')", "pg_sequence_last_value() refused"),
    ("SELECT public.sneaky_definer()", "sneaky_definer() refused: it is SECURITY DEFINER"),
    ("SELECT public.definer_reader()", "definer_reader() refused: it is SECURITY DEFINER"),
    ("SELECT 1 === 2", "plus_definer() refused (reached through operator ===)"),
    ("SELECT 1 OPERATOR(public.===) 2", "plus_definer() refused (reached through operator public.===)"),
    ("SELECT * FROM public.definer_view", "definer_reader() refused (reached through reading public.definer_view)"),
    ("SELECT n FROM definer_view", "definer_reader() refused"),
    ("SELECT 5::public.checked_int", "plus_definer() refused (reached through a cast to public.checked_int)"),
    ("SELECT public.wraps_sleep()", "pg_sleep() refused (reached through public.wraps_sleep())"),
    ("SELECT * FROM public.sleepy_view", "pg_sleep() refused (reached through reading public.sleepy_view)"),
    ("SELECT public.runs_text('SELECT 1')", "runs_text() refused: it runs SQL built at run time"),
    ("SELECT * FROM secrets_view", "relation secrets_view refused: it reads pg_authid"),
    ("SELECT * FROM victim TABLESAMPLE system(50) WHERE public.sneaky_definer() = 1", "sneaky_definer"),
    ("SELECT current_setting('app.jwt_secret')", "setting 'app.jwt_secret' refused"),
    ("SHOW app.jwt_secret", "setting 'app.jwt_secret' refused"),
    ("SELECT setconfig FROM pg_db_role_setting", "pg_db_role_setting refused"),
    (
        "EXPLAIN DELETE FROM victim WHERE id = public.plain_reader()",
        "is the database's own function; EXPLAIN of a write",
    ),
]
HONEST = [
    "SELECT random() < 2, clock_timestamp() IS NOT NULL, gen_random_uuid() IS NOT NULL",
    "SELECT pg_size_pretty(pg_total_relation_size('shop.orders'))",
    "SELECT public.plain_reader()",  # a user function: judged by its labels, run under the privilege drop
    "SELECT count(*) FROM shop.orders TABLESAMPLE SYSTEM (50)",
    "SELECT o.id, o.status FROM shop.orders o WHERE o.id BETWEEN 1 AND 3 ORDER BY o.id USING >",
    "SELECT 1 WHERE 1 = ANY (SELECT 1) AND 'a' LIKE 'a%' AND NULLIF(1, 2) = 1",
    "EXPLAIN DELETE FROM victim WHERE id > 1",
    "EXPLAIN (ANALYZE false) UPDATE victim SET v = upper(v)",
]


async def test_catalog_policy_refuses_every_class_and_names_function_and_rule(
    config: ps.Config, functions_db: str
) -> None:
    before = fingerprint(functions_db)
    async with connect(config) as client:
        for sql, words in CATALOG_REFUSALS:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error and words in result.text, (sql, result.text)
        for sql in HONEST:
            result = await call(client, "execute_sql", sql=sql)
            assert not result.is_error, (sql, result.text)
    assert fingerprint(functions_db) == before


async def test_every_call_drops_to_a_least_privileged_role(config: ps.Config) -> None:
    async with connect(config) as client:
        who = await call(client, "execute_sql", sql="SELECT current_user, session_user")
        plan = await call(client, "execute_sql", sql="EXPLAIN DELETE FROM victim")
    assert who.data["rows"][0][0] == "pg_read_all_data" and who.data["rows"][0][1] != "pg_read_all_data"
    assert not plan.is_error and "Delete on victim" in plan.text  # a write's plan is made as the login role


def gate_only_refusing_role_changes(sql: str) -> ps.GatedStatement:
    """The gate switched off for everything except what undoes the privilege drop (set_config, SET/RESET ROLE)."""
    lowered = sql.lower()
    if "set_config" in lowered or "role" in lowered or "session authorization" in lowered:
        raise ps.GateRefusal("role change refused")
    return ps.GatedStatement(sql=sql, kind="explain", offset=0)


# With the gate and the function policy off, PostgreSQL's own privilege checks on the dropped role still refuse.
PRIVILEGE_ATTACKS = [
    ("SELECT pg_read_file('postgresql.conf')", "42501"),
    ("SELECT pg_ls_dir('.')", "42501"),
    ("SELECT pg_stat_file('postgresql.conf')", "42501"),
    ("SELECT lo_import('/etc/passwd')", "42501"),
    ("SELECT pg_create_physical_replication_slot('mcp_test_slot')", "42501"),
    ("SELECT pg_backup_start('x')", "42501"),
    ("SELECT pg_reload_conf()", "42501"),
    ("SELECT pg_stat_reset()", "42501"),
    ("SELECT pg_switch_wal()", "42501"),
    ("COPY (SELECT 1) TO '/tmp/mcp-pwned'", "42501"),
    ("SELECT current_setting('data_directory')", "42501"),
    ("SELECT public.sneaky()", "25006"),
]


async def test_privilege_drop_holds_with_the_gate_off(
    config: ps.Config, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ps, "gate", gate_only_refusing_role_changes)
    monkeypatch.setattr(ps, "check_functions", lambda *args: None)
    before = fingerprint(database_url)
    with psycopg.connect(database_url, autocommit=True) as bystander:
        pid = bystander.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        async with connect(config) as client:
            for sql, sqlstate in [*PRIVILEGE_ATTACKS, (f"SELECT pg_terminate_backend({pid})", "42501")]:
                result = await call(client, "execute_sql", sql=sql)
                assert result.is_error and f"ERROR {sqlstate}" in result.text, (sql, result.text)
            undo = await call(client, "execute_sql", sql="SELECT set_config('role', 'none', true)")
        assert undo.is_error
        assert bystander.execute("SELECT 1").fetchone() == (1,)  # still alive
    assert fingerprint(database_url) == before
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone() == (0,)


async def test_gate_holds_without_the_privilege_drop(
    config: ps.Config, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way round: calls run as the superuser itself, and the gate alone refuses."""
    monkeypatch.setattr(ps, "run_as_role", lambda posture, config: "")
    before = fingerprint(database_url)
    async with connect(config) as client:
        assert (await call(client, "execute_sql", sql="SELECT current_user")).data["rows"] != [["pg_read_all_data"]]
        gate_refuses = [sql for sql, state in PRIVILEGE_ATTACKS if state == "42501"]  # not a user's own function
        writes = [sql for sql in BYPASS_WRITES if "sneaky" not in sql]  # ditto
        for sql in [*gate_refuses, *writes, "SELECT set_config('role', 'none', true)"]:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error and not result.text.startswith("ERROR"), (sql, result.text)  # the gate said no
    assert fingerprint(database_url) == before


async def test_a_superuser_with_nothing_to_drop_to_is_refused() -> None:
    posture = {"user": "admin", "warnings": ["role is a superuser"], "superuser": True, "can_read_all_data": False}
    with pytest.raises(ps.ToolFailure, match="refusing to run calls as superuser admin"):
        ps.run_as_role(posture, ps.Config())
    assert ps.run_as_role({**posture, "can_read_all_data": True}, ps.Config()) == "pg_read_all_data"
    assert ps.run_as_role({**posture, "warnings": [], "superuser": False}, ps.Config()) == ""


async def test_read_role_setting(database_url: str) -> None:
    async with connect(ps.Config(conn=database_url, read_role="mcp_test_reader")) as client:
        who = await call(client, "execute_sql", sql="SELECT current_user")
    async with connect(ps.Config(conn=database_url, read_role="no_such_role")) as client:
        missing = await call(client, "execute_sql", sql="SELECT 1")
    assert who.data["rows"] == [["mcp_test_reader"]]
    assert missing.is_error and "POSTGRES_READ_ROLE 'no_such_role' does not exist" in missing.text


async def test_allowlist_mode_runs_only_listed_non_builtins(database_url: str, functions_db: str) -> None:
    before = fingerprint(database_url)
    strict = ps.Config(conn=database_url, function_policy="allowlist", allowed_functions=("public.plain_reader",),
                       definer_functions=("public.mislabelled",))  # fmt: skip
    async with connect(strict) as client:
        mislabelled = await call(client, "execute_sql", sql="SELECT public.mislabelled()")
        listed = await call(client, "execute_sql", sql="SELECT public.plain_reader()")
        builtin = await call(client, "execute_sql", sql="SELECT lower('A'), now() IS NOT NULL")
    assert mislabelled.is_error and "mislabelled() refused: it is not in MCP_ALLOWED_FUNCTIONS" in mislabelled.text
    assert listed.data["rows"] == [[3]] and builtin.data["rows"] == [["a", True]]
    trusting = ps.Config(conn=database_url, definer_functions=("mislabelled",))
    async with connect(trusting) as client:  # the catalog policy trusts the labels of an allowed definer
        ran = await call(client, "execute_sql", sql="SELECT public.mislabelled()")
    assert ran.data["rows"] == [[1]]
    assert fingerprint(database_url) == before


async def test_policy_follows_ddl_without_a_restart(database_url: str, functions_db: str) -> None:
    """A function created after the snapshot (unknown name) and one altered after it (the catalog marker moves)
    are both judged on what they are now."""
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1)
    admin(database_url, "DROP FUNCTION IF EXISTS public.flipped(), public.later_definer()")
    admin(database_url, "CREATE FUNCTION public.flipped() RETURNS int LANGUAGE sql STABLE AS 'SELECT 1'")
    async with connect(config) as client:
        assert (await call(client, "execute_sql", sql="SELECT public.flipped()")).data["rows"] == [[1]]
        admin(database_url, "ALTER FUNCTION public.flipped() SECURITY DEFINER")
        admin(database_url, "SELECT pg_stat_force_next_flush()")  # what an idle session does within a second
        flipped = await call(client, "execute_sql", sql="SELECT public.flipped()")
        admin(database_url, "CREATE FUNCTION public.later_definer() RETURNS int LANGUAGE sql SECURITY DEFINER "
              "AS 'SELECT 1'")  # fmt: skip
        app_catalog_age_over_a_second()
        later = await call(client, "execute_sql", sql="SELECT public.later_definer()")
    assert flipped.is_error and "flipped() refused: it is SECURITY DEFINER" in flipped.text
    assert later.is_error and "later_definer() refused: it is SECURITY DEFINER" in later.text


def app_catalog_age_over_a_second() -> None:
    """Unknown names reload the snapshot at most once a second: wait that long (no timing is asserted)."""
    import time

    time.sleep(1.1)


@contextlib.contextmanager
def database_setting(url: str, name: str, value: str) -> Iterator[None]:
    dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    admin(url, f"ALTER DATABASE {dbname} SET {name} = '{value}'")
    try:
        yield
    finally:
        admin(url, f"ALTER DATABASE {dbname} RESET {name}")


SECRET_SETTING_READS = [
    "SELECT current_setting('app.jwt_secret')",
    "SHOW app.jwt_secret",
    "SHOW APP.JWT_SECRET",
    "SELECT current_setting('app.jwt_secret', true)",
    "SELECT setconfig FROM pg_db_role_setting",
]


async def test_custom_settings_are_refused_unless_listed(database_url: str) -> None:
    with database_setting(database_url, "app.jwt_secret", "top-secret-value"):
        async with connect(ps.Config(conn=database_url)) as client:
            texts = [(await call(client, "execute_sql", sql=sql)).text for sql in SECRET_SETTING_READS]
        async with connect(ps.Config(conn=database_url, allowed_settings=("app.jwt_secret",))) as client:
            listed = await call(client, "execute_sql", sql="SHOW app.jwt_secret")
    assert all("refused" in text and "top-secret-value" not in text for text in texts), texts
    assert listed.data["rows"] == [["top-secret-value"]]


async def test_random_is_reseeded_between_calls(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """setseed is refused; and even with the gate off, the next call's random() is not the seeded sequence."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT setseed(0.5)")
        seeded = conn.execute("SELECT random()").fetchone()[0]  # type: ignore[index]
    monkeypatch.setattr(ps, "gate", lambda sql: ps.GatedStatement(sql=sql, kind="explain", offset=0))
    monkeypatch.setattr(ps, "check_functions", lambda *args: None)
    async with connect(ps.Config(conn=database_url, pool_min=1, pool_max=1)) as client:
        await call(client, "execute_sql", sql="SELECT setseed(0.5)")
        after = await call(client, "execute_sql", sql="SELECT random()")
    assert after.data["rows"][0][0] != seeded


# ---- identities ----


def test_forged_claims_do_not_match_principals(tmp_path: Path) -> None:
    path = permissions_file(tmp_path, {
        "roles": {"admin": {}, "mail": {}},
        "principals": [{"match": {"static_token": True}, "role": "admin"},
                       {"match": {"email": "alice@example.com"}, "role": "mail"}]})  # fmt: skip
    permissions = ps.load_permissions(path)
    jwt_token = ps.AccessToken(token="t", client_id="c", scopes=[], subject="mallory",
                               claims={"static_token": True, "email": "alice@example.com"})  # fmt: skip
    unverified = ps.AccessToken(token="t", client_id="c", scopes=[], subject="x",
                                claims={"email": "alice@example.com", "email_verified": False})  # fmt: skip
    verified = ps.AccessToken(token="t", client_id="c", scopes=[], subject="x",
                              claims={"email": "alice@example.com", "email_verified": True})  # fmt: skip
    static = ps.StaticAccessToken(token="t", client_id="static-token", scopes=[], subject="static-token")
    assert permissions.role_for(jwt_token) is None and permissions.role_for(unverified) is None
    assert permissions.role_for(verified).name == "mail"  # type: ignore[union-attr]
    assert permissions.role_for(static).name == "admin"  # type: ignore[union-attr]
    trusting = ps.load_permissions(path, trust_unverified_email=True)
    assert trusting.role_for(unverified).name == "mail"  # type: ignore[union-attr]


async def test_forged_static_token_claim_over_http(database_url: str, tmp_path: Path) -> None:
    from test_oauth import Provider, oauth_config, served

    path = permissions_file(tmp_path, {"roles": {"admin": {}}, "principals": [
        {"match": {"static_token": True}, "role": "admin"}]})  # fmt: skip
    provider = Provider()
    config = oauth_config(conn=database_url, permissions_file=path, api_token="static-tok", stateless=True)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "list_schemas", "arguments": {}}}
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    async with served(provider, config) as http:
        forged = provider.mint(sub="mallory", static_token=True)
        denied = await http.post("/mcp", json=body, headers={**headers, "Authorization": f"Bearer {forged}"})
        allowed = await http.post("/mcp", json=body, headers={**headers, "Authorization": "Bearer static-tok"})
    assert denied.json()["result"]["isError"] and "permission denied" in denied.json()["result"]["content"][0]["text"]
    assert not allowed.json()["result"].get("isError")


def fn(name: str, **facts: Any) -> ps.Function:
    base = {"oid": 50_000, "schema": "public", "name": name, "volatile": False, "security_definer": False,
            "extension": None, "language": "sql"}  # fmt: skip
    return ps.Function(**{**base, **facts})


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (fn("invoke", schema="aws_lambda", volatile=True, extension="aws_lambda", language="c"), "VOLATILE"),
        (fn("query_export_to_s3", volatile=True, extension="aws_s3", language="plpgsql"), "VOLATILE"),
        (fn("heap_force_kill", volatile=True, extension="pg_surgery", language="c"), "extension pg_surgery"),
        (fn("pg_sleep", oid=2626, schema="pg_catalog", volatile=True, language="internal"), "VOLATILE"),
        (fn("any_name", security_definer=True), "SECURITY DEFINER"),
        (fn("run", language="plpgsql", source="BEGIN EXECUTE $1; END"), "runs SQL built at run time"),
        (fn("py", language="plpython3u", source="return 1"), "written in plpython3u"),
        (fn("dblink_exec", extension="dblink"), "opens connections to other servers"),
    ],
)
def test_function_refusal_rules(function: ps.Function, words: str) -> None:
    assert words in (ps.function_refusal(function, ps.Config(), None, False) or "")


def test_function_refusal_allows_honest_functions_and_listed_exceptions() -> None:
    config = ps.Config()
    assert ps.function_refusal(fn("random", oid=1598, schema="pg_catalog", volatile=True), config, None, False) is None
    assert (
        ps.function_refusal(fn("report", volatile=True, language="plpgsql", source="BEGIN END"), config, None, False)
        is None
    )
    definer = fn("audited", security_definer=True)
    assert ps.function_refusal(definer, ps.Config(definer_functions=("public.audited",)), None, False) is None
    runner = fn("run", language="plpgsql", source="BEGIN EXECUTE 'SELECT 1'; END")
    assert ps.function_refusal(runner, ps.Config(allowed_functions=("run",)), None, False) is None
    assert "EXPLAIN of a write" in (ps.function_refusal(fn("report"), config, None, True) or "")  # a write's plan


# Routes a cold review found to functions no statement names (each ran a SECURITY DEFINER or refused function).
IMPLICIT_SETUP = """
CREATE FUNCTION public.atomic_role() RETURNS text LANGUAGE sql
BEGIN ATOMIC SELECT pg_catalog.set_config('role', 'none', true); END;
CREATE FUNCTION public.atomic_sleep() RETURNS void LANGUAGE sql RETURN pg_catalog.pg_sleep(0.1);
CREATE FUNCTION public.who() RETURNS text LANGUAGE sql IMMUTABLE SECURITY DEFINER AS $$ SELECT current_user::text $$;
CREATE TABLE public.with_default (a int, b text DEFAULT public.who());
CREATE FUNCTION public.evil_eq(int, text) RETURNS boolean LANGUAGE sql IMMUTABLE SECURITY DEFINER AS 'SELECT true';
CREATE OPERATOR public.= (FUNCTION = public.evil_eq, LEFTARG = int, RIGHTARG = text);
CREATE FUNCTION public.chk(text) RETURNS boolean LANGUAGE sql IMMUTABLE SECURITY DEFINER AS 'SELECT true';
CREATE DOMAIN public.checked_text AS text CHECK (public.chk(VALUE));
CREATE TYPE public.holds_checked AS (x public.checked_text);
CREATE TYPE public.boxed AS (i int);
CREATE FUNCTION public.to_boxed(int) RETURNS public.boxed LANGUAGE sql IMMUTABLE SECURITY DEFINER AS 'SELECT ROW($1)';
CREATE CAST (int AS public.boxed) WITH FUNCTION public.to_boxed(int) AS IMPLICIT;
CREATE FUNCTION public.takes_boxed(public.boxed) RETURNS int LANGUAGE sql STABLE AS 'SELECT 1';
CREATE SCHEMA IF NOT EXISTS mcp_test_limited;
CREATE FUNCTION mcp_test_limited.user_schema_definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
GRANT USAGE ON SCHEMA mcp_test_limited TO mcp_test_limited;
"""
IMPLICIT_TEARDOWN = """
DROP SCHEMA IF EXISTS mcp_test_limited CASCADE;
DROP FUNCTION IF EXISTS public.takes_boxed(public.boxed), public.atomic_role(), public.atomic_sleep() CASCADE;
DROP TYPE IF EXISTS public.boxed, public.holds_checked CASCADE;
DROP TABLE IF EXISTS public.with_default;
DROP DOMAIN IF EXISTS public.checked_text CASCADE;
DROP FUNCTION IF EXISTS public.who(), public.evil_eq(int, text), public.chk(text), public.to_boxed(int) CASCADE;
"""
IMPLICIT_ROUTES = [
    ("SELECT public.atomic_role(), current_user", "set_config"),
    ("SELECT public.atomic_sleep()", "pg_sleep"),
    ("EXPLAIN VERBOSE INSERT INTO public.with_default (a) VALUES (1)", "column defaults of public.with_default"),
    ("SELECT 1 IN (SELECT 'x'::text)", "evil_eq"),
    ("SELECT 1 NOT IN (SELECT 'x'::text)", "evil_eq"),
    ("SELECT CASE 1 WHEN 'x'::text THEN 1 END", "evil_eq"),
    ("SELECT ROW('a')::public.holds_checked", "chk"),
    ("SELECT '(a)'::public.holds_checked", "chk"),
    ('SELECT * FROM jsonb_to_record(\'{"x": "a"}\') AS r(x public.checked_text)', "chk"),
    ('SELECT jsonb_populate_record(NULL::public.holds_checked, \'{"x": "a"}\')', "chk"),
    ("SELECT public.takes_boxed(1)", "to_boxed"),
]


async def test_functions_no_statement_names_are_judged_too(database_url: str, tmp_path: Path) -> None:
    with objects(database_url, IMPLICIT_SETUP, IMPLICIT_TEARDOWN):
        async with connect(ps.Config(conn=database_url)) as client:
            for sql, words in IMPLICIT_ROUTES:
                result = await call(client, "execute_sql", sql=sql)
                assert result.is_error and "refused" in result.text and words in result.text, (sql, result.text)
            path = await call(client, "execute_sql", sql="SELECT current_setting('search_path')")
        # A call running as a role with a schema of its own name: "$user" never widens the judged path.
        limited = {"postgres_role": "mcp_test_limited"}
        path_file = permissions_file(tmp_path, {"roles": {"limited": limited}, "default_role": "limited"})
        async with connect(ps.Config(conn=database_url, permissions_file=path_file)) as client:
            own_schema = await call(client, "execute_sql", sql="SELECT user_schema_definer()")
    assert path.data["rows"] == [['"public"']]  # explicit: what the policy resolved names on
    assert own_schema.is_error and "ERROR 42883" in own_schema.text  # not found on the explicit path: never ran
