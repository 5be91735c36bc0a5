"""Hostile reads: whatever a statement returns, the server holds about what it sends, and others keep being served.

The payloads run against a server process of its own through the official MCP client, measuring that process's
peak resident memory (VmHWM); the cutting SELECT and its chunked reading are also tested piece by piece.
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import anyio
import httpx2
import pytest
from conftest import admin, call, connect, objects, peak_rss_mb, ps, server_process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

TOKEN = "hostile-test-token"
BUDGET_MB = 64  # the most a call may add to the server's idle peak

# Each returns far more than an answer holds: in single values, in many rows, or in many columns.
HOSTILE = {
    "one 200 MB value": "SELECT repeat('x', 200000000)",
    "200 rows of 2 MB": "SELECT repeat('x', 2000000) FROM generate_series(1, 200)",
    "100 MB string_agg": "SELECT string_agg(repeat('y', 1000), ',') FROM generate_series(1, 100000)",
    "50 MB bytea": "SELECT decode(repeat('ff', 25000000), 'hex')",
    "array_agg of 10 M integers": "SELECT array_agg(g) FROM (SELECT generate_series(1, 10000000)) s(g)",
    "jsonb of 30 MB": "SELECT jsonb_agg(repeat('j', 100)) FROM generate_series(1, 300000)",
    "400 columns of 2,000 chars": "SELECT "
    + ", ".join(f"repeat('z', 2000) c{i}" for i in range(400))
    + " FROM generate_series(1, 500)",
}


@pytest.fixture(scope="module")
def served(database_url: str) -> Any:
    env = {"DATABASE_URL": database_url, "MCP_API_TOKEN": TOKEN, "MCP_STATEMENT_TIMEOUT_MS": "60000"}
    with server_process(env) as served:
        yield served


def client_for(base: str) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    return http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode="legacy")  # type: ignore[arg-type]


async def test_hostile_results_cost_the_server_what_its_answer_does(served: tuple[Any, str]) -> None:
    """Every payload answers a normal, truncated result, and the process's peak memory over all of them stays
    within BUDGET_MB of its peak before them (before: 200 MB values cost their size, twice or more)."""
    process, base = served
    http, client = client_for(base)
    answers = {}
    async with http, client:
        await call(client, "execute_sql", sql="SELECT 1")  # posture, catalog, imports: the idle peak
        idle = peak_rss_mb(process.pid)
        for name, sql in HOSTILE.items():
            answers[name] = await call(client, "execute_sql", sql=sql)
        peak = peak_rss_mb(process.pid)
    for name, answer in answers.items():
        assert not answer.is_error, f"{name}: {answer.text}"
        assert answer.data["truncated"] is True and " cut at " in answer.data.get("note", ""), name  # why
        assert len(answer.text.encode()) <= 60_000, name
    assert peak <= idle + BUDGET_MB, f"peak {peak:.0f} MB against {idle:.0f} MB idle"


async def test_a_cut_value_says_how_long_it_was(config: ps.Config) -> None:
    async with connect(config) as client:
        answer = await call(client, "execute_sql", sql="SELECT repeat('x', 5000) a, 7 b, repeat('é', 2001) c, 'ok' d")
    a, b, c, d = answer.data["rows"][0]
    assert a == "x" * 2000 + "…[+3000 chars]" and c == "é" * 2000 + "…[+1 chars]" and (b, d) == (7, "ok")
    assert answer.data["truncated"] is True
    assert "2 values cut at 2000 characters (MCP_MAX_CELL_CHARS" in answer.data["note"]


async def test_values_of_every_kind_are_cut_in_their_answer_form(database_url: str) -> None:
    """Cut inside PostgreSQL: text by characters, bytea as its hex, arrays as JSON, other types as their text;
    what fits keeps its type (JSON parsed, arrays as lists), NULL stays NULL."""
    config = ps.Config(conn=database_url, max_cell_chars=20)
    sql = (
        "SELECT decode(repeat('ab', 30), 'hex') AS long_bytes, '\\x01'::bytea AS short_bytes,"
        " ARRAY(SELECT g FROM generate_series(1, 30) g) AS long_array, ARRAY[1, 2] AS short_array,"
        " (SELECT jsonb_agg(g) FROM generate_series(1, 30) g) AS long_json, '{\"k\": 1}'::jsonb AS short_json,"
        " ROW(1, repeat('r', 30)) AS long_row, repeat('n', 30)::name AS long_name, 'ab'::char(4) AS padded,"
        " NULL::text AS missing, 1234567890.5::numeric AS exact"
    )
    async with connect(config) as client:
        row = (await call(client, "execute_sql", sql=sql)).data["rows"][0]
    assert row[0] == "\\x" + "ab" * 9 + "…[+42 chars]" and row[1] == "\\x01"
    assert row[2] == "[1,2,3,4,5,6,7,8,9,1…[+62 chars]" and row[3] == [1, 2]
    assert row[4].startswith("[1, 2, 3, 4, 5, 6, 7") and row[4].endswith(" chars]") and row[5] == {"k": 1}
    assert row[6] == "(1,rrrrrrrrrrrrrrrrr…[+14 chars]" and row[7] == "n" * 20 + "…[+10 chars]"
    assert row[8:] == ["ab  ", None, "1234567890.5"]


async def test_columns_that_changed_since_are_described_again(database_url: str) -> None:
    """A statement's columns are remembered; DDL that changes them (a type, a new column) is seen on the next
    call, in the same round trip, and a column that became wide is cut."""
    setup = "CREATE TABLE public.reshaped (a int); INSERT INTO public.reshaped VALUES (1)"
    with objects(database_url, setup, "DROP TABLE IF EXISTS public.reshaped") as url:
        config = ps.Config(conn=url, pool_min=1, pool_max=1)
        async with connect(config) as client:
            before = await call(client, "execute_sql", sql="SELECT * FROM public.reshaped")
            admin(url, "ALTER TABLE public.reshaped ALTER a TYPE text")
            admin(url, "UPDATE public.reshaped SET a = repeat('w', 3000)")
            retyped = await call(client, "execute_sql", sql="SELECT * FROM public.reshaped")
            admin(url, "ALTER TABLE public.reshaped ADD b int DEFAULT 2")
            widened = await call(client, "execute_sql", sql="SELECT * FROM public.reshaped")
    assert before.data["rows"] == [[1]] and before.data["columns"] == [{"name": "a", "type": "int4"}]
    assert retyped.data["columns"] == [{"name": "a", "type": "text"}]
    assert retyped.data["rows"] == [["w" * 2000 + "…[+1000 chars]"]]
    assert widened.data["rows"] == [["w" * 2000 + "…[+1000 chars]", 2]]


async def test_order_params_and_errors_survive_the_cutting_select(config: ps.Config) -> None:
    async with connect(config) as client:
        ordered = await call(client, "execute_sql", sql="SELECT g, repeat('x', 3000) FROM generate_series(1, 5) g "
                             "ORDER BY g DESC")  # fmt: skip
        with_params = await call(client, "execute_sql", sql="SELECT $1::text || repeat('p', 2500), $2::int",
                                 params=["a", 3])  # fmt: skip
        mistyped = await call(client, "execute_sql", sql="SELECT repeat('x', 3000), 'abc'::int")
        runtime = await call(client, "execute_sql", sql="SELECT repeat('x', 3000), 1 / (g - 3) FROM "
                             "generate_series(1, 5) g")  # fmt: skip
    assert [row[0] for row in ordered.data["rows"]] == [5, 4, 3, 2, 1]
    assert with_params.data["rows"] == [["a" + "p" * 1999 + "…[+501 chars]", 3]]
    assert mistyped.is_error and 'invalid input syntax for type integer: "abc"' in mistyped.text
    assert "LINE 1: SELECT repeat('x', 3000), 'abc'::int\n" + " " * 34 + "^" in mistyped.text
    assert runtime.is_error and "ERROR 22012" in runtime.text


async def test_a_read_stopped_early_leaves_a_clean_connection(database_url: str) -> None:
    """Past the answer's budget the rest of the statement is cancelled; the one pooled connection serves on."""
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1, max_response_bytes=5_000)
    async with connect(config) as client:
        cut = await call(client, "execute_sql", sql="SELECT g, repeat('x', 1500) FROM generate_series(1, 500) g")
        after = await call(client, "execute_sql", sql="SELECT 1")
    assert cut.data["truncated"] is True and "response cut at 5000 bytes" in cut.data["note"]
    assert after.data["rows"] == [[1]]


def test_the_cutting_select_names_only_pg_catalog_objects() -> None:
    """The call's search_path is the caller's: every function and operator the wrapper uses is qualified, and it
    casts nothing (a cast may run a function of the database's) but varchar to text (a relabel) and a literal."""
    names = ("text", "varchar", "bytea", "jsonb", "int4", "int4[]", "numeric")
    oids = tuple(ps.psycopg.postgres.types[name].oid for name in names)
    cutting = ps.cutting_sql(oids, 100)
    sql = cutting.prefix + cutting.suffix
    calls = set(re.findall(r"([\w.]+)\(", sql)) - {"mcp_q", "OPERATOR"}
    assert calls and all(name.startswith("pg_catalog.") for name in calls), calls
    assert not re.findall(r"\) (<=|\|\||\+|\*|=) ", sql) and "OPERATOR(pg_catalog.<=)" in sql
    assert set(re.findall(r"[\w.']+::[\w.]+", sql)) == {"mcp_q.c1::pg_catalog.text", "'2'::pg_catalog.int8"}
    bounded = ps.cutting_sql((oids[4],), 100)  # only bounded types: guarded by their stored size, nothing to report
    assert not bounded.reports and "pg_catalog.pg_column_size(mcp_q.c0)" in bounded.prefix


def test_cut_values_are_restored_from_their_report() -> None:
    widths = (5, 0, 4)
    assert ps.restore_cuts(("a", 1, "b", ""), widths) == ("a", 1, "b")
    restored = ps.restore_cuts((None, 1, None, "0,9:ab,cd2,12:x:y,"), widths)
    assert restored == ("ab,cd…[+4 chars]", 1, "x:y,…[+8 chars]")
    assert ps.restore_cuts((None, 1, b"0,6:ab\xffde"), (5, 0))[0] == "ab\\xffde…[+1 chars]"  # SQL_ASCII


async def test_select_1_stays_fast_beside_a_flood_of_large_statements(served: tuple[Any, str]) -> None:
    """A client sending 100 KB statements over and over must not hold up another's SELECT 1 (before: one 4 MB
    statement stalled every caller for 13 s). Timing lives in tests/bench.py --hostile; this only catches a stall."""
    _, base = served
    big = "SELECT count(*) FROM pg_class WHERE oid IN (" + ",".join(str(i) for i in range(18_000)) + ")"
    latencies: list[float] = []
    loud_http, loud = client_for(base)
    quiet_http, quiet = client_for(base)
    async with loud_http, loud, quiet_http, quiet:
        await call(quiet, "execute_sql", sql="SELECT 1")
        done = anyio.Event()

        async def flood() -> None:
            n = 0
            while not done.is_set():
                await call(loud, "execute_sql", sql=f"{big} AND {n} = {n}")
                n += 1

        async with anyio.create_task_group() as group:
            group.start_soon(flood)
            for _ in range(40):
                started = time.perf_counter()
                assert (await call(quiet, "execute_sql", sql="SELECT 1")).data["rows"] == [[1]]
                latencies.append(time.perf_counter() - started)
                await anyio.sleep(0.01)
            done.set()
    assert max(latencies) < 2.0, f"median {statistics.median(latencies):.3f} s, max {max(latencies):.3f} s"


async def test_the_cutting_select_runs_no_cast_of_the_database(database_url: str) -> None:
    """A cast a database owner added (numeric to text, int4 to json) is never run by the cutting SELECT: values
    become text by their type's output function."""
    setup = """
        CREATE FUNCTION public.loud_cast(numeric) RETURNS text LANGUAGE plpgsql AS
        $$BEGIN RAISE EXCEPTION 'the cast ran'; END$$;
        CREATE CAST (numeric AS text) WITH FUNCTION public.loud_cast(numeric);
    """
    teardown = "DROP CAST IF EXISTS (numeric AS text); DROP FUNCTION IF EXISTS public.loud_cast(numeric)"
    with objects(database_url, setup, teardown) as url:
        async with connect(ps.Config(conn=url, max_cell_chars=16)) as client:
            answer = await call(client, "execute_sql", sql="SELECT 12345678901234567890.25::numeric, 1.5::numeric")
    assert not answer.is_error, answer.text
    assert answer.data["rows"] == [["1234567890123456…[+7 chars]", "1.5"]]
