"""Through PgBouncer in transaction-pooling mode: every tool works, read-only holds, nothing relies on a session.

Debian's pgbouncer package (CI installs it). Without it the test is skipped locally, but fails under CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import active_queries, call, cancel_midway, connect, free_port, ps
from psycopg.conninfo import conninfo_to_dict, make_conninfo

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def pgbouncer_url(database_url: str) -> Iterator[str]:
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed: .ci/run installs Debian's pgbouncer package")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer); CI runs this test")
    target = conninfo_to_dict(database_url)
    workdir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    port = free_port()
    server = " ".join(f"{key}={value}" for key, value in target.items() if key in ("host", "port", "dbname", "user",
                                                                                    "password"))  # fmt: skip
    (workdir / "users.txt").write_text(f'"{target.get("user", "postgres")}" ""\n')
    (workdir / "pgbouncer.ini").write_text(f"""
[databases]
mcp = {server}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir}/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
""")
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the owner of the server's socket directory (who can
        # reach the socket), or as nobody for a TCP server, and give that user its files.
        import pwd

        host = str(target.get("host") or "")
        user = pwd.getpwuid(Path(host).stat().st_uid) if host.startswith("/") else pwd.getpwnam("nobody")
        if user.pw_uid == 0:
            user = pwd.getpwnam("nobody")
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", user.pw_name, "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            break
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited: {process.stderr.read().decode() if process.stderr else ''}")
        time.sleep(0.05)
    try:
        yield make_conninfo(host="127.0.0.1", port=str(port), dbname="mcp", user=target.get("user", "postgres"))
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


async def test_every_tool_through_pgbouncer_transaction_pooling(
    pgbouncer_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = ps.Config(conn=pgbouncer_url, pool_min=2, pool_max=4)
    async with connect(config) as client:
        for _ in range(10):  # many transactions, landing on whichever server connection PgBouncer picks
            for tool, args in [("list_schemas", {}), ("list_tables", {"schema": "shop"}),
                               ("describe_table", {"table": "shop.orders"}),
                               ("get_relationships", {"table": "shop.customers"}), ("list_enums", {}),
                               ("execute_sql", {"sql": "SELECT count(*) FROM shop.orders WHERE id > $1",
                                                "params": [10]})]:  # fmt: skip
                result = await call(client, tool, **args)
                assert not result.is_error, (tool, result.text)
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
