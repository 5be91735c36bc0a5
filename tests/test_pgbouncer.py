"""Through PgBouncer in transaction-pooling mode: every tool works, read-only holds, nothing relies on a session.

Debian's pgbouncer package (CI installs it). Without it the test is skipped locally, but fails under CI.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import TOOL_CALLS, active_queries, call, cancel_midway, connect, pgbouncer, ps

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pgbouncer_url(database_url: str) -> Iterator[str]:
    with pgbouncer(database_url) as url:
        yield url


async def test_every_tool_through_pgbouncer_transaction_pooling(pgbouncer_url: str) -> None:
    assert set(TOOL_CALLS) == set(ps.TOOL_NAMES)
    config = ps.Config(conn=pgbouncer_url, pool_min=2, pool_max=4)
    async with connect(config) as client:
        for _ in range(10):  # many transactions, landing on whichever server connection PgBouncer picks
            results = {tool: await call(client, tool, **args) for tool, args in TOOL_CALLS.items()}
            assert not [(tool, result.text) for tool, result in results.items() if result.is_error]
            assert results["execute_sql"].data["rows"] == [[42]]
        read_only = await call(client, "execute_sql", sql="SELECT current_setting('transaction_read_only')")
        write = await call(client, "execute_sql", sql="SELECT public.sneaky()")
        timeout = await call(client, "execute_sql", sql="SHOW statement_timeout")
    assert read_only.data["rows"] == [["on"]]
    assert "ERROR 25006" in write.text
    assert timeout.data["rows"] == [["30s"]]  # SET LOCAL travels with each transaction


async def test_cancellation_through_pgbouncer(pgbouncer_url: str, database_url: str) -> None:
    """PgBouncer forwards the cancel request to the backend running the query."""
    from psycopg.conninfo import make_conninfo

    marker = "pgbouncer_cancel_me"
    config = ps.Config(conn=make_conninfo(pgbouncer_url, application_name=marker), pool_min=1, pool_max=1)
    async with connect(config) as client:
        assert await cancel_midway(client, lambda: active_queries(database_url, marker) == 1)
        after = await call(client, "execute_sql", sql="SELECT 1")
    assert after.data["rows"] == [[1]]
