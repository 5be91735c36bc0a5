"""Per-principal permissions: roles from a YAML file decide what each caller sees and queries, and a role's
postgres_role makes Postgres itself enforce grants (SET LOCAL ROLE inside the read-only transaction)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SLOW_SQL, call, connect, objects, permissions_file, ps

pytestmark = pytest.mark.anyio

ANALYST = {"schemas": ["shop"], "tables": ["shop.orders", "shop.customers"], "max_rows": 5}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"roles": {"a": {"tools": ["drop_everything"]}}}, "unknown tools ['drop_everything']"),
        ({"roles": {"a": {"colour": "red"}}}, "role 'a' has unknown fields ['colour']"),
        ({"roles": {"a": {"tables": ["orders"]}}}, "tables are 'schema.table' globs"),
        ({"roles": {"a": {"max_rows": 0}}}, "max_rows must be a positive integer"),
        ({"roles": {"a": {}}, "principals": [{"match": {"sub": "x"}, "role": "b"}]}, "names role 'b'"),
        ({"roles": {"a": {}}, "principals": [{"match": {"nickname": "x"}, "role": "a"}]}, "match needs one or more"),
        ({"roles": {"a": {}}, "default_role": "b"}, "default_role 'b' is neither 'deny' nor a defined role"),
        ({"role": {}}, "expected a mapping with 'roles'"),
        ({"roles": {"a": {}}, "principal": []}, "the file has unknown fields ['principal']"),
        ({"roles": {"a": {"max_rows": True}}}, "role 'a': max_rows must be a positive integer"),
        ({"roles": {"a": ["shop"]}}, "role 'a' must be a mapping of max_rows, postgres_role, schemas"),
        ({"roles": {"a": {}}, "principals": {"sub": "x"}}, "principals must be a list of entries with match and role"),
        ({"roles": {"a": {}}, "principals": [{"match": {"sub": "x"}}]}, "principals[0]: role must be the name of a"),
        ({"roles": {"a": {}}, "principals": [{"match": {"sub": None}, "role": "a"}]}, "match sub has no value"),
        (
            {"roles": {"a": {}}, "principals": [{"match": {"client_id": "c1", "email": None}, "role": "a"}]},
            "principals[0]: match email has no value: give the value to match, or leave it out",
        ),
        ({"roles": {"a": {}}, "principals": [{"match": {"sub": 7}, "role": "a"}]}, "principals[0]: match needs"),
    ],
)
def test_every_mistake_in_the_file_stops_the_start(tmp_path: Path, document: dict[str, Any], message: str) -> None:
    path = permissions_file(tmp_path, document)
    with pytest.raises(ps.ConfigError) as refused:
        ps.load_config(["--permissions-file", path], environ={})
    assert message in str(refused.value) and path in str(refused.value) and "\n" not in str(refused.value)


def test_the_example_file_is_valid() -> None:
    ps.load_permissions.cache_clear()
    example = ps.load_permissions(str(Path(__file__).parent.parent / "permissions.yaml"))
    assert set(example.roles) == {"analyst", "viewer"} and example.default_role is None


async def test_a_role_limits_schemas_tables_rows_and_relations(database_url: str, tmp_path: Path) -> None:
    """On stdio (no token) the default role applies."""
    path = permissions_file(tmp_path, {"roles": {"analyst": ANALYST}, "default_role": "analyst"})
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        schemas = await call(client, "list_schemas")
        tables = await call(client, "list_tables", schema="shop")
        hidden = await call(client, "describe_table", table="shop.order_items")
        customers = await call(client, "describe_table", table="shop.customers")
        other_schema = await call(client, "list_tables", schema="hr")
        rows = await call(client, "execute_sql", sql="SELECT id FROM shop.orders ORDER BY id")
        too_many = await call(client, "execute_sql", sql="SELECT 1", max_rows=6)
        outside = await call(client, "execute_sql", sql="SELECT * FROM shop.orders o JOIN hr.employees e ON true")
        unqualified = await call(client, "execute_sql", sql="SELECT * FROM orders")
        cte = await call(client, "execute_sql", sql="WITH o AS (SELECT * FROM shop.orders) SELECT count(*) FROM o")
        catalog = await call(client, "execute_sql", sql="SELECT count(*) > 0 FROM pg_catalog.pg_class")
        relationships = await call(client, "get_relationships", table="shop.customers")
        enums = await call(client, "list_enums")
        searched = await call(client, "search_schema", query="id")
        shipped = await call(client, "search_schema", query="shipped")
    columns_of = {name.rsplit(".", 1)[0] for kind, name, _ in searched.data["rows"] if kind == "column"}
    assert columns_of == {"shop.customers", "shop.orders"}  # not order_items, products, hr.employees, …
    assert shipped.data["rows"] == [["enum value", "shop.order_status", "'shipped' (used by shop.orders.status)"],
                                    ["column", "shop.orders.shipped_within", "interval"]]  # fmt: skip
    assert enums.data["enums"] == ["shop.order_status: pending|paid|shipped|delivered|cancelled  (used by "
                                   "shop.orders.status)"]  # fmt: skip
    assert [row[0] for row in schemas.data["rows"]] == ["shop"]
    assert [row[0] for row in tables.data["rows"]] == ["customers", "orders"] and tables.data["total"] == 2
    assert hidden.is_error and "not found" in hidden.text and "order_items" not in hidden.text.split("Did you")[-1]
    assert {fk.split("(")[0] for fk in customers.data["referenced_by"]} == {"shop.customers", "shop.orders"}
    assert other_schema.is_error
    assert rows.data["row_count"] == 5 and rows.data["truncated"] is True
    assert not too_many.is_error and "above the ceiling, 5 (POSTGRES_MAX_ROWS, or your role's)" in too_many.text
    assert outside.is_error and "hr.employees is outside what role 'analyst' may read" in outside.text
    assert unqualified.is_error and "qualify 'orders' with its schema (for example shop.orders)" in unqualified.text
    assert cte.data["rows"] == [[2000]] and catalog.data["rows"] == [[True]]
    assert {fk.split("(")[0] for fk in relationships.data["incoming"]} == {"shop.customers", "shop.orders"}


async def test_unmapped_callers_are_denied_by_default(database_url: str, tmp_path: Path) -> None:
    path = permissions_file(tmp_path, {"roles": {"analyst": ANALYST}})
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        for tool, args in [("list_schemas", {}), ("execute_sql", {"sql": "SELECT 1"})]:
            result = await call(client, tool, **args)
            assert result.is_error and "permission denied: no role in MCP_PERMISSIONS_FILE grants" in result.text


async def test_a_role_limits_tools(database_url: str, tmp_path: Path) -> None:
    path = permissions_file(tmp_path, {"roles": {"browse": {"tools": ["list_schemas", "list_tables"]}},
                                       "default_role": "browse"})  # fmt: skip
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        allowed = await call(client, "list_schemas")
        refused = await call(client, "execute_sql", sql="SELECT 1")
    assert not allowed.is_error
    assert refused.is_error and "role 'browse' may not use execute_sql" in refused.text


async def test_postgres_role_makes_postgres_enforce_grants(database_url: str, tmp_path: Path) -> None:
    limited = {"schemas": ["shop"], "postgres_role": "mcp_test_limited"}
    path = permissions_file(tmp_path, {"roles": {"limited": limited}, "default_role": "limited"})
    config = ps.Config(conn=database_url, permissions_file=path, pool_min=1, pool_max=1)
    async with connect(config) as client:
        who = await call(client, "execute_sql", sql="SELECT current_user, current_setting('search_path')")
        granted = await call(client, "execute_sql", sql="SELECT count(*) FROM orders")  # search_path: shop
        not_granted = await call(client, "execute_sql", sql="SELECT count(*) FROM shop.customers")
    assert who.data["rows"] == [["mcp_test_limited", '"shop"']]
    assert granted.data["rows"] == [[2000]]
    assert not_granted.is_error and "ERROR 42501" in not_granted.text  # Postgres said no, not the gate
    async with connect(ps.Config(conn=database_url, pool_min=1, pool_max=1)) as client:  # no role leaks
        after = await call(client, "execute_sql", sql="SELECT current_user")
    assert after.data["rows"] == [["pg_read_all_data"]]  # the server-wide privilege drop, not the role's


async def test_principals_map_to_roles_over_http(database_url: str, tmp_path: Path) -> None:
    """JWT subjects and the static token each get their own role; an unmapped subject is denied."""
    from test_oauth import Provider, oauth_config, served

    path = permissions_file(tmp_path, {
        "roles": {"analyst": ANALYST, "hr": {"schemas": ["hr"]}},
        "principals": [{"match": {"sub": "alice"}, "role": "analyst"}, {"match": {"static_token": True}, "role": "hr"}],
    })  # fmt: skip
    provider = Provider()
    config = oauth_config(conn=database_url, permissions_file=path, api_token="static-tok", stateless=True)
    sql = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
           "params": {"name": "list_schemas", "arguments": {}}}  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}  # fmt: skip
    seen = {}
    async with served(provider, config) as http:
        for who, token in [("alice", provider.mint(sub="alice")), ("bob", provider.mint(sub="bob")),
                           ("static", "static-tok")]:  # fmt: skip
            response = await http.post("/mcp", json=sql, headers={**headers, "Authorization": f"Bearer {token}"})
            seen[who] = response.json()["result"]
    assert [row[0] for row in seen["alice"]["structuredContent"]["rows"]] == ["shop"]
    assert [row[0] for row in seen["static"]["structuredContent"]["rows"]] == ["hr"]
    assert seen["bob"]["isError"] and "permission denied" in seen["bob"]["content"][0]["text"]


LEAK_SETUP = """
CREATE SCHEMA IF NOT EXISTS "shop.internal";
CREATE TABLE IF NOT EXISTS "shop.internal".secrets (v text);
INSERT INTO "shop.internal".secrets VALUES ('dotted-secret');
CREATE OR REPLACE FUNCTION hr.top_salary() RETURNS numeric LANGUAGE sql STABLE AS
$$ SELECT max(salary) FROM hr.employees $$;
"""
LEAK_TEARDOWN = 'DROP SCHEMA IF EXISTS "shop.internal" CASCADE; DROP FUNCTION IF EXISTS hr.top_salary();'


@pytest.fixture
def leak_routes(database_url: str) -> Iterator[str]:
    with objects(database_url, LEAK_SETUP, LEAK_TEARDOWN) as url:
        yield url


# Routes to other tables' values for a role limited to shop.orders (without postgres_role): each refused.
LEAK_ROUTES = [
    ("SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'employees'", "pg_stats shows values"),
    ("SELECT * FROM pg_catalog.pg_stats_ext", "pg_stats_ext shows values"),
    ("SELECT stavalues1::text FROM pg_statistic", "pg_statistic shows values"),
    ("SELECT query FROM pg_stat_activity", "pg_stat_activity shows values"),
    ("SELECT last_value FROM pg_sequences", "pg_sequences shows values"),
    ("SELECT pg_stat_get_backend_activity(1)", "pg_stat_get_backend_activity() refused"),
    ("SELECT hr.top_salary()", "top_salary() refused: it lives in schema hr"),
    ('SELECT v FROM "shop.internal".secrets', "is outside what role 'analyst' may read"),
    ("SELECT * FROM customers, (WITH customers AS (SELECT 1) SELECT 1) x", "qualify 'customers'"),
    ("WITH a AS (SELECT * FROM customers), customers AS (SELECT 1) SELECT * FROM a", "qualify 'customers'"),
    ("SELECT query_to_xml('select * from hr.employees', true, true, '')", "query_to_xml() refused"),
    ("SELECT ('select salary from hr.employees'::text).query_to_xml", "query_to_xml() refused"),
    ("SELECT current_setting('app.jwt_secret')", "refused"),
    ("SELECT CAST((SELECT email FROM hr.employees LIMIT 1) AS int)", "hr.employees is outside"),
    ("SELECT 1 FROM shop.orders WHERE id = (SELECT salary::text::int FROM employees LIMIT 1)", "qualify 'employees'"),
]


async def test_a_restricted_role_cannot_read_around_its_tables(
    database_url: str, tmp_path: Path, leak_routes: Any
) -> None:
    path = permissions_file(tmp_path, {"roles": {"analyst": {**ANALYST, "tables": ["shop.orders", "shop.*"],
                                                             "statement_timeout_ms": 200}},
                                       "default_role": "analyst"})  # fmt: skip
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        for sql, words in LEAK_ROUTES:
            result = await call(client, "execute_sql", sql=sql)
            assert result.is_error and words in result.text, (sql, result.text)
            assert "dotted-secret" not in result.text
        scoped_cte = await call(client, "execute_sql", sql="WITH customers AS (SELECT 1 AS n) SELECT n FROM customers")
        slow = await call(client, "execute_sql", sql=SLOW_SQL)
    assert scoped_cte.data["rows"] == [[1]]
    assert "statement_timeout (200 ms, statement_timeout_ms of role 'analyst')" in slow.text


async def test_introspection_never_names_a_hidden_table(database_url: str, tmp_path: Path) -> None:
    path = permissions_file(tmp_path, {"roles": {"orders_only": {"schemas": ["shop"], "tables": ["shop.orders"]}},
                                       "default_role": "orders_only"})  # fmt: skip
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        described = await call(client, "describe_table", table="shop.orders")
        related = await call(client, "get_relationships", table="shop.orders")
    for result in (described, related):
        assert not result.is_error and "customers" not in result.text and "order_items" not in result.text
        assert "customers" not in str(result.data)


def test_table_globs_match_schema_and_table_separately() -> None:
    role = ps.Role("r", tables=(ps.split_table_glob("shop.*"), ps.split_table_glob('"shop.internal".t')))
    assert role.sees_table("shop", "orders") and role.sees_table("shop.internal", "t")
    assert not role.sees_table("shop.internal", "secrets")
    with pytest.raises(ValueError):
        ps.split_table_glob("orders")


async def test_a_role_with_postgres_role_reads_statistics_filtered_by_postgres(
    database_url: str, tmp_path: Path
) -> None:
    limited = {"schemas": ["shop"], "postgres_role": "mcp_test_limited"}
    path = permissions_file(tmp_path, {"roles": {"limited": limited}, "default_role": "limited"})
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        stats = await call(client, "execute_sql", sql="SELECT DISTINCT tablename FROM pg_stats WHERE schemaname "
                           "IN ('shop', 'hr', 'public') ORDER BY 1")  # fmt: skip
    assert stats.data["rows"] == [["orders"]]  # only what mcp_test_limited may SELECT


async def test_join_paths_only_cross_tables_the_role_sees(database_url: str, tmp_path: Path) -> None:
    """A path through a hidden table is no path, and a hidden target is not found."""
    path = permissions_file(tmp_path, {"roles": {"analyst": ANALYST}, "default_role": "analyst"})
    async with connect(ps.Config(conn=database_url, permissions_file=path)) as client:
        visible = await call(client, "get_relationships", table="shop.orders", to="shop.customers")
        hidden = await call(client, "get_relationships", table="shop.orders", to="shop.order_items")
    assert visible.data["paths"] == ["FROM shop.orders JOIN shop.customers ON shop.orders.customer_id = "
                                     "shop.customers.id"]  # fmt: skip
    assert hidden.is_error and "not found" in hidden.text and "order_items" not in hidden.text.split("found")[1]
