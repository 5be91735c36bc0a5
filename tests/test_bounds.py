"""Everything bounded and cancellable: rows, bytes, cells, time, connections; outages and recovery."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import psycopg
import pytest
from conftest import SLOW_SQL, active_queries, call, cancel_midway, connect, objects, ps
from psycopg.conninfo import conninfo_to_dict, make_conninfo

pytestmark = pytest.mark.anyio

HUNDRED_MILLION = "SELECT g, md5(g::text) FROM (SELECT generate_series(1, 100000000) AS g) s"


async def test_a_hundred_million_rows_cost_what_a_hundred_do(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_rows=100, statement_timeout_ms=20_000)
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql=HUNDRED_MILLION)
    assert not result.is_error, result.text
    assert result.data["row_count"] == 100 and result.data["truncated"] is True
    assert "more rows exist: cut at max_rows=100" in result.data["note"]
    assert "TRUNCATED" in result.text.splitlines()[-1]


async def test_max_rows_argument_lowers_the_cap(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT generate_series(1, 10)", max_rows=4)
        exact = await call(client, "execute_sql", sql="SELECT generate_series(1, 4)", max_rows=4)
    assert result.data["rows"] == [[1], [2], [3], [4]] and result.data["truncated"] is True
    assert exact.data["truncated"] is False and "note" not in exact.data  # no null fields


async def test_response_bytes_are_capped_with_a_note(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_response_bytes=5_000)
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g")
    assert result.data["truncated"] is True and 0 < result.data["row_count"] < 50
    assert "response cut at 5000 bytes (MCP_MAX_RESPONSE_BYTES)" in result.data["note"]
    assert len(result.text.encode()) <= 5_000


async def test_every_tools_text_is_capped(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_response_bytes=1_500)
    async with connect(config) as client:
        listed = await call(client, "list_tables", schema="wide")
        described = await call(client, "describe_table", table="analytics.events")
    assert len(listed.text.encode()) <= 1_500 and "response cut at 1500 bytes (MCP_MAX_RESPONSE_BYTES)" in listed.text
    assert len(described.data["partitions"]) == 2 and "partition_count" not in described.data  # all listed


async def test_long_cells_are_cut_with_a_marker(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_cell_chars=1_000)
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT body, doc, nums, raw FROM big_cells")
    body, doc, nums, raw = result.data["rows"][0]
    assert body == "x" * 1_000 + "…[+999000 chars]"
    assert isinstance(doc, str) and doc.endswith(" chars]") and len(doc) < 1_100
    assert isinstance(nums, str) and nums.startswith("[1,2,3,") and nums.endswith(" chars]")
    assert raw == "\\x" + "ff" * 10  # short values pass untouched
    assert len(result.text) < 6_000


async def test_statement_timeout_says_which_limit_fired(database_url: str) -> None:
    config = ps.Config(conn=database_url, statement_timeout_ms=200)
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql=SLOW_SQL)
        after = await call(client, "execute_sql", sql="SELECT 1")
    assert result.is_error and "ERROR 57014" in result.text
    assert "statement_timeout (200 ms, POSTGRES_STATEMENT_TIMEOUT_MS)" in result.text
    assert after.data["rows"] == [[1]]


async def test_lock_timeout_says_which_limit_fired(database_url: str) -> None:
    config = ps.Config(conn=database_url, lock_timeout_ms=200)
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE victim IN ACCESS EXCLUSIVE MODE")
        async with connect(config) as client:
            result = await call(client, "execute_sql", sql="SELECT * FROM victim")
        locker.rollback()
    assert "ERROR 55P03" in result.text and "lock_timeout (200 ms, POSTGRES_LOCK_TIMEOUT_MS)" in result.text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_cancelled_call_cancels_the_query_in_postgres(database_url: str, mode: str) -> None:
    marker = f"cancel_me_{mode}"
    config = ps.Config(conn=make_conninfo(database_url, application_name=marker), pool_min=1, pool_max=1)
    async with connect(config, mode) as client:
        assert await cancel_midway(client, lambda: active_queries(database_url, marker) == 1)
        # the single pooled connection is clean and usable
        after = await call(client, "execute_sql", sql="SELECT 1, current_setting('transaction_read_only')")
    assert after.data["rows"] == [[1, "on"]]


async def test_waiting_for_a_connection_is_bounded(database_url: str) -> None:
    config = ps.Config(conn=database_url, pool_min=1, pool_max=1, pool_timeout_s=1, statement_timeout_ms=2500)
    async with connect(config) as client:
        results: list[Any] = []
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: _collect(client, SLOW_SQL, results))
            await anyio.sleep(0.3)
            busy = await call(client, "execute_sql", sql="SELECT 1")
    assert busy.is_error and "server busy: all 1 database connections stayed in use for 1 s" in busy.text
    assert "MCP_POOL_MAX" in busy.text
    assert "ERROR 57014" in results[0].text  # it held the only connection until its own timeout


async def _collect(client: Any, sql: str, into: list[Any]) -> None:
    into.append(await call(client, "execute_sql", sql=sql))


class TcpProxy:
    """A TCP front for the test database that can be taken down and brought back: an outage on demand."""

    def __init__(self, target: dict[str, Any]) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.close()
        await self.server.wait_closed()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = str(self.target.get("host") or "localhost"), int(self.target.get("port") or 5432)
        if host.startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        else:
            up_reader, up_writer = await asyncio.open_connection(host, port)
        self.links |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@contextlib.asynccontextmanager
async def proxied(database_url: str) -> AsyncIterator[tuple[TcpProxy, str]]:
    target = conninfo_to_dict(database_url)
    proxy = TcpProxy(target)
    await proxy.start()
    url = make_conninfo(database_url, host="127.0.0.1", port=str(proxy.port))
    try:
        yield proxy, url
    finally:
        with contextlib.suppress(Exception):
            await proxy.stop()


async def test_database_down_then_back(database_url: str) -> None:
    async with proxied(database_url) as (proxy, url):
        config = ps.Config(conn=url, pool_min=1, pool_max=2, pool_timeout_s=2)
        async with connect(config) as client:
            assert (await call(client, "execute_sql", sql="SELECT 1")).data["rows"] == [[1]]
            await proxy.stop()
            down = await call(client, "execute_sql", sql="SELECT 1")
            listed = await call(client, "list_schemas")
            assert down.is_error and f"cannot connect to the database at 127.0.0.1:{proxy.port}" in down.text
            assert "recovers by itself" in down.text and listed.is_error
            await proxy.start()
            recovered = None
            for _ in range(20):
                recovered = await call(client, "execute_sql", sql="SELECT 2")
                if not recovered.is_error:
                    break
                await anyio.sleep(0.5)
            assert recovered is not None and recovered.data["rows"] == [[2]], recovered


async def test_connection_lost_mid_session_is_retried_once(database_url: str) -> None:
    """A pooled connection the network dropped is replaced transparently: reads are safe to retry."""
    async with proxied(database_url) as (proxy, url):
        config = ps.Config(conn=url, pool_min=1, pool_max=1)
        async with connect(config) as client:
            assert not (await call(client, "execute_sql", sql="SELECT 1")).is_error
            for writer in list(proxy.links):  # cut live connections, keep accepting new ones
                writer.close()
            await anyio.sleep(0.1)
            again = await call(client, "execute_sql", sql="SELECT 3")
    assert again.data["rows"] == [[3]], again


async def test_sql_text_is_bounded_before_parsing(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_sql_bytes=50_000)
    values = ",".join(str(i) for i in range(9_000))  # ~48 KB: parsed on a worker thread
    async with connect(config) as client:
        fits = await call(client, "execute_sql", sql=f"SELECT count(*) FROM victim WHERE id IN ({values})")
        over = await call(client, "execute_sql", sql=f"SELECT 1 WHERE 1 IN ({values},{values})")
        multibyte = await call(client, "execute_sql", sql="SELECT '" + "é" * 30_000 + "'")
    assert fits.data["rows"] == [[3]]
    assert over.is_error and "over MCP_MAX_SQL_BYTES (50,000)" in over.text and "= ANY($1)" in over.text
    assert multibyte.is_error and "statement is 60," in multibyte.text  # bytes, not characters


async def test_deep_json_values_come_back_as_text(config: ps.Config) -> None:
    async with connect(config) as client:  # the test client parses every answer, as Claude Code's does
        result = await call(client, "execute_sql", sql=(
            "SELECT (repeat('[', 500) || repeat(']', 500))::jsonb AS deep, '[[1]]'::jsonb AS shallow"))  # fmt: skip
    deep, shallow = result.data["rows"][0]
    assert isinstance(deep, str) and deep.startswith("[[[") and shallow == [[1]]


async def test_temporary_files_of_a_call_are_bounded(database_url: str) -> None:
    config = ps.Config(conn=database_url, work_mem="64kB", temp_file_limit="1MB")
    spill = "SELECT count(*) FROM (SELECT g FROM generate_series(1, 300000) g ORDER BY g DESC) s"
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql=spill)
        settings = await call(client, "execute_sql", sql="SELECT current_setting('work_mem'), "
                              "current_setting('temp_file_limit')")  # fmt: skip
    assert result.is_error and "ERROR 53400" in result.text and "POSTGRES_TEMP_FILE_LIMIT" in result.text
    assert settings.data["rows"] == [["64kB", "1MB"]]


async def test_every_answer_of_a_catalog_full_of_long_texts_stays_within_the_cap(database_url: str) -> None:
    """Index predicates, view definitions and comments, long, in few pieces: both the text and the structured
    answer stay within MCP_MAX_RESPONSE_BYTES, and the call returns (the structured cut once looped forever on a list
    of two whose first item was over the cap). Comments of control characters are six bytes each in JSON."""
    predicate = " AND ".join(f"id <> {n}" for n in range(250))  # 3 KB (pg_index has no TOAST): cut at 500
    columns = ", ".join(f"c{n} text" for n in range(50))
    comments = "; ".join(f"COMMENT ON COLUMN long_texts.c{n} IS '{chr(1) * 1000}'" for n in range(50))
    setup = (f"CREATE TABLE long_texts (id int, {columns}); CREATE INDEX a_wide ON long_texts (id) WHERE {predicate}; "
             f"CREATE INDEX b_plain ON long_texts (c1); {comments}; "
             f"CREATE VIEW long_view AS SELECT 1 AS a, 2 AS b, '{'😀' * 19_900}'::text AS c")  # fmt: skip
    with objects(database_url, setup, "DROP VIEW IF EXISTS long_view; DROP TABLE IF EXISTS long_texts"):
        async with connect(ps.Config(conn=database_url)) as client:
            with anyio.fail_after(20):
                answers = [await client.call_tool("describe_table", {"table": name})
                           for name in ("long_texts", "long_view")]  # fmt: skip
    for answer in answers:
        text = answer.content[0].text  # type: ignore[union-attr]
        structured = json.dumps(answer.structured_content, ensure_ascii=False, separators=(",", ":"))
        assert not answer.is_error and len(text.encode()) <= 60_000 and len(structured.encode()) <= 60_000
    assert "…[+" in json.dumps(answers[0].structured_content["indexes"], ensure_ascii=False)  # cut where read


def test_the_structured_cut_always_ends_within_the_cap() -> None:
    shapes = [
        {"indexes": ["a: " + "x" * 70_000, "b: (y)"], "truncated": False},  # a list of two, the first over the cap
        {"rows": [["z" * 70_000]], "truncated": False},  # one row
        {"rows": [[["q" * 30_000, "r" * 30_000], {"a": "s" * 30_000}]]},  # nested lists and objects
        {"rows": [[10**30]] * 10_000},  # integers orjson cannot write
        {"columns": ["\u0001" * 20_000]},  # escapes: six bytes a character
    ]
    for shape in shapes:
        assert ps.fit_structured(shape, 1_000) and ps.json_size(shape) <= 1_000, shape
    small = {"rows": [[1]], "truncated": False}
    assert not ps.fit_structured(small, 1_000) and small == {"rows": [[1]], "truncated": False}


async def test_an_error_answer_stays_within_the_cap(database_url: str) -> None:
    """PostgreSQL quotes a bad literal whole (in the message and the caret line): the error is cut like any answer."""
    async with connect(ps.Config(conn=database_url, max_response_bytes=5_000)) as client:
        answer = await call(client, "execute_sql", sql=f"SELECT '{'x' * 20_000}'::int")
    assert answer.is_error and answer.text.startswith("ERROR 22P02") and len(answer.text.encode()) <= 5_000
    assert answer.text.endswith("… error cut at 5000 bytes (MCP_MAX_RESPONSE_BYTES)")
