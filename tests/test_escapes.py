"""Escapes past a name-based SQL gate, as a superuser: every way a statement reaches a function without a plain call.

Classes: (a) attribute notation `(expr).fname`, (b) SQL passed as text, (c) sleeping on a pooled connection,
(d) session state (setseed), (e) extensions that bypass MVCC or read raw pages, (f) things left behind (signals,
slots, backups, locks), (g) statistics and large objects, (h) operators, casts, domains, views, policies and
defaults that run a SECURITY DEFINER function, (i) EXPLAIN of writes (plan only: allowed), (j) custom settings.

Every payload is real SQL that does its harm on a plain superuser connection: the `test_proof_*` tests show a
sample doing it, most of them inside a READ ONLY transaction that is then rolled back (neither layer stops them).
Through execute_sql each payload must be an error and leave nothing behind: the database fingerprint, replication
slots, running base backups, dblink connections, statistics reset times, a large object, two files on the host,
and a witness session that the signalling payloads (and the SECURITY DEFINER functions of class h) try to kill.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
import pytest
from conftest import Called, call, connect, fingerprint, ps
from psycopg.conninfo import conninfo_to_dict, make_conninfo

pytestmark = pytest.mark.anyio

WITNESS_APP = "mcp_escape_witness"  # a session the payloads try to terminate
DBLINK_APP = "mcp_escape_dblink"  # the application_name every dblink payload connects with
LO_SECRET = "lo-secret-7b1e9c"
JWT_SECRET = "top-secret-value"
EXTENSIONS = ("dblink", "pageinspect", "pg_surgery", "pg_visibility", "adminpack")
SEED = 0.5

# Objects that run a function when they are merely read, operated on, cast to or planned (classes h and i). Every
# path ends in escape_effect, SECURITY DEFINER and VOLATILE: it terminates the witness session (which survives a
# rolled-back READ ONLY transaction), then writes a row into victim (which does not). The wrappers vary what a
# catalog check sees: SECURITY DEFINER ones, an invoker STABLE SQL function (escape_stable), IMMUTABLE and STABLE
# definers that the planner runs, a domain CHECK, an argument DEFAULT, a cast, operators, a default btree
# operator class (its comparison runs for ORDER BY, DISTINCT, GROUP BY, UNION), an aggregate, a
# whole-row function, views (one nested), a row-level security policy (superusers bypass it, pg_read_all_data does
# not) and a view over pg_authid. escape_scratch is for the proofs.
# fmt: off
ARMED_SQL = f"""
CREATE FUNCTION public.escape_effect(i int) RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
BEGIN
    PERFORM pg_catalog.pg_terminate_backend(a.pid) FROM pg_catalog.pg_stat_activity a
     WHERE a.application_name = '{WITNESS_APP}';
    INSERT INTO public.victim VALUES (1000 + i, 'escaped');
    RETURN i;
END $$;
CREATE FUNCTION public.escape_definer(i int) RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(i); END $$;
CREATE FUNCTION public.escape_definer2(a int, b int) RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(coalesce(a, 0) + coalesce(b, 0)); END $$;
CREATE FUNCTION public.escape_op(a int, b int) RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(a) = b; END $$;
CREATE OPERATOR public.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = public.escape_op);
CREATE OPERATOR public.!!! (RIGHTARG = int, FUNCTION = public.escape_definer);
CREATE AGGREGATE public.escape_agg(int) (SFUNC = public.escape_definer2, STYPE = int, INITCOND = '0');
CREATE VIEW public.escape_view AS SELECT public.escape_definer(1) AS x;
CREATE VIEW public.escape_view_nested AS SELECT x FROM public.escape_view;
CREATE VIEW public.escape_secrets AS SELECT rolname, rolpassword FROM pg_catalog.pg_authid;
CREATE TYPE public.escape_t AS (i int);
CREATE FUNCTION public.escape_cast(t public.escape_t) RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(t.i); END $$;
CREATE CAST (public.escape_t AS int) WITH FUNCTION public.escape_cast(public.escape_t);
CREATE FUNCTION public.escape_cmp(a public.escape_t, b public.escape_t) RETURNS int LANGUAGE plpgsql IMMUTABLE
    AS $$ BEGIN PERFORM public.escape_effect(0); RETURN 0; END $$;
CREATE FUNCTION public.escape_lt(a public.escape_t, b public.escape_t) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS 'SELECT public.escape_cmp(a, b) < 0';
CREATE FUNCTION public.escape_le(a public.escape_t, b public.escape_t) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS 'SELECT public.escape_cmp(a, b) <= 0';
CREATE FUNCTION public.escape_eq(a public.escape_t, b public.escape_t) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS 'SELECT public.escape_cmp(a, b) = 0';
CREATE FUNCTION public.escape_ge(a public.escape_t, b public.escape_t) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS 'SELECT public.escape_cmp(a, b) >= 0';
CREATE FUNCTION public.escape_gt(a public.escape_t, b public.escape_t) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS 'SELECT public.escape_cmp(a, b) > 0';
CREATE OPERATOR public.<~< (LEFTARG = public.escape_t, RIGHTARG = public.escape_t, FUNCTION = public.escape_lt);
CREATE OPERATOR public.<~= (LEFTARG = public.escape_t, RIGHTARG = public.escape_t, FUNCTION = public.escape_le);
CREATE OPERATOR public.=~= (LEFTARG = public.escape_t, RIGHTARG = public.escape_t, FUNCTION = public.escape_eq);
CREATE OPERATOR public.>~= (LEFTARG = public.escape_t, RIGHTARG = public.escape_t, FUNCTION = public.escape_ge);
CREATE OPERATOR public.>~> (LEFTARG = public.escape_t, RIGHTARG = public.escape_t, FUNCTION = public.escape_gt);
CREATE OPERATOR CLASS public.escape_ops DEFAULT FOR TYPE public.escape_t USING btree AS
    OPERATOR 1 public.<~<, OPERATOR 2 public.<~=, OPERATOR 3 public.=~=, OPERATOR 4 public.>~=,
    OPERATOR 5 public.>~>, FUNCTION 1 public.escape_cmp(public.escape_t, public.escape_t);
CREATE DOMAIN public.escape_dom AS int CHECK (public.escape_effect(VALUE) IS NOT NULL);
CREATE FUNCTION public.escape_defaults(i int DEFAULT public.escape_effect(7)) RETURNS int LANGUAGE sql STABLE
    AS 'SELECT $1';
CREATE FUNCTION public.escape_stable() RETURNS int LANGUAGE sql STABLE AS 'SELECT public.escape_effect(3)';
CREATE FUNCTION public.escape_immutable() RETURNS int LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(4); END $$;
CREATE FUNCTION public.escape_stable_definer() RETURNS int LANGUAGE plpgsql STABLE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(5); END $$;
CREATE FUNCTION public.escape_row(r public.victim) RETURNS int LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    AS $$ BEGIN RETURN public.escape_effect(r.id); END $$;
CREATE TABLE public.escape_rls (id int);
INSERT INTO public.escape_rls VALUES (1);
ALTER TABLE public.escape_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY escape_rls_read ON public.escape_rls FOR SELECT USING (public.escape_effect(id) IS NOT NULL);
CREATE TABLE public.escape_scratch (id int PRIMARY KEY);
INSERT INTO public.escape_scratch VALUES (1), (2), (3);
"""
DISARM_SQL = """
DROP VIEW IF EXISTS public.escape_view_nested, public.escape_view, public.escape_secrets;
DROP TABLE IF EXISTS public.escape_rls, public.escape_scratch;
DROP AGGREGATE IF EXISTS public.escape_agg(int);
DROP OPERATOR IF EXISTS public.=== (int, int);
DROP OPERATOR IF EXISTS public.!!! (NONE, int);
DROP CAST IF EXISTS (public.escape_t AS int);
DROP OPERATOR FAMILY IF EXISTS public.escape_ops USING btree CASCADE;
DROP OPERATOR IF EXISTS public.<~< (public.escape_t, public.escape_t), public.<~= (public.escape_t, public.escape_t),
    public.=~= (public.escape_t, public.escape_t), public.>~= (public.escape_t, public.escape_t),
    public.>~> (public.escape_t, public.escape_t);
DROP FUNCTION IF EXISTS public.escape_lt(public.escape_t, public.escape_t),
    public.escape_le(public.escape_t, public.escape_t), public.escape_eq(public.escape_t, public.escape_t),
    public.escape_ge(public.escape_t, public.escape_t), public.escape_gt(public.escape_t, public.escape_t),
    public.escape_cmp(public.escape_t, public.escape_t);
DROP DOMAIN IF EXISTS public.escape_dom;
DROP FUNCTION IF EXISTS public.escape_defaults(int), public.escape_stable(), public.escape_immutable(),
    public.escape_stable_definer(), public.escape_row(public.victim),
    public.escape_cast(public.escape_t), public.escape_op(int, int), public.escape_definer2(int, int),
    public.escape_definer(int);
DROP TYPE IF EXISTS public.escape_t CASCADE;
DROP FUNCTION IF EXISTS public.escape_effect(int);
"""
STATS_RESETS_SQL = """
SELECT (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
       (SELECT stats_reset FROM pg_stat_bgwriter), (SELECT stats_reset FROM pg_stat_wal),
       (SELECT stats_reset FROM pg_stat_archiver), (SELECT max(stats_reset) FROM pg_stat_slru)
"""
# fmt: on


@dataclasses.dataclass
class Arena:
    """What the payloads aim at, set up once for the module as a superuser."""

    url: str
    victim: list[tuple[Any, ...]]  # the rows of public.victim before any payload
    lo: int  # a large object holding LO_SECRET
    dsn: str  # a connection string back into the test database, for dblink
    file: str  # a host file that must never appear (adminpack writes)
    decoy: str  # a host file that must never disappear (adminpack unlinks; only with adminpack)
    extensions: frozenset[str]  # the contrib extensions installed here, and "libxml" when the server has it
    major: int  # server major version: PG_VERSION holds it
    connection: psycopg.Connection[Any] | None = dataclasses.field(default=None, repr=False)

    def admin(self) -> psycopg.Connection[Any]:
        """One superuser connection for the checks and repairs (opened again if it broke)."""
        if self.connection is None or self.connection.closed or self.connection.broken:
            self.connection = psycopg.connect(self.url, autocommit=True)
        return self.connection

    def fill(self, sql: str, **extra: Any) -> str:
        """Put the arena's values into a payload template ({lo}, {dsn}, {file}, {decoy}, {major}, extras)."""
        values = {"lo": self.lo, "dsn": self.dsn.replace("'", "''"), "file": self.file, "decoy": self.decoy,
                  "major": self.major, **extra}  # fmt: skip
        for key, value in values.items():
            sql = sql.replace("{" + key + "}", str(value))
        return sql


LEFTOVERS: list[str] = []  # everything the per-test repair had to undo: must stay empty


@pytest.fixture(scope="module")
def arena(database_url: str) -> Iterator[Arena]:
    pid = os.getpid()
    params = conninfo_to_dict(database_url)
    params["application_name"] = DBLINK_APP
    installed: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        available = {row[0] for row in conn.execute("SELECT name FROM pg_available_extensions")}
        for name in EXTENSIONS:
            if name in available:
                present = conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [name]).fetchone()
                if not present:
                    conn.execute(f"CREATE EXTENSION {name}")  # type: ignore[arg-type]
                    installed.append(name)
        try:
            conn.execute("SELECT '<a/>'::xml")
            xml = {"libxml"}
        except psycopg.errors.FeatureNotSupported:  # built without libxml (the embedded PostgreSQL)
            xml = set()
        extensions = frozenset({name for name in EXTENSIONS if name in available} | xml)
        row = conn.execute("SELECT lo_from_bytea(0, convert_to(%s, 'UTF8'))", [LO_SECRET]).fetchone()
        assert row is not None
        victim = conn.execute("SELECT id, v FROM public.victim ORDER BY id").fetchall()
        major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
        conn.execute(DISARM_SQL)  # type: ignore[arg-type]  # leftovers of an interrupted run
        conn.execute(ARMED_SQL)  # type: ignore[arg-type]
        here = Arena(url=database_url, victim=victim, lo=int(row[0]), dsn=make_conninfo(**params),
                     file=f"/tmp/mcp_escape_{pid}.txt", decoy=f"/tmp/mcp_escape_{pid}_decoy.txt",
                     extensions=extensions, major=major)  # fmt: skip
        if "adminpack" in extensions:
            for path in (here.file, here.decoy):
                if conn.execute("SELECT (pg_stat_file(%s, true)).size IS NOT NULL", [path]).fetchone() == (True,):
                    conn.execute("SELECT pg_file_unlink(%s)", [path])
            conn.execute("SELECT pg_file_write(%s, 'decoy', false)", [here.decoy])
    try:
        yield here
    finally:
        repair(here)
        here.admin().close()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(DISARM_SQL)  # type: ignore[arg-type]
            conn.execute("SELECT lo_unlink(%s)", [here.lo])
            if "adminpack" in extensions:
                for path in (here.file, here.decoy):
                    if conn.execute("SELECT (pg_stat_file(%s, true)).size IS NOT NULL", [path]).fetchone() == (True,):
                        conn.execute("SELECT pg_file_unlink(%s)", [path])
            for name in reversed(installed):
                conn.execute(f"DROP EXTENSION IF EXISTS {name} CASCADE")  # type: ignore[arg-type]


def repair(arena: Arena) -> list[str]:
    """Undo what an escaped payload did (so the next test starts clean); say what had to be undone."""
    undone = []
    conn = arena.admin()
    if conn.execute("SELECT id, v FROM public.victim ORDER BY id").fetchall() != arena.victim:
        with conn.transaction():
            conn.execute("DELETE FROM public.victim")
            conn.cursor().executemany("INSERT INTO public.victim VALUES (%s, %s)", arena.victim)
        undone.append("victim rows restored")
    slots = conn.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name ~ '^mcp_escape'").fetchall()
    for (slot,) in slots:
        conn.execute("SELECT pg_drop_replication_slot(%s)", [slot])
        undone.append(f"replication slot {slot} dropped")
    links = conn.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE application_name = %s", [DBLINK_APP]
    ).fetchall()
    if links:
        undone.append(f"{len(links)} dblink connection(s) terminated")
    if "adminpack" in arena.extensions:
        if conn.execute("SELECT (pg_stat_file(%s, true)).size IS NOT NULL", [arena.file]).fetchone() == (True,):
            conn.execute("SELECT pg_file_unlink(%s)", [arena.file])
            undone.append(f"{arena.file} removed")
        if conn.execute("SELECT (pg_stat_file(%s, true)).size IS NULL", [arena.decoy]).fetchone() == (True,):
            conn.execute("SELECT pg_file_write(%s, 'decoy', false)", [arena.decoy])
            undone.append(f"{arena.decoy} written again")
    return undone


@pytest.fixture(autouse=True)
def repaired(arena: Arena, request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    LEFTOVERS.extend(f"{request.node.name}: {what}" for what in repair(arena))


def alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


class Witness:
    """Another session on the server, that must outlive every payload (opened again after it was killed)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True, application_name=WITNESS_APP)

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid

    def survived(self) -> bool:
        if alive(self.conn):
            return True
        self.conn.close()
        self.conn = psycopg.connect(self.url, autocommit=True, application_name=WITNESS_APP)
        return False

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def witness(database_url: str) -> Iterator[Witness]:
    watcher = Witness(database_url)
    try:
        yield watcher
    finally:
        watcher.close()


def observe(arena: Arena) -> dict[str, Any]:
    """Everything a payload could change that outlives its rolled-back transaction, or that a check can see."""
    conn = arena.admin()

    def one(sql: str, params: list[Any] | None = None) -> Any:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
        return row[0] if row else None

    return {
        "fingerprint": fingerprint(arena.url),
        "replication slots": one("SELECT array_agg(slot_name::text ORDER BY slot_name) FROM pg_replication_slots"),
        "base backups running": one("SELECT count(*) FROM pg_stat_progress_basebackup"),
        "dblink connections": one("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [DBLINK_APP]),
        "statistics reset times": conn.execute(STATS_RESETS_SQL).fetchone(),  # type: ignore[arg-type]
        "large object": one("SELECT convert_from(lo_get(%s), 'UTF8')", [arena.lo]),
        "host files (file, decoy)": conn.execute(
            "SELECT (pg_stat_file(%s, true)).size IS NOT NULL, (pg_stat_file(%s, true)).size IS NOT NULL",
            [arena.file, arena.decoy],
        ).fetchone(),
    }


def fast(config: ps.Config, timeout_ms: int = 1000) -> ps.Config:
    """The test config with a short statement timeout: an attack the gate lets through ends quickly."""
    return dataclasses.replace(config, statement_timeout_ms=timeout_ms)


def timed_out(result: Called) -> bool:
    return "57014" in result.text or "statement_timeout" in result.text


# Never in any answer: the large object, the custom setting, password hashes.
SECRETS = (LO_SECRET, LO_SECRET.encode().hex(), JWT_SECRET, "SCRAM-SHA-256$", "<rolpassword>")

Payload = str | tuple[str, str]  # the SQL, or (SQL, the function name the refusal must mention)


async def assert_all_refused(
    config: ps.Config, arena: Arena, payloads: Sequence[Payload], witness: Witness | None = None, **values: Any
) -> None:
    """Send each payload through execute_sql on one client. Each must be an error (not a timeout), leak no secret,
    change nothing observable (see `observe`), and leave the witness alive. After a payload that got through,
    what it did is repaired and the client rebuilt, so the next payload starts clean. One failure message lists
    every payload that got through, with the answer."""
    failures: list[str] = []
    baseline = observe(arena)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(connect(config))
        for payload in payloads:
            template, name = (payload, None) if isinstance(payload, str) else payload
            if witness is not None:
                values["pid"] = witness.pid
            sql = arena.fill(template, **values)
            result = await call(client, "execute_sql", sql=sql)
            after = observe(arena)  # with the server's connections open: dblink links live as long as they do
            problems = []
            if not result.is_error:
                problems.append("NOT REFUSED")
            elif timed_out(result):
                problems.append("ran until the statement timeout instead of being refused")
            if name and name not in result.text.lower():
                problems.append(f"the answer does not name {name}()")
            problems += [f"the answer contains {secret!r}" for secret in SECRETS if secret in result.text]
            changed = {key: (baseline[key], after[key]) for key in baseline if baseline[key] != after[key]}
            if changed:
                problems.append(f"changed (before, after): {changed}")
            if witness is not None and not witness.survived():
                problems.append("the witness session was terminated")
            if problems:
                failures.append(f"{sql}\n    -> {'; '.join(problems)}\n    answer: {result.text[:400]!r}")
                LEFTOVERS.extend(f"{sql}: {what}" for what in repair(arena))
                if not result.is_error or changed:  # the pooled connections may carry what the payload did
                    await stack.aclose()
                    client = await stack.enter_async_context(connect(config))
                baseline = observe(arena)
    assert not failures, f"{len(failures)} of {len(payloads)} payloads got through:\n" + "\n".join(failures)


# ---------------------------------------------------------------------------------------------------------------
# a. Attribute notation: (expr).fname is fname(expr), for any type; so is alias.fname on a whole row.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
ATTRIBUTE_NOTATION = [
    "SELECT ((('data_directory'::text).current_setting) || '/PG_VERSION').pg_read_file",
    "SELECT ('PG_VERSION'::text).pg_read_file",
    "SELECT ('PG_VERSION'::text).\"pg_read_file\"",
    "SELECT ('PG_VERSION'::text).U&\"pg_read_\\0066ile\"",
    "SELECT ('PG_VERSION'::text).PG_READ_FILE",
    "SELECT ('PG_VERSION'::text) . /* c */ pg_read_binary_file",
    "SELECT ('/etc/passwd'::text).pg_read_file",
    "SELECT ($$postmaster.opts$$::text).pg_read_file",
    r"SELECT (U&'PG\005fVERSION'::text).pg_read_file",
    "SELECT ((SELECT 'PG_VERSION'::text)).pg_read_file",
    "SELECT (t.x).pg_read_file FROM (SELECT 'PG_VERSION'::text AS x) t",
    "SELECT (x).pg_read_file FROM (VALUES ('postmaster.opts'::text)) v(x)",
    "WITH c AS (SELECT 'PG_VERSION'::text AS p) SELECT (p).pg_read_file FROM c",
    "SELECT * FROM public.victim WHERE v = ('PG_VERSION'::text).pg_read_file",
    "SELECT length(('PG_VERSION'::text).pg_read_file)",
    "SELECT ('PG_VERSION'::text).pg_stat_file",
    "SELECT ('.'::text).pg_ls_dir",
    "SELECT (('data_directory'::text).current_setting).pg_ls_dir",
    "SELECT ('data_directory'::text).current_setting",
    "SELECT ('hba_file'::text).\"current_setting\"",
    "SELECT (pg_backend_pid()).pg_terminate_backend",
    "SELECT ('mcp_escape_slot'::name).pg_create_physical_replication_slot",
    "SELECT ('mcp_escape_slot_text'::text).pg_create_physical_replication_slot",
    "SELECT (x).pg_create_physical_replication_slot FROM (VALUES ('mcp_escape_slot_values'::name)) v(x)",
    "SELECT ('mcp_escape_backup'::text).pg_backup_start",
    "SELECT ({lo}::oid).lo_get",
    "SELECT ('shop.orders'::regclass::oid).pg_stat_reset_single_table_counters",
    "SELECT (x).setseed FROM (VALUES (0.5::float8)) v(x)",
    "SELECT (4242::bigint).pg_advisory_lock",
    "SELECT ('public.counter_seq'::regclass).nextval",
]
# fmt: on


async def test_attribute_notation_is_refused(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config), arena, ATTRIBUTE_NOTATION)


# ---------------------------------------------------------------------------------------------------------------
# b. SQL passed as text: the function parses and runs a statement the gate never saw.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
SQL_AS_TEXT = [
    "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT ts_rewrite('a'::tsquery, $$SELECT set_config('role','none',true)::tsquery, 'b'::tsquery$$)",
    "SELECT ts_rewrite('a'::tsquery, $$SELECT 'a'::tsquery, quote_literal(pg_read_file('PG_VERSION'))::tsquery$$)",
    "SELECT ts_rewrite('a'::tsquery, $$SELECT 'a'::tsquery, quote_literal(string_agg(rolname || ':' || "
    "coalesce(rolpassword, '-'), ' '))::tsquery FROM pg_authid$$)",
    "SELECT pg_catalog.ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT \"ts_rewrite\"('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT U&\"ts_r\\0065write\"('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT TS_REWRITE /* c */ ('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "SELECT * FROM ts_stat('SELECT to_tsvector(v) FROM victim')",
    "SELECT ('SELECT to_tsvector(v) FROM victim'::text).ts_stat",
    "SELECT ('SELECT to_tsvector(''simple'', rolname || '' '' || coalesce(rolpassword, '''')) FROM pg_authid'"
    "::text).ts_stat",
    "SELECT (q).ts_stat FROM (VALUES ('SELECT to_tsvector(pg_read_file(''PG_VERSION''))'::text)) v(q)",
    "SELECT * FROM ROWS FROM (pg_catalog.ts_stat('SELECT to_tsvector(v) FROM victim')) r",
    "SELECT query_to_xml('select 1', true, true, '')",
    "SELECT query_to_xml('select rolname, rolpassword from pg_authid', true, true, '')",
    "SELECT U&\"query_to_\\0078ml\"('select pg_read_file(''PG_VERSION'')', true, true, '')",
    "SELECT xpath('//text()', query_to_xml('select pg_read_file(''PG_VERSION'')', true, true, ''))",
    "SELECT pg_catalog.query_to_xml(q, true, true, '') FROM (VALUES ('select data from pg_largeobject')) v(q)",
    "SELECT query_to_xml_and_xmlschema('select 1', true, true, '')",
    "SELECT query_to_xml('select pg_sleep(30)', true, true, '')",
    "SELECT table_to_xml('victim'::regclass, true, true, '')",
    "SELECT table_to_xml('pg_authid'::regclass, true, false, '')",
    "SELECT table_to_xml('pg_catalog.pg_largeobject'::regclass, true, false, '')",
    "SELECT cursor_to_xml('mcp_rows'::refcursor, 10, true, true, '')",
    "SELECT database_to_xml(true, true, '')",
]
# fmt: on


async def test_sql_passed_as_text_is_refused(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config), arena, SQL_AS_TEXT)


# ---------------------------------------------------------------------------------------------------------------
# c. Sleeping: a pooled connection held doing nothing. Refused at once, naming the function (no timing here: the
#    short statement timeout only keeps this file fast while the gate lets them through).
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
SLEEPS = [
    ("SELECT pg_sleep(10)", "pg_sleep"),
    ("SELECT \"pg_sleep\"(10)", "pg_sleep"),
    ("SELECT U&\"pg_sl\\0065ep\"(10)", "pg_sleep"),
    ("SELECT U&\"pg_sl!0065ep\" UESCAPE '!' (10)", "pg_sleep"),
    ("SELECT pg_catalog.pg_sleep(10)", "pg_sleep"),
    ("SELECT pg_sleep /* c */ (10)", "pg_sleep"),
    ("SELECT PG_SLEEP(10)", "pg_sleep"),
    ("SELECT (10::float8).pg_sleep", "pg_sleep"),
    ("SELECT (x).pg_sleep FROM (VALUES (10::float8)) v(x)", "pg_sleep"),
    ("SELECT * FROM pg_sleep(10)", "pg_sleep"),
    ("SELECT * FROM ROWS FROM (pg_catalog.pg_sleep(10)) r", "pg_sleep"),
    ("SELECT (SELECT pg_sleep(10))", "pg_sleep"),
    ("VALUES (pg_sleep(10))", "pg_sleep"),
    ("SELECT count(*) FROM generate_series(1, 10) g WHERE pg_sleep(1) IS NOT NULL", "pg_sleep"),
    ("EXPLAIN ANALYZE SELECT pg_sleep(10)", "pg_sleep"),
    ("SELECT pg_sleep_for('10 s')", "pg_sleep_for"),
    ("SELECT pg_catalog.\"pg_sleep_for\"(interval '10 seconds')", "pg_sleep_for"),
    ("SELECT pg_sleep_for(make_interval(secs => 10))", "pg_sleep_for"),
    ("SELECT ('10 s'::interval).pg_sleep_for", "pg_sleep_for"),
    ("SELECT pg_sleep_until(now() + interval '10 s')", "pg_sleep_until"),
    ("SELECT U&\"pg_sleep_\\0075ntil\"(now() + '10 s')", "pg_sleep_until"),
    ("SELECT (clock_timestamp() + interval '10 s').pg_sleep_until", "pg_sleep_until"),
]
# fmt: on


async def test_sleeping_is_refused_naming_the_function(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config, 150), arena, SLEEPS)


# ---------------------------------------------------------------------------------------------------------------
# d. Session state: setseed outlives ROLLBACK and would make the next agent's random() predictable.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
SETSEEDS = [
    "SELECT setseed(0.5)",
    "SELECT pg_catalog.setseed(0.5)",
    "SELECT \"setseed\"(0.5)",
    "SELECT U&\"set\\0073eed\"(0.5)",
    "SELECT SETSEED /* c */ (0.5)",
    "SELECT (0.5::float8).setseed",
    "SELECT (x).setseed FROM (VALUES (0.5::float8)) v(x)",
    "SELECT * FROM setseed(0.5)",
    "SELECT * FROM ROWS FROM (setseed(0.5)) r",
    "SELECT 1 FROM (SELECT setseed(0.5)) s",
    "VALUES (setseed(0.5))",
]
# fmt: on


def seeded_randoms(url: str) -> tuple[float, float]:
    """What random() answers twice after setseed(0.5) on this server."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(%s)", [SEED])
        first = conn.execute("SELECT random()").fetchone()
        second = conn.execute("SELECT random()").fetchone()
    assert first and second
    return float(first[0]), float(second[0])


async def test_setseed_is_refused_naming_it(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config), arena, [(sql, "setseed") for sql in SETSEEDS])


@pytest.mark.parametrize("sql", SETSEEDS)
async def test_setseed_never_seeds_the_next_calls(database_url: str, sql: str) -> None:
    expected = seeded_randoms(database_url)
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1, statement_timeout_ms=1000)
    async with connect(config) as client:
        seeding = await call(client, "execute_sql", sql=sql)
        first = await call(client, "execute_sql", sql="SELECT random()")
        second = await call(client, "execute_sql", sql="SELECT random()")
    assert not first.is_error and not second.is_error, (first.text, second.text)
    got = (float(first.data["rows"][0][0]), float(second.data["rows"][0][0]))
    predicted = all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got, expected, strict=True))
    assert not predicted, (
        f"random() after the attempt gave the setseed({SEED}) sequence {got}\n  payload: {sql}\n"
        f"  answer:  {seeding.text[:400]!r}"
    )


# ---------------------------------------------------------------------------------------------------------------
# e. Extensions that bypass MVCC, read raw pages, write files or open connections (only where installed).
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
EXTENSION_ATTACKS = [
    ("dblink", "SELECT dblink_connect('mcp_escape', '{dsn}')"),
    ("dblink", "SELECT dblink_exec('{dsn}', 'DELETE FROM public.victim')"),
    ("dblink", "SELECT * FROM dblink('{dsn}', 'DELETE FROM public.victim RETURNING id') AS t(x int)"),
    ("dblink", "SELECT * FROM dblink('{dsn}', 'SELECT rolpassword FROM pg_authid') AS t(x text)"),
    ("dblink", "SELECT \"dblink_exec\"('{dsn}', 'DELETE FROM public.victim')"),
    ("dblink", "SELECT U&\"dblink_\\0065xec\"('{dsn}', 'DELETE FROM public.victim')"),
    ("dblink", "SELECT public.dblink_exec /* c */ ('{dsn}', 'DELETE FROM public.victim')"),
    ("dblink", "SELECT ('{dsn}'::text).dblink_connect"),
    ("dblink", "SELECT ('{dsn}'::text).dblink_connect, ('DELETE FROM public.victim'::text).dblink_exec"),
    ("dblink", "SELECT (x).dblink_connect_u FROM (VALUES ('{dsn}'::text)) v(x)"),
    ("pageinspect", "SELECT get_raw_page('victim', 0)"),
    ("pageinspect", "SELECT get_raw_page('public.victim', 'main', 0)"),
    ("pageinspect", "SELECT * FROM heap_page_items(get_raw_page('victim', 0))"),
    ("pageinspect", "SELECT t_data FROM heap_page_items(get_raw_page('pg_authid', 0))"),
    ("pageinspect", "SELECT \"get_raw_page\"('pg_catalog.pg_authid', 0)"),
    ("pageinspect", "SELECT U&\"get_raw_p\\0061ge\"('victim', 0)"),
    ("pageinspect", "SELECT (get_raw_page('victim', 0)).heap_page_items"),
    ("pageinspect", "SELECT (get_raw_page('victim', 0)).page_header"),
    ("pageinspect", "SELECT * FROM heap_page_item_attrs(get_raw_page('victim', 0), 'victim'::regclass)"),
    # (the tuple ids are looked up: after a repair, victim's rows sit elsewhere on the page)
    ("pg_surgery", "SELECT heap_force_kill('victim'::regclass, ARRAY(SELECT ctid FROM victim))"),
    ("pg_surgery", "SELECT heap_force_freeze('victim'::regclass, ARRAY(SELECT ctid FROM victim WHERE id = 2))"),
    ("pg_surgery", "SELECT \"heap_force_kill\"('public.victim'::regclass, ARRAY(SELECT ctid FROM public.victim))"),
    ("pg_surgery", "SELECT U&\"heap_force_k\\0069ll\"('victim'::regclass, ARRAY(SELECT ctid FROM victim))"),
    ("pg_surgery", "SELECT public.heap_force_kill /* c */ ('victim', (SELECT array_agg(ctid) FROM victim))"),
    ("pg_surgery", "SELECT heap_force_kill(c.oid, ARRAY(SELECT ctid FROM public.victim)) FROM pg_class c "
                   "WHERE c.oid = 'public.victim'::regclass"),
    ("pg_visibility", "SELECT * FROM pg_visibility_map('victim')"),
    ("pg_visibility", "SELECT pg_truncate_visibility_map('victim')"),
    ("pg_visibility", "SELECT ('victim'::regclass).pg_truncate_visibility_map"),
    ("pg_visibility", "SELECT ('victim'::regclass).pg_visibility_map"),
    ("pg_visibility", "SELECT * FROM pg_visibility('victim'::regclass)"),
    ("pg_visibility", "SELECT ('victim'::regclass).pg_check_visible"),
    ("adminpack", "SELECT pg_file_write('{file}', 'pwned', false)"),
    ("adminpack", "SELECT pg_catalog.\"pg_file_write\"('{file}', 'pwned', true)"),
    ("adminpack", "SELECT ('{decoy}'::text).pg_file_unlink"),
    ("adminpack", "SELECT pg_file_unlink /* c */ ('{decoy}')"),
    ("adminpack", "SELECT pg_file_rename('{decoy}', '{file}')"),
]
# fmt: on


@pytest.mark.parametrize("extension", EXTENSIONS)
async def test_extension_attacks_are_refused(config: ps.Config, arena: Arena, extension: str) -> None:
    if extension not in arena.extensions:
        pytest.skip(f"{extension} is not in pg_available_extensions on this server (no contrib)")
    payloads = [sql for needs, sql in EXTENSION_ATTACKS if needs == extension]
    await assert_all_refused(fast(config), arena, payloads)
    with psycopg.connect(arena.url, autocommit=True) as conn:
        rows = conn.execute("SELECT id, v FROM public.victim ORDER BY id").fetchall()
    assert rows == arena.victim and len(rows) == 3, rows


# ---------------------------------------------------------------------------------------------------------------
# f. Things left behind: signals to other sessions (a witness must survive), and the whole corpus at the end.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
SIGNALS = [
    "SELECT ({pid}).pg_terminate_backend",
    "SELECT ({pid}::int).\"pg_terminate_backend\"",
    "SELECT (x).pg_terminate_backend FROM (VALUES ({pid})) v(x)",
    "SELECT (pid).pg_terminate_backend FROM (SELECT pid FROM pg_stat_activity "
    f"WHERE application_name = '{WITNESS_APP}') s",
    "SELECT pg_terminate_backend({pid})",
    "SELECT \"pg_terminate_backend\"({pid})",
    "SELECT U&\"pg_terminate_b\\0061ckend\"({pid})",
    "SELECT pg_catalog.pg_terminate_backend /* c */ ({pid}, 0)",
    "SELECT PG_TERMINATE_BACKEND({pid})",
    "SELECT * FROM ROWS FROM (pg_terminate_backend({pid})) r",
    "SELECT ({pid}).pg_cancel_backend",
    "SELECT ({pid}).pg_log_backend_memory_contexts",
]
# fmt: on


async def test_signals_to_other_sessions_are_refused(config: ps.Config, arena: Arena, witness: Witness) -> None:
    await assert_all_refused(fast(config), arena, SIGNALS, witness)


# ---------------------------------------------------------------------------------------------------------------
# g. Statistics resets and large objects.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
STATISTICS_AND_LARGE_OBJECTS = [
    "SELECT ('shop.orders'::regclass).pg_stat_reset_single_table_counters",
    "SELECT (x).pg_stat_reset_single_table_counters FROM (VALUES ('shop.orders'::regclass)) v(x)",
    "SELECT pg_stat_reset()",
    "SELECT \"pg_stat_reset\"()",
    "SELECT * FROM pg_catalog.pg_stat_reset()",
    "SELECT ('bgwriter'::text).pg_stat_reset_shared",
    "SELECT U&\"pg_stat_reset_sh\\0061red\"('wal')",
    "SELECT (NULL::text).pg_stat_reset_slru",
    "SELECT ('public.sneaky'::regproc).pg_stat_reset_single_function_counters",
    "SELECT lo_get({lo})",
    "SELECT ({lo}::oid).lo_get",
    "SELECT convert_from(({lo}::oid).lo_get, 'UTF8')",
    "SELECT (x).lo_get FROM (VALUES ({lo}::oid)) v(x)",
    "SELECT pg_catalog.lo_get({lo}, 0, 64)",
    "SELECT U&\"lo_g\\0065t\"({lo})",
    "SELECT loread(lo_open({lo}, 262144), 64)",
    "SELECT lo_from_bytea(0, 'x')",
    "SELECT ('/etc/passwd'::text).lo_import",
    "SELECT ({lo}::oid).lo_unlink",
    "SELECT encode(data, 'escape') FROM pg_catalog.pg_largeobject WHERE loid = {lo}",
    "SELECT data FROM U&\"pg_largeobjec\\0074\"",
]
# fmt: on


async def test_statistics_and_large_objects_are_refused(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config), arena, STATISTICS_AND_LARGE_OBJECTS)


# ---------------------------------------------------------------------------------------------------------------
# h. Operators, casts, domains, aggregates, views, policies and default arguments that run SECURITY DEFINER code.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
HIDDEN_CALLS = [
    "SELECT 1 === 2",
    "SELECT 1 OPERATOR(public.===) 2",
    "SELECT * FROM public.victim WHERE id === 1",
    "SELECT 1 === ANY (ARRAY[1, 2])",
    "SELECT a.id FROM public.victim a JOIN public.victim b ON a.id === b.id",
    "SELECT !!! 5",
    "SELECT * FROM public.escape_view",
    "SELECT * FROM escape_view_nested",
    "SELECT (SELECT x FROM public.escape_view) + 1",
    "SELECT (1).escape_definer",
    "SELECT public.escape_definer(1)",
    "SELECT \"escape_definer\"(1)",
    "SELECT public.escape_agg(id) FROM public.victim",
    "SELECT escape_agg(id) OVER () FROM public.victim",
    "SELECT CAST(ROW(1)::public.escape_t AS int)",
    "SELECT (ROW(2)::public.escape_t)::int",
    "SELECT 1 + ROW(5)::public.escape_t::int",
    # the sort, group, set and greatest() comparisons call the default btree class's support function (escape_cmp),
    # named nowhere in the statement
    "SELECT x FROM (VALUES (ROW(1)::public.escape_t), (ROW(2)::public.escape_t)) v(x) ORDER BY x",
    "SELECT DISTINCT x FROM (VALUES (ROW(1)::public.escape_t), (ROW(2)::public.escape_t)) v(x)",
    "SELECT x, count(*) FROM (VALUES (ROW(1)::public.escape_t), (ROW(2)::public.escape_t)) v(x) GROUP BY x",
    "SELECT ROW(1)::public.escape_t UNION SELECT ROW(2)::public.escape_t",
    "SELECT row_number() OVER (ORDER BY x) FROM (VALUES (ROW(1)::public.escape_t), (ROW(2)::public.escape_t)) v(x)",
    "SELECT greatest(ROW(1)::public.escape_t, ROW(2)::public.escape_t)",
    "SELECT 1::public.escape_dom",
    "SELECT CAST('2' AS public.escape_dom)",
    "SELECT public.escape_defaults()",
    "SELECT public.escape_stable()",
    "SELECT v.escape_row FROM public.victim v",
    "SELECT public.victim.escape_row FROM public.victim",
    "SELECT (vv).escape_row FROM public.victim vv",
    "SELECT * FROM public.escape_rls",
    "SELECT rolname, rolpassword FROM public.escape_secrets",
]
# fmt: on


async def test_functions_reached_without_a_call_are_refused(config: ps.Config, arena: Arena, witness: Witness) -> None:
    await assert_all_refused(fast(config), arena, HIDDEN_CALLS, witness)


# ---------------------------------------------------------------------------------------------------------------
# i. EXPLAIN without ANALYZE of a write is a plan only: allowed. With ANALYZE it runs the write: refused.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
EXPLAIN_WRITES = [
    ("EXPLAIN DELETE FROM victim", "Delete on victim"),
    ("EXPLAIN UPDATE victim SET v = 'x'", "Update on victim"),
    ("EXPLAIN INSERT INTO victim VALUES (9, 'x')", "Insert on victim"),
    ("EXPLAIN (COSTS off) DELETE FROM public.victim WHERE id = 1", "Delete on victim"),
    ("EXPLAIN (VERBOSE, FORMAT JSON) UPDATE victim SET v = upper(v)", "Update"),
    ("EXPLAIN MERGE INTO victim v USING (VALUES (1)) s(id) ON v.id = s.id WHEN MATCHED THEN DELETE", "Merge on victim"),
]
EXPLAIN_ANALYZE_WRITES = [
    "EXPLAIN ANALYZE DELETE FROM victim",
    "EXPLAIN (ANALYZE) UPDATE victim SET v = 'x'",
    "EXPLAIN (ANALYZE true, FORMAT JSON) INSERT INTO victim VALUES (9, 'x')",
    "EXPLAIN (FORMAT TEXT, ANALYZE on) DELETE FROM victim",
    "EXPLAIN ANALYZE VERBOSE DELETE FROM victim",
    "EXPLAIN (ANALYZE 1) MERGE INTO victim v USING (VALUES (1)) s(id) ON v.id = s.id WHEN MATCHED THEN DELETE",
    "EXPLAIN (ANALYZE) WITH d AS (DELETE FROM victim RETURNING 1) SELECT * FROM d",
]
# Without ANALYZE nothing executes, but the planner still runs IMMUTABLE functions (constant folding) and STABLE
# ones (selectivity estimates) on constant arguments: these kill the witness from a plain EXPLAIN.
EXPLAIN_EVALUATES = [
    "EXPLAIN DELETE FROM victim WHERE id = public.escape_immutable()",
    "EXPLAIN SELECT * FROM victim WHERE id = public.escape_immutable()",
    "EXPLAIN INSERT INTO victim VALUES (public.escape_immutable(), 'x')",
    "EXPLAIN UPDATE victim SET v = 'x' WHERE id = public.escape_stable()",
    "EXPLAIN (COSTS off) DELETE FROM victim WHERE id < public.escape_stable_definer()",
    "EXPLAIN (FORMAT JSON) SELECT * FROM victim WHERE id = escape_stable_definer()",
]
# fmt: on


async def test_explain_of_a_write_shows_the_plan_and_writes_nothing(config: ps.Config, arena: Arena) -> None:
    failures = []
    before = observe(arena)
    async with connect(fast(config)) as client:
        for sql, node in EXPLAIN_WRITES:
            result = await call(client, "execute_sql", sql=sql)
            if result.is_error or node not in result.text:
                failures.append(f"{sql}\n    -> no {node!r} plan node\n    answer: {result.text[:400]!r}")
    assert not failures, f"{len(failures)} of {len(EXPLAIN_WRITES)} plans refused:\n" + "\n".join(failures)
    assert observe(arena) == before


async def test_explain_analyze_of_a_write_is_refused(config: ps.Config, arena: Arena) -> None:
    await assert_all_refused(fast(config), arena, EXPLAIN_ANALYZE_WRITES)


async def test_explain_that_runs_functions_while_planning_is_refused(
    config: ps.Config, arena: Arena, witness: Witness
) -> None:
    await assert_all_refused(fast(config), arena, EXPLAIN_EVALUATES, witness)


# ---------------------------------------------------------------------------------------------------------------
# j. Custom (dotted) settings hold application secrets: never readable.
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jwt_secret(database_url: str) -> Iterator[str]:
    """A database-level custom setting; connections opened afterwards (the server's pool too) carry it."""
    name = conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {name} SET app.jwt_secret = '{JWT_SECRET}'")  # type: ignore[arg-type]
    try:
        yield JWT_SECRET
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} RESET app.jwt_secret")  # type: ignore[arg-type]


# fmt: off
CUSTOM_SETTINGS = [
    "SELECT current_setting('app.jwt_secret')",
    "SHOW app.jwt_secret",
    "SELECT current_setting('APP.JWT_SECRET')",
    "SELECT current_setting('app.jwt_secret', true)",
    "SELECT pg_catalog.current_setting('app.jwt_secret', false)",
    "SELECT \"current_setting\"('app.jwt_secret')",
    r"SELECT current_setting(U&'app.jwt\005fsecret')",
    r"SELECT current_setting(E'app\x2ejwt_secret')",
    "SELECT ('app.jwt_secret'::text).current_setting",
    "SELECT (x).current_setting FROM (VALUES ('app.jwt_secret'::text)) v(x)",
    "SELECT current_setting(name) FROM (VALUES ('app.jwt_secret')) v(name)",
    "SHOW \"app.jwt_secret\"",
    "SHOW APP.JWT_SECRET",
    "SHOW app.\"jwt_secret\"",
    "SELECT setconfig FROM pg_db_role_setting",
    "SELECT unnest(setconfig) FROM pg_catalog.pg_db_role_setting",
    "SELECT (pg_options_to_table(setconfig)).option_value FROM pg_db_role_setting",
    "SELECT * FROM pg_catalog.\"pg_db_role_setting\"",
    "SELECT setting FROM pg_settings WHERE name = 'app.jwt_secret'",
]
# fmt: on


async def test_custom_settings_are_never_revealed(config: ps.Config, arena: Arena, jwt_secret: str) -> None:
    """The client (and its pool) is built after ALTER DATABASE: its connections carry the setting."""
    await assert_all_refused(fast(config), arena, CUSTOM_SETTINGS)


# ---------------------------------------------------------------------------------------------------------------
# Proofs: the corpus attacks something real. On a plain superuser connection, inside READ ONLY transactions that
# are rolled back, the payloads do what they say.
# ---------------------------------------------------------------------------------------------------------------

# fmt: off
PROOFS = [
    # (payload, extension it needs ("libxml": a server built with it) or None, what its answer contains)
    ("SELECT ((('data_directory'::text).current_setting) || '/PG_VERSION').pg_read_file", None, "{major}"),
    ("SELECT ('PG_VERSION'::text).\"pg_read_file\"", None, "{major}"),
    ("SELECT ('PG_VERSION'::text).U&\"pg_read_\\0066ile\"", None, "{major}"),
    ("SELECT (t.x).pg_read_file FROM (SELECT 'PG_VERSION'::text AS x) t", None, "{major}"),
    ("SELECT ('/etc/passwd'::text).pg_read_file", None, "root:"),
    ("SELECT ('.'::text).pg_ls_dir", None, "PG_VERSION"),
    ("SELECT ({lo}::oid).lo_get", None, LO_SECRET.encode().hex()),
    ("SELECT ts_rewrite('a'::tsquery, $$SELECT 'a'::tsquery, quote_literal(pg_read_file('PG_VERSION'))::tsquery$$)",
     None, "{major}"),
    ("SELECT ('SELECT to_tsvector(pg_read_file(''PG_VERSION''))'::text).ts_stat", None, "{major}"),
    ("SELECT query_to_xml('select rolname, rolpassword from pg_authid', true, true, '')", "libxml", "pg_read_all_data"),
    ("SELECT table_to_xml('pg_authid'::regclass, true, false, '')", "libxml", "<rolpassword"),
    ("SELECT ('hba_file'::text).\"current_setting\"", None, "/"),
    ("SELECT t_data FROM heap_page_items(get_raw_page('pg_authid', 0))", "pageinspect", "\\x"),
    ("SELECT (get_raw_page('victim', 0)).page_header", "pageinspect", "("),
]
# fmt: on


@contextlib.contextmanager
def read_only(arena: Arena) -> Iterator[psycopg.Connection[Any]]:
    """A plain superuser connection inside BEGIN READ ONLY; rolled back at the end of the block."""
    with psycopg.connect(arena.url, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        try:
            yield conn
        finally:
            conn.execute("ROLLBACK")


@pytest.mark.parametrize(("sql", "extension", "expected"), PROOFS)
def test_proof_payloads_work_on_a_plain_superuser_connection(
    arena: Arena, sql: str, extension: str | None, expected: str
) -> None:
    if extension and extension not in arena.extensions:
        pytest.skip(f"{extension} is not available on this server (no contrib, or built without libxml)")
    sql, expected = arena.fill(sql), arena.fill(expected)
    with read_only(arena) as conn:
        rows = conn.execute(sql).fetchall()  # type: ignore[arg-type]
    answer = repr([["\\x" + value.hex() if isinstance(value, bytes) else str(value) for value in row] for row in rows])
    assert rows and expected in answer, f"{sql} answered {answer[:300]}"


def test_proof_replication_slots_outlive_a_rolled_back_read_only_transaction(arena: Arena) -> None:
    with read_only(arena) as conn:
        conn.execute("SELECT ('mcp_escape_proof'::name).pg_create_physical_replication_slot")
    with psycopg.connect(arena.url, autocommit=True) as conn:
        slot = conn.execute("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'mcp_escape_proof'").fetchone()
        conn.execute("SELECT pg_drop_replication_slot('mcp_escape_proof')")
    assert slot == (1,)


def test_proof_setseed_outlives_a_rolled_back_read_only_transaction(arena: Arena) -> None:
    with psycopg.connect(arena.url, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        conn.execute("SELECT (%s::float8).setseed", [SEED])
        conn.execute("ROLLBACK")
        randoms = [conn.execute("SELECT random()").fetchone() for _ in range(2)]
    assert [float(row[0]) for row in randoms if row] == pytest.approx(seeded_randoms(arena.url), rel=1e-12)


def test_proof_armed_objects_kill_the_witness_despite_read_only(arena: Arena, witness: Witness) -> None:
    with read_only(arena) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("SELECT 1 === 2")
    assert not witness.survived()


def test_proof_plain_explain_runs_functions_while_planning(arena: Arena, witness: Witness) -> None:
    with read_only(arena) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("EXPLAIN DELETE FROM victim WHERE id = public.escape_immutable()")
    assert not witness.survived()


def test_proof_dblink_writes_past_read_only_and_rollback(arena: Arena) -> None:
    if "dblink" not in arena.extensions:
        pytest.skip("dblink is not in pg_available_extensions on this server (no contrib)")
    attack = "SELECT ('{dsn}'::text).dblink_connect, ('DELETE FROM public.escape_scratch'::text).dblink_exec"
    with read_only(arena) as conn:
        conn.execute(arena.fill(attack))  # type: ignore[arg-type]
    with psycopg.connect(arena.url, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM public.escape_scratch").fetchone()
        conn.execute("INSERT INTO public.escape_scratch VALUES (1), (2), (3) ON CONFLICT DO NOTHING")
    assert left == (0,)


def test_proof_pg_surgery_and_adminpack_write_past_read_only_and_rollback(arena: Arena) -> None:
    if not {"pg_surgery", "adminpack"} <= arena.extensions:
        pytest.skip("pg_surgery or adminpack is not in pg_available_extensions on this server (no contrib)")
    with read_only(arena) as conn:
        conn.execute("SELECT heap_force_kill('escape_scratch', ARRAY(SELECT ctid FROM escape_scratch WHERE id = 1))")
        conn.execute("SELECT pg_file_write(%s, 'proof', false)", [arena.file])
    with psycopg.connect(arena.url, autocommit=True) as conn:
        left = conn.execute("SELECT count(*) FROM public.escape_scratch").fetchone()
        written = conn.execute("SELECT (pg_stat_file(%s, true)).size IS NOT NULL", [arena.file]).fetchone()
        conn.execute("SELECT pg_file_unlink(%s)", [arena.file])
        conn.execute("TRUNCATE public.escape_scratch")
        conn.execute("INSERT INTO public.escape_scratch VALUES (1), (2), (3)")
    assert left == (2,) and written == (True,)


def test_proof_custom_settings_reach_new_connections(arena: Arena, jwt_secret: str) -> None:
    with read_only(arena) as conn:
        value = conn.execute("SHOW app.jwt_secret").fetchone()
        stored = conn.execute("SELECT (pg_options_to_table(setconfig)).option_value FROM pg_db_role_setting").fetchall()
    assert value == (jwt_secret,) and (jwt_secret,) in stored


# ---------------------------------------------------------------------------------------------------------------
# After the whole corpus (this test runs last in the file): nothing had to be repaired, and nothing is left.
# ---------------------------------------------------------------------------------------------------------------


def test_nothing_is_left_behind_by_the_whole_corpus(arena: Arena) -> None:
    with psycopg.connect(arena.url, autocommit=True) as conn:

        def one(sql: str) -> Any:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            return row[0] if row else None

        live = {
            "replication slots": one("SELECT count(*) FROM pg_replication_slots WHERE slot_name ~ '^mcp_escape'"),
            "base backups running": one("SELECT count(*) FROM pg_stat_progress_basebackup"),
            "advisory locks": one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
            "prepared transactions": one("SELECT count(*) FROM pg_prepared_xacts"),
            "dblink connections": one(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{DBLINK_APP}'"),
            "victim rows": one("SELECT count(*) FROM public.victim"),
        }
    assert live == {"replication slots": 0, "base backups running": 0, "advisory locks": 0,
                    "prepared transactions": 0, "dblink connections": 0, "victim rows": 3}  # fmt: skip
    assert not LEFTOVERS, "payloads left these behind (repaired after each test):\n" + "\n".join(LEFTOVERS)
