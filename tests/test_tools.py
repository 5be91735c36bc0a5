"""Every tool through the real MCP client (in memory) against a real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import Called, call, connect, ps

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "snapshots" / "tools_list.json"
SIZE = r"\d+ (bytes|kB|MB|GB)"  # a size as list_tables shows it (pg_size_pretty; kB below 10 kB)
REGENERATE = "UPDATE_SNAPSHOTS=1 pytest tests/test_tools.py -k snapshot"  # the one way to write the snapshot


def records(data: dict[str, Any]) -> list[dict[str, Any]]:
    """A tabular answer (columns, rows) as one dict per row."""
    return [dict(zip(data["columns"], row, strict=True)) for row in data["rows"]]


async def tools_seen(config: ps.Config, mode: str) -> list[dict[str, Any]]:
    """What an agent is shown of each tool (name, description, schemas, annotations), in name order."""
    async with connect(config, mode) as client:
        tools = (await client.list_tools()).tools
    return [
        {
            "name": t.name,
            "description": t.description,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
            "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None,
        }
        for t in sorted(tools, key=lambda t: t.name)
    ]


async def test_tools_list_matches_snapshot(config: ps.Config) -> None:
    """What agents see changes only on purpose. The snapshot is written only with UPDATE_SNAPSHOTS=1 (then review
    `git diff`); without it a missing or different snapshot fails, and the test never writes."""
    seen = await tools_seen(config, "legacy")
    assert await tools_seen(config, "auto") == seen, "the two protocol eras list different tools"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(seen, indent=1, sort_keys=True) + "\n")
    else:
        assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}: write it with {REGENERATE}"
        assert seen == json.loads(SNAPSHOT.read_text()), f"tools/list changed: if on purpose, run {REGENERATE}"
    for tool in seen:
        assert tool["annotations"] == {"readOnlyHint": True, "openWorldHint": False}  # the rest only mean writes
        assert tool["output_schema"]


async def test_list_schemas(config: ps.Config, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:  # the seed ran as this login: it owns the demo schemas
        seeder = conn.execute("SELECT current_user").fetchone()
    async with connect(config) as client:
        result = await call(client, "list_schemas")
    assert not result.is_error
    names = [s["name"] for s in records(result.data)]
    assert {"shop", "hr", "analytics", "public", "wide"} <= set(names)
    assert not {"pg_catalog", "information_schema", "pg_toast"} & set(names)
    shop = next(s for s in records(result.data) if s["name"] == "shop")
    assert seeder is not None and shop == {"name": "shop", "owner": seeder[0], "tables": 6, "views": 0,
                                           "comment": "Online store: customers, catalogue, orders"}  # fmt: skip
    lines = result.text.splitlines()
    assert lines[0] == '["name","owner","tables","views","comment"]'
    assert any(line.startswith('["shop",') for line in lines)


async def test_configured_schemas_limit_every_tool(database_url: str) -> None:
    config = ps.Config(conn=database_url, schemas=("shop",))
    async with connect(config) as client:
        schemas = await call(client, "list_schemas")
        hidden = await call(client, "list_tables", schema="hr")
        enums = await call(client, "list_enums")
        described = await call(client, "describe_table", table="hr.employees")
        customers = await call(client, "describe_table", table="shop.customers")
    assert [s["name"] for s in records(schemas.data)] == ["shop"]
    assert hidden.is_error and "not found or not exposed" in hidden.text
    assert [e.split(":")[0] for e in enums.data["enums"]] == ["shop.order_status"]
    assert described.is_error
    # incoming keys from a hidden schema (analytics.events) are not shown
    assert {fk.split("(")[0] for fk in customers.data["referenced_by"]} == {"shop.customers", "shop.orders"}


async def test_list_tables_kinds_estimates_and_pattern(config: ps.Config) -> None:
    async with connect(config) as client:
        analytics = await call(client, "list_tables", schema="analytics")
        shop = await call(client, "list_tables", schema="SHOP", pattern="order*")
        contains = await call(client, "list_tables", schema="shop", pattern="item")
    kinds = {t["name"]: t["kind"] for t in records(analytics.data)}
    assert kinds == {"events": "partitioned table", "daily_sales": "view", "customer_value": "materialized view"}
    events = next(t for t in records(analytics.data) if t["name"] == "events")
    assert events["est_rows"] == 3000 and re.fullmatch(SIZE, events["size"]), events
    assert [t["name"] for t in records(shop.data)] == ["order_items", "orders"]
    assert shop.data["schema"] == "shop" and shop.data["total"] == 2 and shop.data["truncated"] is False
    assert [t["name"] for t in records(contains.data)] == ["order_items"]
    assert list(shop.data) == ["schema", "total", "truncated", "columns", "rows"]  # counts first


async def test_list_tables_caps_a_huge_schema(database_url: str) -> None:
    config = ps.Config(conn=database_url, max_rows=50)
    async with connect(config) as client:
        wide = await call(client, "list_tables", schema="wide")
        narrowed = await call(client, "list_tables", schema="wide", pattern="t00?")
    assert wide.data["total"] == 120 and len(wide.data["rows"]) == 50 and wide.data["truncated"] is True
    assert "showing the first 50: pass a pattern to narrow" in wide.text
    assert records(wide.data)[0] == {
        "name": "t001", "kind": "table", "est_rows": 0, "size": "0 kB", "comment": "first of many"
    }  # fmt: skip
    assert [t["name"] for t in records(narrowed.data)] == [f"t00{i}" for i in range(1, 10)]


async def test_unknown_schema_suggests(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "list_tables", schema="shopp")
    assert result.is_error
    assert "schema 'shopp' not found" in result.text and "Did you mean: shop" in result.text


async def test_describe_table_gives_everything_for_a_join(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "describe_table", table="order_items", schema="shop")
    d = result.data
    assert not result.is_error
    assert (d["table"], d["kind"]) == ("shop.order_items", "table")
    assert any(c.startswith("unit_price numeric(10,2) not null [") for c in d["columns"])  # [its value profile]
    assert any(c.startswith("line_total numeric(12,2) generated as ((quantity)::numeric * unit_price)")
               for c in d["columns"])  # fmt: skip
    assert d["primary_key"] == "(order_id, line_no)"
    assert d["checks"] == ["CHECK (quantity > 0) [order_items_quantity_check]"]
    assert d["foreign_keys"] == [
        "(order_id) → shop.orders(id) [order_items_order_id_fkey] on delete cascade",
        "(product_id) → shop.products(id) [order_items_product_id_fkey]",
    ]
    # composite, in key order
    assert d["referenced_by"] == ["shop.shipments(order_id, line_no) → (order_id, line_no) "
                                  "[shipments_order_id_line_no_fkey] on delete cascade"]  # fmt: skip
    compact = json.dumps(d, ensure_ascii=False, separators=(",", ":"))  # as Claude Code hands it to the model
    assert len(compact.encode()) <= 1.1 * len(result.text.encode())
    assert "foreign keys:\n  (order_id) → shop.orders(id) [order_items_order_id_fkey] on delete cascade" in result.text
    assert "  shop.shipments(order_id, line_no) → (order_id, line_no) [shipments_order_id_line_no_fkey]" in result.text


async def describe(config: ps.Config, *tables: str) -> list[Called]:
    async with connect(config) as client:
        return [await call(client, "describe_table", table=table) for table in tables]


async def test_describe_table_columns_details(config: ps.Config) -> None:
    orders, products, customers = await describe(config, "shop.orders", "shop.products", "shop.customers")
    cols = {c.split()[0]: c.split(" [")[0] for c in orders.data["columns"]}  # without the value profile
    assert cols["id"] == "id bigint not null identity always"
    # its profile names every value with its share, so the enum's own list would say it twice
    assert orders.data["columns"][2] == (
        "status shop.order_status not null default 'pending'::shop.order_status "
        "[values pending 20%, paid 20%, shipped 20%, delivered 20%, cancelled 20%]"
    )
    assert orders.data["columns"][-1].endswith("-- sum of line totals, in USD")
    assert cols["shipped_within"] == "shipped_within interval"
    # btree is the default method; an index behind a key or unique constraint is that constraint's line
    assert products.data["indexes"] == ["products_active_idx: (category_id) WHERE (NOT discontinued)"]
    assert products.data["unique"] == ["(sku) [products_sku_key]"]
    assert "(referred_by) → shop.customers(id) [customers_referred_by_fkey] on delete set null" in customers.data[
        "foreign_keys"]  # fmt: skip
    assert any(fk.startswith("shop.customers(") for fk in customers.data["referenced_by"])
    referred = next(line for line in customers.text.splitlines() if line.startswith("  referred_by bigint ["))
    assert referred.endswith("] -- customer who referred this one")


async def test_describe_views_partitions_and_cross_schema(config: ps.Config) -> None:
    view, matview, events, partition = await describe(
        config, "analytics.daily_sales", "analytics.customer_value", "analytics.events", "analytics.events_2025"
    )
    assert view.data["kind"] == "view" and "FROM shop.orders" in view.data["view_definition"]
    assert view.data["comment"] == "revenue per day, excluding cancelled orders"
    assert matview.data["kind"] == "materialized view" and "LEFT JOIN" in matview.data["view_definition"]
    assert events.data["partitioned_by"] == "RANGE (occurred_at)"
    assert [p.split()[0] for p in events.data["partitions"]] == ["analytics.events_2025", "analytics.events_2026"]
    assert "→ shop.customers(id)" in events.data["foreign_keys"][0]  # cross-schema
    assert partition.data["partition_of"].startswith("analytics.events FOR VALUES")


@pytest.mark.parametrize(
    ("table", "schema", "expected"),
    [
        ("victim", None, "public.victim"),
        ("VICTIM", None, "public.victim"),  # unquoted: case-insensitive like Postgres
        ("public.victim", None, "public.victim"),
        ('"public"."victim"', None, "public.victim"),
        ('"Mixed Case"', None, 'public."Mixed Case"'),  # printed quoted: ready to paste into SQL
        ("mixed case", None, 'public."Mixed Case"'),
        ("orders", None, "public.orders"),  # search_path first
        ("orders", "shop", "shop.orders"),
        ("Shop.Orders", None, "shop.orders"),
        ("mcp_test.shop.orders", None, "shop.orders"),  # database-qualified
    ],
)
async def test_identifier_forms(config: ps.Config, table: str, schema: str | None, expected: str) -> None:
    async with connect(config) as client:
        result = await call(client, "describe_table", table=table, **({"schema": schema} if schema else {}))
    assert not result.is_error, result.text
    assert result.data["table"] == expected


async def test_ambiguous_name_says_where_else(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "describe_table", table="orders")
    assert result.data["also_in"] == ["shop.orders"]
    assert "also named so: shop.orders (pass schema to pick one)" in result.text


async def test_quoted_name_is_exact(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "describe_table", table='"VICTIM"')
    assert result.is_error and "Did you mean: public.victim" in result.text


@pytest.mark.parametrize("bad", ["", '"unbalanced', "a..b", "a.b.c.d.."])
async def test_malformed_names_are_explained(config: ps.Config, bad: str) -> None:
    async with connect(config) as client:
        result = await call(client, "describe_table", table=bad)
    assert result.is_error and "name" in result.text


async def test_get_relationships_both_ways(config: ps.Config) -> None:
    async with connect(config) as client:
        customers = await call(client, "get_relationships", table="shop.customers")
        items = await call(client, "get_relationships", table="order_items", schema="shop")
        employees = await call(client, "get_relationships", table="hr.employees")
        missing = await call(client, "get_relationships", table="shop.custmers")
    out = customers.data["outgoing"]
    assert out == ["(referred_by) → shop.customers(id) [customers_referred_by_fkey] on delete set null"]
    assert {fk.split("(")[0] for fk in customers.data["incoming"]} == {"analytics.events", "shop.customers",
                                                                        "shop.orders"}  # fmt: skip
    assert items.data["incoming"][0].startswith("shop.shipments(order_id, line_no) → (order_id, line_no)")
    assert {fk.split(" → ")[1].split("(")[0] for fk in items.data["outgoing"]} == {"shop.orders", "shop.products"}
    assert {fk.split(" → ")[1].split("(")[0] for fk in employees.data["outgoing"]} == {"hr.departments",
                                                                                        "hr.employees"}  # fmt: skip
    assert "outgoing (1):" in customers.text and "incoming (3):" in customers.text
    assert missing.is_error and "Did you mean: shop.customers" in missing.text


async def test_list_enums(config: ps.Config) -> None:
    async with connect(config) as client:
        every = await call(client, "list_enums")
        shop = await call(client, "list_enums", schema="shop")
        missing = await call(client, "list_enums", schema="nope")
    status = next(e for e in every.data["enums"] if e.startswith("shop.order_status:"))
    assert status.startswith("shop.order_status: pending|paid|shipped|delivered|cancelled  (used by ")
    assert all(column in status for column in ("shop.orders.status", "public.types_zoo.e", "public.types_zoo.e_arr"))
    assert [e.split(":")[0] for e in shop.data["enums"]] == ["shop.order_status"]
    assert "shop.order_status: pending|paid|shipped|delivered|cancelled" in shop.text
    assert missing.is_error and "schema 'nope' not found" in missing.text


async def test_execute_sql_basic_with_params(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(
            client, "execute_sql", sql="SELECT id, v FROM victim WHERE id >= $1 AND v LIKE $2 ORDER BY id",
            params=[2, "t%"],
        )  # fmt: skip
    assert not result.is_error
    assert result.data["columns"] == [{"name": "id", "type": "int4"}, {"name": "v", "type": "text"}]
    assert result.data["rows"] == [[2, "two"], [3, "three"]]
    assert result.data["row_count"] == 2 and result.data["truncated"] is False and "note" not in result.data
    lines = result.text.splitlines()
    assert lines[:3] == ["id (int4) | v (text)", '[2,"two"]', '[3,"three"]']
    assert lines[3].startswith("-- 2 rows in ")


async def test_params_of_every_json_kind(config: ps.Config) -> None:
    async with connect(config) as client:
        sql = "SELECT $1::int + 1, $2::numeric, $3::bool, $4::text IS NULL, $5"
        result = await call(client, "execute_sql", sql=sql, params=[41, 1.5, True, None, "plain"])
    assert result.data["rows"] == [[42, "1.5", True, True, "plain"]]


async def test_percent_signs_and_placeholders_in_strings(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT 'a%s%%' AS p, '$1' AS d, 'x' LIKE '%' AS l")
    assert result.data["rows"] == [["a%s%%", "$1", True]]


async def test_every_type_is_json_safe(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await call(client, "execute_sql", sql="SELECT * FROM types_zoo ORDER BY i2 NULLS LAST")
    assert not result.is_error, result.text
    names = [c["name"] for c in result.data["columns"]]
    row = dict(zip(names, result.data["rows"][0], strict=True))
    types = {c["name"]: c["type"] for c in result.data["columns"]}
    assert row["i2"] == -32768 and row["i8"] == 9223372036854775807 and row["oid_"] == 42
    assert row["n"] == "12345678901234567890.123456789"  # exact
    assert row["f4"] == "Infinity" and row["f8"] == "NaN"
    assert row["b"] is True and row["t"] == 'héllo "quoted"\n' and row["c"] == "ab "
    assert row["d"] == "infinity"
    assert row["ts"] == "2024-02-29T12:34:56.789"
    assert row["tstz"].startswith("2024-02-29T") and row["tm"] == "23:59:59"
    assert row["iv"] == "P1Y2M3DT4H5M6S"  # ISO 8601 duration
    assert row["u"] == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" and row["ip"] == "192.168.0.1/24"
    assert row["m"] == "$12.34" and row["mac"] == "08:00:2b:01:02:03"
    assert row["j"] == {"a": [1, 2.5, None]} and row["jb"] == {"b": {"c": True}}
    assert row["arr_i"] == [1, None, 3] and row["arr_t"] == ["a,b", None] and row["arr_2d"] == [[1, 2], [3, 4]]
    assert row["rng"] == "[1,10)" and row["trng"].startswith('["2024-01-01')
    assert row["by"] == "\\x00ff10" and row["bits"] == "1010" and row["pt"] == "(1,2)"
    assert row["e"] == "paid" and row["tsv"] == "'cat' 'fat'"
    assert types["e"] == "shop.order_status" and types["vc"] == "varchar(5)" and types["arr_i"] == "int4[]"
    negative = dict(zip(names, result.data["rows"][1], strict=True))
    assert negative["f4"] == "-Infinity" and negative["d"] == "4713-01-01 BC"
    json.loads(json.dumps(result.data, allow_nan=False))  # strictly valid JSON
    for line in result.text.splitlines()[1:-1]:
        json.loads(line)


async def test_json_numbers_stay_exact(config: ps.Config) -> None:
    async with connect(config) as client:
        sql = """SELECT '{"big": 123456789012345678901234567890, "small": 1.5}'::jsonb AS j"""
        result = await call(client, "execute_sql", sql=sql)
    assert result.data["rows"] == [[{"big": 123456789012345678901234567890, "small": 1.5}]]
    assert '"big":123456789012345678901234567890' in result.text


async def test_json_no_python_value_holds_comes_back_as_its_text(config: ps.Config) -> None:
    """A number no float holds (17 significant digits, a jsonb exponent beyond a double's) and an escaped lone
    surrogate (valid JSON, no Python string) come back as the JSON text, exact, never rounded or an error."""
    async with connect(config) as client:
        result = await call(
            client,
            "execute_sql",
            sql="""SELECT '[3.1415926535897932, 0.1]'::jsonb AS pi,
            '{"e": 1.5e300, "id": "12345678901234567890"}'::json AS fits, '"\\ud83d"'::json AS surrogate,
            '[1e400, 2]'::json AS overflow, '1e-400'::json AS underflow""",
        )
    assert result.data["rows"] == [["[3.1415926535897932, 0.1]", {"e": 1.5e300, "id": "12345678901234567890"},
                                    '"\\ud83d"', "[1e400, 2]", "1e-400"]]  # fmt: skip


async def test_non_utf8_bytes_never_crash(admin_url: str) -> None:
    """A SQL_ASCII database may hold any bytes in text: they come back escaped, not as a crash."""
    from conftest import with_db

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS mcp_test_ascii")
        conn.execute(
            "CREATE DATABASE mcp_test_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
        )
    url = with_db(admin_url, dbname="mcp_test_ascii")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (s text, a text[])")
            conn.execute("INSERT INTO t VALUES (convert_from('\\xff41'::bytea, 'SQL_ASCII'), ARRAY['ok'])")
        async with connect(ps.Config(conn=url)) as client:
            result = await call(client, "execute_sql", sql="SELECT s, a, s || 'x' AS t FROM t")
        assert not result.is_error, result.text
        assert result.data["rows"][0][0] == "\\xffA"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS mcp_test_ascii WITH (FORCE)")


async def test_explain_analyze_and_show(config: ps.Config) -> None:
    async with connect(config) as client:
        plan = await call(client, "execute_sql", sql="EXPLAIN ANALYZE SELECT count(*) FROM shop.orders")
        as_json = await call(client, "execute_sql", sql="EXPLAIN (FORMAT JSON) SELECT 1")
        show = await call(client, "execute_sql", sql="SHOW statement_timeout")
    assert not plan.is_error and any("actual time" in row[0] for row in plan.data["rows"])
    assert as_json.data["rows"][0][0][0]["Plan"]["Node Type"] == "Result"
    assert show.data["rows"] == [["30s"]]  # the server's limit, applied as SET LOCAL


async def test_postgres_errors_carry_sqlstate_hint_and_caret(config: ps.Config) -> None:
    async with connect(config) as client:
        missing = await call(client, "execute_sql", sql="SELECT id\nFROM victim\nWHERE nme = 1")
        hinted = await call(client, "execute_sql", sql="SELECT * FROM victim WHERE id = 'x'::text")
        divide = await call(client, "execute_sql", sql="SELECT 1/0")
    assert missing.is_error
    assert missing.text.splitlines() == [
        'ERROR 42703 (UndefinedColumn): column "nme" does not exist',
        "LINE 3: WHERE nme = 1",
        "              ^",
        "NOTE: columns of public.victim: id, v",  # no close match for PostgreSQL to hint at
    ]
    assert hinted.text.splitlines()[:3] == [
        "ERROR 42883 (UndefinedFunction): operator does not exist: integer = text",
        "LINE 1: SELECT * FROM victim WHERE id = 'x'::text",
        "                                      ^",
    ]
    assert hinted.text.splitlines()[3].startswith("HINT: ")
    assert divide.text == "ERROR 22012 (DivisionByZero): division by zero"


async def test_max_rows_argument_is_bounded(config: ps.Config) -> None:
    """Above the ceiling, max_rows is clamped to it with a note (the description calls it the ceiling)."""
    async with connect(config) as client:
        too_many = await call(client, "execute_sql", sql="SELECT 1", max_rows=config.max_rows + 1)
        zero = await call(client, "execute_sql", sql="SELECT 1", max_rows=0)
    assert too_many.data["rows"] == [[1]] and too_many.data["truncated"] is False
    assert f"max_rows {config.max_rows + 1} is above the ceiling, {config.max_rows}" in too_many.data["note"]
    assert too_many.text.splitlines()[-1].startswith("-- 1 row in") and "; NOTE: max_rows" in too_many.text
    assert zero.is_error and "max_rows must be at least 1" in zero.text


async def test_timestamps_are_rfc_3339_with_a_full_offset(config: ps.Config) -> None:
    """'+00' is what PostgreSQL prints and what JavaScript's Date rejects: '+00:00'."""
    sql = ("SELECT timestamptz '2024-02-29 12:34:56.789+00' AS utc, timestamp '2024-02-29 12:34:56' AS plain,"
           " timetz '12:00:00+02' AS tz, 'infinity'::timestamptz AS forever,"
           " ARRAY[timestamptz '2024-01-01 00:00:00+00'] AS many")  # fmt: skip
    async with connect(config) as client:
        row = (await call(client, "execute_sql", sql=sql)).data["rows"][0]
    assert row == ["2024-02-29T12:34:56.789+00:00", "2024-02-29T12:34:56", "12:00:00+02:00", "infinity",
                   ["2024-01-01T00:00:00+00:00"]]  # fmt: skip


async def test_bad_arguments_are_explained(config: ps.Config) -> None:
    async with connect(config) as client:
        result = await client.call_tool("execute_sql", {"sql": 42})
        unknown = await client.call_tool("drop_everything", {})
    assert result.is_error and "sql" in result.content[0].text
    assert unknown.is_error and "drop_everything" in unknown.content[0].text


async def test_no_database_configured_explains_how() -> None:
    async with connect(ps.Config()) as client:
        for tool, args in [("list_schemas", {}), ("execute_sql", {"sql": "SELECT 1"}), ("list_enums", {})]:
            result = await call(client, tool, **args)
            assert result.is_error
            assert "no database is configured" in result.text and "DATABASE_URL" in result.text


async def test_one_log_line_per_call(config: ps.Config, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="postgres_mcp")
    async with connect(config) as client:
        await call(client, "execute_sql", sql="SELECT 1")
        await call(client, "execute_sql", sql="DELETE FROM victim")
        await call(client, "execute_sql", sql="SELECT * FROM nope")
    calls = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tool=")]
    assert len(calls) == 3
    assert calls[0].startswith("tool=execute_sql principal=- ms=") and calls[0].endswith(
        "rows=1 truncated=false error=-"
    )
    assert calls[1].endswith("error=refused") and calls[2].endswith("error=42P01")


async def test_an_unknown_relation_suggests_the_qualified_names(config: ps.Config) -> None:
    """The table lives in another schema, or the agent guessed a plural: the error names the candidates."""
    async with connect(config) as client:
        missing = await call(client, "execute_sql", sql="SELECT count(*) FROM customer")
        nowhere = await call(client, "execute_sql", sql="SELECT count(*) FROM zzz_nothing_like_it")
    assert missing.is_error and "ERROR 42P01" in missing.text and "Did you mean: shop.customers" in missing.text
    assert "list_tables shows what exists" in nowhere.text


async def test_names_that_need_quoting_are_printed_quoted(config: ps.Config) -> None:
    """SQL copied from the output must run: mixed case, spaces and keywords come quoted, in both forms."""
    async with connect(config) as client:
        listed = await call(client, "list_tables", schema="public", pattern="Mixed")
        described = await call(client, "describe_table", table='"Mixed Case"')
        ran = await call(client, "execute_sql", sql=f"SELECT {described.data['columns'][1].split()[0]} FROM "
                         f"{described.data['table']} LIMIT 1")  # fmt: skip
    assert [t["name"] for t in records(listed.data)] == ['"Mixed Case"'] and '"\\"Mixed Case\\""' in listed.text
    assert described.text.splitlines()[0].startswith('public."Mixed Case"')
    assert [c.split()[0] for c in described.data["columns"]] == ["id", '"Label"']
    assert not ran.is_error, ran.text


async def test_value_profiles_come_from_the_statistics(database_url: str) -> None:
    """What values a column holds, at no table scan: nulls, distinct values, the common ones with their share,
    the range. A table never analyzed says so; MCP_VALUE_PROFILES=false turns profiles off."""
    from conftest import objects

    setup = (
        "CREATE TABLE public.unanalyzed (id int); INSERT INTO public.unanalyzed VALUES (1);"
        "CREATE TABLE public.profiled AS SELECT md5(g::text)::uuid AS u, jsonb_build_object('k', g) AS doc,"
        " repeat('long text ', 4) || g AS long, 'C-' || g AS code, timestamptz '2025-03-01 10:00:00.123456+00'"
        " + g * interval '1 second' AS at FROM generate_series(1, 200) g; ANALYZE public.profiled"
    )
    teardown = "DROP TABLE IF EXISTS public.unanalyzed, public.profiled"
    with objects(database_url, setup, teardown) as url:
        async with connect(ps.Config(conn=url)) as client:
            orders = await call(client, "describe_table", table="shop.orders")
            customers = await call(client, "describe_table", table="shop.customers")
            fresh = await call(client, "describe_table", table="public.unanalyzed")
            profiled = await call(client, "describe_table", table="public.profiled")
        async with connect(ps.Config(conn=url, value_profiles=False)) as client:
            plain = await call(client, "describe_table", table="shop.orders")
    status = next(c for c in orders.data["columns"] if c.startswith("status "))
    assert status.endswith("[values pending 20%, paid 20%, shipped 20%, delivered 20%, cancelled 20%]")
    shipped = next(c for c in orders.data["columns"] if c.startswith("shipped_within "))
    assert "[nulls 40%, " in shipped
    email = next(c for c in customers.data["columns"] if c.startswith("email "))
    assert "[unique, customer" in email  # the range; its ends depend on the collation
    ordered = next(c for c in orders.data["columns"] if c.startswith("ordered_at "))
    assert re.fullmatch(r"ordered_at timestamptz not null \[unique, \d{4}-\d\d-\d\d … \d{4}-\d\d-\d\d\]", ordered)
    # a range only where it says something: not a uuid's or a document's ends, nor long strings cut alike;
    # timestamps within one day keep their time, to the second
    assert profiled.data["columns"][:4] == ["u uuid [unique]", "doc jsonb [unique]", "long text [unique]",
                                            "code text [unique, C-1 … C-99]"]  # fmt: skip
    assert re.fullmatch(r"at timestamptz \[unique, 2025-03-01 10:00:01\+00 … 2025-03-01 10:03:20\+00\]",
                        profiled.data["columns"][4])  # fmt: skip
    assert fresh.data["note"] == "never analyzed: no row estimate or value profiles until ANALYZE public.unanalyzed"
    assert "note: never analyzed" in fresh.text
    assert not any("[" in column for column in plain.data["columns"] if " enum(" not in column)
    assert " enum(pending|paid|shipped|delivered|cancelled)" in plain.text  # no profile: the enum lists its values


async def test_join_paths_between_two_tables(config: ps.Config) -> None:
    """The shortest foreign-key paths, multi-hop and either direction, composite keys whole, ready to paste."""
    async with connect(config) as client:
        far = await call(client, "get_relationships", table="shop.shipments", to="shop.customers")
        near = await call(client, "get_relationships", table="customers", schema="shop", to="shop.orders")
        none = await call(client, "get_relationships", table="hr.departments", to="shop.customers")
        missing = await call(client, "get_relationships", table="shop.orders", to="shop.custmers")
        ran = await call(client, "execute_sql", sql=f"SELECT count(*) {far.data['paths'][0]}")
    assert far.data["paths"] == [
        "FROM shop.shipments JOIN shop.order_items ON shop.shipments.order_id = shop.order_items.order_id AND "
        "shop.shipments.line_no = shop.order_items.line_no JOIN shop.orders ON shop.order_items.order_id = "
        "shop.orders.id JOIN shop.customers ON shop.orders.customer_id = shop.customers.id"
    ]
    joined = "FROM shop.customers JOIN shop.orders ON shop.orders.customer_id = shop.customers.id"
    assert near.data == {"table": "shop.customers", "to": "shop.orders", "paths": [joined]}
    assert none.data["paths"] == [] and "no foreign-key path" in none.text
    assert missing.is_error and "Did you mean: shop.customers" in missing.text
    assert not ran.is_error and ran.data["rows"][0][0] > 0


async def test_an_unknown_column_lists_the_columns_there_are(config: ps.Config) -> None:
    """No close match for PostgreSQL to hint at: the answer lists the columns of the tables the query reads."""
    async with connect(config) as client:
        guessed = await call(client, "execute_sql", sql="SELECT email_address FROM shop.customers")
        close = await call(client, "execute_sql", sql="SELECT c.nme FROM shop.customers c")
    assert guessed.is_error and "ERROR 42703" in guessed.text
    assert "NOTE: columns of shop.customers: id, email, name, country, referred_by, created_at" in guessed.text
    assert "HINT: Perhaps you meant" in close.text and "NOTE: columns of" not in close.text


async def test_search_schema_finds_names_values_and_comments_ranked(config: ps.Config) -> None:
    """One call finds where things are: exact names first, then prefixes, then names holding the word, then
    comments; several words narrow (each in the path or comment, one in the object's own name or comment)."""
    async with connect(config) as client:
        email = await call(client, "search_schema", query="Email")
        customer = await call(client, "search_schema", query="customer")
        both = await call(client, "search_schema", query="customer email")
        shipped = await call(client, "search_schema", query="shipped")
        path = await call(client, "search_schema", query="shop.orders")
        quoted = await call(client, "search_schema", query='"Mixed Case"')
        literal = await call(client, "search_schema", query="ship_%")
        empty = await call(client, "search_schema", query="  ")
    assert email.data == {"total": 2, "truncated": False, "columns": ["kind", "name", "detail"],
                          "rows": [["column", "hr.employees.email", "text"],
                                   ["column", "shop.customers.email", "text"]]}  # fmt: skip
    assert email.text.splitlines()[:2] == ["2 matches for 'Email'", '["kind","name","detail"]']
    found = [(kind, name) for kind, name, _ in customer.data["rows"]]
    assert found[0] == ("table", "shop.customers")  # a prefix of its name
    assert found[-2:] == [("schema", "shop"), ("column", "shop.customers.referred_by")]  # comments only, last
    assert ("column", "shop.orders.customer_id") in found
    assert both.data["rows"] == [["column", "shop.customers.email", "text"]]
    assert shipped.data["rows"][0][:2] == ["enum value", "shop.order_status"]
    assert shipped.data["rows"][0][2].startswith("'shipped' (used by ") and "shop.orders.status" in shipped.text
    assert path.data["rows"][0] == ["table", "shop.orders", None] and path.data["total"] == 7
    assert quoted.data["rows"] == [["table", 'public."Mixed Case"', None]]
    assert literal.data["total"] == 0 and "try a shorter word" in literal.text  # % and _ match themselves
    assert empty.is_error and "query is empty" in empty.text


async def test_search_schema_is_capped_and_kept_to_the_exposed_schemas(database_url: str) -> None:
    async with connect(ps.Config(conn=database_url)) as client:
        many = await call(client, "search_schema", query="t0")
    async with connect(ps.Config(conn=database_url, schemas=("shop",))) as client:
        shop_only = await call(client, "search_schema", query="email")
        used = await call(client, "search_schema", query="shipped")
    assert many.data["truncated"] is True and many.data["total"] == 99 and len(many.data["rows"]) == ps.SEARCH_RESULTS
    assert "99 matches for 't0'; the first 40 shown: add a word to narrow" in many.text
    assert shop_only.data["rows"] == [["column", "shop.customers.email", "text"]]
    assert used.data["rows"][0][2] == "'shipped' (used by shop.orders.status)"  # public.types_zoo is not shown


async def test_an_unknown_function_suggests_what_there_is(config: ps.Config) -> None:
    """42883: the signatures the name has, PostgreSQL's word for another dialect's function, or the closest
    names; never a function the caller may not run."""
    async with connect(config) as client:
        cast = await call(client, "execute_sql", sql="SELECT round(1.5::float8, 2)")
        dialect = await call(client, "execute_sql", sql="SELECT datediff('day', now(), now())")
        typo = await call(client, "execute_sql", sql="SELECT lenght('x')")
        denied = await call(client, "execute_sql", sql="SELECT pg_terminate_backen(1)")
        nothing = await call(client, "execute_sql", sql="SELECT zzz_no_such_thing(1)")
    assert "ERROR 42883" in cast.text
    assert "NOTE: round takes: round(double precision), round(numeric), round(numeric, integer); cast" in cast.text
    assert "NOTE: datediff is another SQL dialect's; in PostgreSQL: subtract: date - date gives days" in dialect.text
    assert "NOTE: Did you mean: length?" in typo.text
    assert "ERROR 42883" in denied.text and "NOTE" not in denied.text  # pg_terminate_backend is refused: not offered
    assert "ERROR 42883" in nothing.text and "NOTE" not in nothing.text


async def test_a_function_whose_body_the_gate_refuses_is_never_suggested(database_url: str) -> None:
    """The hint judges a function as the gate judges a call of it: by what its body runs too."""
    from conftest import objects

    body = ("CREATE FUNCTION public.settings_of(text) RETURNS text LANGUAGE sql IMMUTABLE "  # a lie the body tells
            "AS $$ SELECT set_config($1, 'x', true) $$")  # fmt: skip
    plain = "CREATE FUNCTION public.settings_in(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$"
    teardown = "DROP FUNCTION IF EXISTS public.settings_of(text), public.settings_in(text)"
    with objects(database_url, f"{body}; {plain}", teardown):
        async with connect(ps.Config(conn=database_url)) as client:
            typo = await call(client, "execute_sql", sql="SELECT settings_off('a')")
            direct = await call(client, "execute_sql", sql="SELECT settings_of('a')")
    assert "ERROR 42883" in typo.text and typo.text.endswith("NOTE: Did you mean: settings_in?")
    assert direct.is_error and "refused" in direct.text  # what the hint would have offered


async def test_catalog_texts_and_answers_stay_bounded(database_url: str) -> None:
    """A comment is cut at 1,000 characters, an enum lists its first 100 labels and says how many more, a search
    takes at most 8 words, and a structured answer is cut to MCP_MAX_RESPONSE_BYTES like its text (120 tables'
    rows do not fit in 1,000 bytes)."""
    from conftest import admin, objects

    labels = ", ".join(f"'v{i:03}'" for i in range(150))
    setup = (f"CREATE TYPE public.many AS ENUM ({labels}); CREATE TABLE public.chatty (id int, m public.many);"
             f"COMMENT ON COLUMN public.chatty.id IS '{'blah ' * 1000}'")  # fmt: skip
    teardown = "DROP TABLE IF EXISTS public.chatty, public.parted; DROP TYPE IF EXISTS public.many"
    with objects(database_url, setup, teardown) as url:
        async with connect(ps.Config(conn=url)) as client:
            described = await call(client, "describe_table", table="public.chatty")
            found = await call(client, "search_schema", query="blah")
            enums = await call(client, "list_enums", schema="public")
            wordy = await call(client, "search_schema", query="a b c d e f g h i")
            in_list = ", ".join(str(i) for i in range(700))  # one long text, not a list: cut in half until it fits
            admin(url, "CREATE TABLE public.parted (k int) PARTITION BY LIST (k); CREATE TABLE public.parted_a "
                       f"PARTITION OF public.parted FOR VALUES IN ({in_list})")  # fmt: skip
        async with connect(ps.Config(conn=url, max_response_bytes=1_000)) as client:
            capped = await call(client, "list_tables", schema="wide")
            bound = await call(client, "describe_table", table="public.parted_a")
    column = described.data["columns"][0]
    assert column.endswith("…[+4000 chars]") and len(column) < 1_100
    assert found.data["rows"][0][2].endswith("…[+4000 chars]")
    many = next(e for e in enums.data["enums"] if e.startswith("public.many:"))
    assert "|v099|… 50 more" in many and "v100" not in many
    assert " enum(v000|v001|" in described.data["columns"][1] and described.data["columns"][1].count("|") == 100
    assert wordy.is_error and "at most 8 words" in wordy.text
    assert capped.data["rows"][-1][0].startswith("… ") and capped.data["rows"][-1][0].endswith(
        "more cut at MCP_MAX_RESPONSE_BYTES"
    )
    assert len(json.dumps(capped.data, ensure_ascii=False, separators=(",", ":")).encode()) <= 1_000
    assert not bound.is_error and bound.data["partition_of"].startswith("public.parted FOR VALUES IN (0, 1, ")
    assert len(json.dumps(bound.data, ensure_ascii=False, separators=(",", ":")).encode()) <= 1_000


async def test_review_findings_on_names_profiles_and_indexes(database_url: str, reader_url: str) -> None:
    """A function in a schema the caller has no USAGE on is never suggested; an enum's list stays when its
    profile names only labels that other labels contain; a unique index a foreign key uses is still listed;
    names are folded in the database's collation on both sides; a 42883 on an odd name keeps PostgreSQL's
    message; a partitioned table's size is never negative; an unquoted name prefers PostgreSQL's folding."""
    from conftest import admin, objects

    setup = """
        CREATE SCHEMA secretns; CREATE FUNCTION secretns.emailify(int) RETURNS text LANGUAGE sql IMMUTABLE
            AS 'SELECT $1::text';
        CREATE TYPE public.paystate AS ENUM ('paid', 'unpaid', 'active', 'inactive');
        CREATE TABLE public.payments (state public.paystate);
        INSERT INTO public.payments SELECT (ARRAY['unpaid', 'inactive'])[1 + g % 2]::public.paystate
            FROM generate_series(1, 100) g;
        ANALYZE public.payments;
        CREATE TABLE public.uq (id int PRIMARY KEY, code int, other int);
        CREATE UNIQUE INDEX uq_code ON public.uq (code);
        ALTER TABLE public.uq ADD FOREIGN KEY (other) REFERENCES public.uq (code);
        CREATE TABLE public."ÄNDERUNG" (id int);
        CREATE TABLE public.camelt (id int); CREATE TABLE public."CamelT" (id int);
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO mcp_test_reader;
    """
    teardown = ("DROP SCHEMA IF EXISTS secretns CASCADE; DROP TABLE IF EXISTS public.payments, public.uq, "
                'public."ÄNDERUNG", public.camelt, public."CamelT"; DROP TYPE IF EXISTS public.paystate')  # fmt: skip
    with objects(database_url, setup, teardown):
        admin(database_url, "ANALYZE analytics.events")
        async with connect(ps.Config(conn=reader_url)) as client:
            exact = await call(client, "execute_sql", sql="SELECT emailify(1)")
            close = await call(client, "execute_sql", sql="SELECT emailifx(1)")
            odd = await call(client, "execute_sql", sql='SELECT """x"(1)')
            payments = await call(client, "describe_table", table="public.payments")
            uq = await call(client, "describe_table", table="public.uq")
            umlaut = await call(client, "search_schema", query="ÄNDERUNG")
            analytics = await call(client, "list_tables", schema="analytics")
            folded = await call(client, "describe_table", table="CAMELT")
    assert "ERROR 42883" in exact.text and "secretns" not in exact.text and "NOTE" not in exact.text
    assert "emailify" not in close.text
    assert "ERROR 42883" in odd.text and "unbalanced" not in odd.text
    assert payments.data["columns"] == [
        "state paystate enum(paid|unpaid|active|inactive) [values unpaid 50%, inactive 50%]"
    ]
    assert uq.data["indexes"] == ["uq_code: unique (code)"]
    assert [row[1] for row in umlaut.data["rows"]] == ['public."ÄNDERUNG"']
    sizes = {row[0]: row[3] for row in analytics.data["rows"]}
    assert re.fullmatch(SIZE, sizes["events"]), sizes  # its partitions' size, never negative
    assert folded.data["table"] == "public.camelt"  # as PostgreSQL folds CAMELT, though "CamelT" matches too


def test_search_reads_column_comments_once(database_url: str) -> None:
    """The column-comment filter is one scan of pg_description, not one per column (a reference to the outer
    query there made a search of 2,000 commented columns take 16 s instead of 0.1 s)."""
    params = [None, None, *ps.search_params("status"), ps.SEARCH_RESULTS]  # every schema, every table
    with psycopg.connect(database_url, autocommit=True) as conn:
        raw = psycopg.RawCursor(conn)
        raw.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + ps.SEARCH_SCHEMA_SQL, params)
        (plan,) = raw.fetchone() or (None,)

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(found for child in node.get("Plans", []) for found in nodes(child))]

    scans = [n for n in nodes(plan[0]["Plan"]) if n.get("Alias") == "cd"]
    assert scans and all(n["Actual Loops"] == 1 for n in scans), scans
