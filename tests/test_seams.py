"""The seams: where postgres_server leans on what its libraries do not promise (the module's Seams section).

Each test fails with the seam's name when an upgrade of psycopg, the MCP SDK, uvicorn or sse-starlette moves it,
so the break shows here and not as a wrong answer somewhere else.
"""

from __future__ import annotations

import inspect
from typing import Any

import psycopg
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

import postgres_server as ps

pytestmark = pytest.mark.anyio


def seam(condition: object, name: str) -> None:
    assert condition, f"SEAM MOVED: {name} (see the Seams section of postgres_server.py)"


def raw_result(url: str, sql: str) -> Any:
    """A libpq result as the pipeline reads it: no psycopg cursor in between."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.pgconn.exec_(sql.encode())


def test_error_from_result_gives_the_sqlstate_class_and_diagnostics(database_url: str) -> None:
    result = raw_result(database_url, "SELECT 1/0")
    error = ps.error_from_result(result, "utf-8")
    seam(isinstance(error, psycopg.errors.DivisionByZero), "psycopg.errors.error_from_result")
    seam(error.sqlstate == "22012" and error.diag.message_primary == "division by zero", "error_from_result diag")


async def test_row_loader_loads_raw_results_with_the_connections_loaders(database_url: str) -> None:
    conn = await ps.ReadConnection.connect(database_url, autocommit=True, context=ps.ADAPTERS)
    try:
        result = conn.pgconn.exec_(b"SELECT 1::int4, 2.50::numeric, '2024-01-02 03:04:05+00'::timestamptz, NULL")
        rows = ps.RowLoader(conn).rows(result, result.ntuples)
    finally:
        await conn.close()
    seam(rows == [(1, "2.50", rows[0][2], None)], "psycopg.adapt.Transformer.load_rows")
    seam(str(rows[0][2]).startswith("2024-01-02T03:04:05"), "Transformer uses the connection's loaders (ADAPTERS)")


def test_type_display_names_built_in_types_with_their_modifiers() -> None:
    types = psycopg.postgres.types
    numeric, int4, varchar = types["numeric"], types["int4"], types["varchar"]
    seam(ps.type_display(numeric, numeric.oid, (10 << 16 | 2) + 4) == "numeric(10,2)", "TypeInfo.get_type_display")
    seam(ps.type_display(int4, int4.array_oid, -1) == "int4[]", "TypeInfo.get_type_display (arrays)")
    seam(ps.type_display(varchar, varchar.oid, 20) == "varchar(16)", "TypeInfo.get_type_display (typmod)")


def test_lowlevel_server_is_what_run_stdio_async_runs() -> None:
    server = ps.build_server(ps.Config())
    lowlevel = ps.lowlevel_server(server)
    seam(callable(getattr(lowlevel, "run", None)), "MCPServer._lowlevel_server.run")
    seam(callable(getattr(lowlevel, "create_initialization_options", None)), "create_initialization_options")
    seam("_lowlevel_server" in inspect.getsource(type(server).run_stdio_async), "MCPServer.run_stdio_async")


class Shape(BaseModel):
    value: int


def mismatched_tool() -> Tool:
    """A tool declared to return Shape whose result does not match it (value is not an int), as ours answer: a
    CallToolResult. Its published schema is open, so only the SDK's own validation can refuse it (the test client
    validates results against the published schema too)."""

    async def mismatched() -> Shape:
        content = [TextContent(type="text", text="one")]
        return CallToolResult(content=content, structured_content={"value": "one"})  # type: ignore[return-value]

    tool = Tool.from_function(mismatched)
    tool.output_schema = {"type": "object"}
    return tool


async def served(tool: Tool) -> CallToolResult:
    """`tool` called once through a real MCPServer and the real client, in memory."""
    async with Client(MCPServer(tools=[tool]), mode="legacy") as client:
        return await client.call_tool(tool.name, {})


async def test_skip_output_validation_switches_off_the_sdks_result_validation() -> None:
    validated, skipped = mismatched_tool(), mismatched_tool()
    seam(skipped.fn_metadata.output_model is not None, "Tool.fn_metadata.output_model (set for a typed result)")
    ps.skip_output_validation(skipped)
    seam(skipped.fn_metadata.output_model is None, "Tool.fn_metadata.output_model is writable")
    refused, passed = await served(validated), await served(skipped)
    seam(refused.is_error, "the SDK validates a tool's result against Tool.fn_metadata.output_model")
    seam(not passed.is_error and passed.structured_content == {"value": "one"},
         "without Tool.fn_metadata.output_model the SDK passes the result through")  # fmt: skip
    published = ps.published_tool(ps.TOOLS["execute_sql"])
    seam(published.output_schema is not None, "the output schema stays published")


async def test_published_tools_still_answer_call_tool_results(config: ps.Config) -> None:
    """With validation off, the SDK must still pass our CallToolResult through as it is."""
    from conftest import connect

    async with connect(config) as client:
        result = await client.call_tool("execute_sql", {"sql": "SELECT 1 AS one"})
    seam(isinstance(result, CallToolResult) and result.structured_content, "CallToolResult passes through")


@pytest.mark.parametrize("method", ["connection_made", "on_message_begin", "on_headers_complete", "connection_lost"])
def test_header_deadline_overrides_uvicorns_http_protocol(method: str) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    seam(callable(getattr(HttpToolsProtocol, method, None)), f"uvicorn HttpToolsProtocol.{method}")


def test_sse_starlette_lets_streams_outlive_sigterm() -> None:
    from sse_starlette.sse import AppStatus

    seam(callable(getattr(AppStatus, "disable_automatic_graceful_drain", None)), "AppStatus.disable_…_drain")
    seam(hasattr(AppStatus, "should_exit"), "AppStatus.should_exit")
