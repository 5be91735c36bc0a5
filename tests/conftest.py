"""Shared fixtures: a real PostgreSQL for every database test.

With TEST_DATABASE_URL set (a superuser connection), tests use that server; otherwise an embedded
PostgreSQL (pgserver) starts in a temporary directory. Either way a fresh database is created for the
session, seeded with the demo schema plus fixtures for the adversarial tests, and dropped afterwards.
The server under test connects as a superuser on purpose: the threat model assumes a misconfigured role.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp import Client  # noqa: E402

import postgres_server as ps  # noqa: E402

READER_ROLE = "mcp_test_reader"

FIXTURES_SQL = f"""
CREATE TABLE public.victim (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO public.victim VALUES (1, 'one'), (2, 'two'), (3, 'three');
CREATE SEQUENCE public.counter_seq;
CREATE TABLE public.orders (id int PRIMARY KEY, note text);
CREATE TABLE public."Mixed Case" (id int PRIMARY KEY, "Label" text);
CREATE TABLE public.big_cells (id int PRIMARY KEY, body text, doc jsonb, nums int[], raw bytea);
INSERT INTO public.big_cells
SELECT 1, repeat('x', 1000000), jsonb_build_object('k', repeat('y', 100000)), array(SELECT generate_series(1, 50000)),
       decode(repeat('ff', 10), 'hex');
CREATE TABLE public.types_zoo (
    i2 smallint, i8 bigint, n numeric, f4 real, f8 double precision, b boolean, t text, vc varchar(5), c char(3),
    d date, ts timestamp, tstz timestamptz, tm time, iv interval, u uuid, ip inet, cidr_ cidr, mac macaddr,
    m money, j json, jb jsonb, arr_i int[], arr_t text[], arr_2d int[][], rng int4range, trng tstzrange,
    by bytea, bits bit(4), pt point, e shop.order_status, e_arr shop.order_status[], tsv tsvector,
    oid_ oid
);
INSERT INTO public.types_zoo VALUES (
    -32768, 9223372036854775807, 12345678901234567890.123456789, 'Infinity', 'NaN', true, 'héllo "quoted"\n',
    'abc', 'ab', 'infinity', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+02', '23:59:59',
    '1 year 2 months 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8',
    '08:00:2b:01:02:03', 12.34, '{{"a": [1, 2.5, null]}}', '{{"b": {{"c": true}}}}', '{{1,NULL,3}}', '{{"a,b",NULL}}',
    '{{{{1,2}},{{3,4}}}}', '[1,10)', '[2024-01-01,2024-12-31)', '\\x00ff10', B'1010', '(1,2)', 'paid',
    '{{pending,shipped}}', 'fat cat', 42
);
INSERT INTO public.types_zoo (f4, f8, d) VALUES ('-Infinity', '-Infinity', '4713-01-01 BC');
CREATE FUNCTION public.sneaky() RETURNS int LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.victim VALUES (99, 'pwned'); RETURN 1; END $$;
CREATE FUNCTION public.sneaky_definer() RETURNS int LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN DELETE FROM public.victim; RETURN 1; END $$;
CREATE SCHEMA wide;
DO $$ BEGIN
    FOR i IN 1..120 LOOP EXECUTE format('CREATE TABLE wide.t%s (id int)', lpad(i::text, 3, '0')); END LOOP;
END $$;
COMMENT ON TABLE wide.t001 IS 'first of many';
DO $$ BEGIN CREATE ROLE {READER_ROLE} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA shop, hr, analytics, public, wide TO {READER_ROLE};
GRANT SELECT ON ALL TABLES IN SCHEMA shop, hr, analytics, public, wide TO {READER_ROLE};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$ BEGIN CREATE ROLE mcp_test_limited NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
GRANT USAGE ON SCHEMA shop TO mcp_test_limited;
GRANT SELECT ON shop.orders TO mcp_test_limited;
ANALYZE;
"""


def with_db(url: str, **params: Any) -> str:
    return make_conninfo(url, **params)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def admin_url() -> Iterator[str]:
    """A superuser connection to the server: TEST_DATABASE_URL or an embedded PostgreSQL."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="pg-mcp-test-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def database_url(admin_url: str) -> Iterator[str]:
    """A fresh, seeded database for this session (superuser connection string)."""
    name = f"mcp_test_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    url = with_db(admin_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(ps.DEMO_SCHEMA_SQL)  # type: ignore[arg-type]
        conn.execute(FIXTURES_SQL)  # type: ignore[arg-type]
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def reader_url(database_url: str) -> str:
    """The same database as a SELECT-only role (trust or the superuser's password on TCP)."""
    params = conninfo_to_dict(database_url)
    params["user"] = READER_ROLE
    if params.get("password"):
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {READER_ROLE} PASSWORD '{params['password']}'")  # type: ignore[arg-type]
    return make_conninfo(**params)


@pytest.fixture
def config(database_url: str) -> ps.Config:
    return ps.Config(conn=database_url, pool_min=1, pool_max=3)


@contextlib.asynccontextmanager
async def connect(config: ps.Config, mode: str = "legacy") -> AsyncIterator[Client]:
    """The real MCP client, in memory, against a server built from `config`."""
    async with Client(ps.build_server(config), mode=mode) as client:  # type: ignore[arg-type]
        yield client


@dataclass
class Called:
    """A tool result, flattened for compact assertions."""

    is_error: bool
    text: str
    data: Any


async def call(client: Client, tool: str, **args: Any) -> Called:
    result = await client.call_tool(tool, args)
    text = result.content[0].text if result.content else ""  # type: ignore[union-attr]
    return Called(bool(result.is_error), text, result.structured_content)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        await anyio.sleep(0.05)
    return False


# One call of every tool against the seeded database (execute_sql doubles its parameter: 42).
TOOL_CALLS: dict[str, dict[str, Any]] = {
    "list_schemas": {},
    "list_tables": {"schema": "shop"},
    "describe_table": {"table": "shop.orders"},
    "get_relationships": {"table": "shop.orders"},
    "list_enums": {},
    "search_schema": {"query": "customer"},
    "execute_sql": {"sql": "SELECT $1::int * 2 AS doubled", "params": [21]},
}
# A read that runs for minutes on CPU alone (pg_sleep is refused: it holds a pooled connection doing nothing).
SLOW_SQL = "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b"


def active_queries(url: str, application: str) -> int:
    """Active backends of one application_name."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND state = 'active'", [application]
        ).fetchone()
    return int(row[0]) if row else 0


async def cancel_midway(client: Client, running: Callable[[], bool], sql: str = SLOW_SQL) -> bool:
    """Start a long query (`sql`), cancel the call once `running()` says it runs in Postgres; True if it then
    stops there within 5 s."""
    await client.call_tool("execute_sql", {"sql": "SELECT 1"})  # the posture and catalog are loaded first
    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()

        async def slow() -> None:
            with scope:
                await client.call_tool("execute_sql", {"sql": sql})

        group.start_soon(slow)
        assert await wait_for(running), "the query never started"
        scope.cancel()
    return await wait_for(lambda: not running(), 5)


def admin(url: str, sql: str) -> None:
    """Run SQL as the superuser, outside the server under test (fixtures, DDL a test needs)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def permissions_file(tmp_path: Path, document: dict[str, Any]) -> str:
    """`document` written as a permissions.yaml in `tmp_path` (the cached load of an earlier file forgotten): its
    path."""
    path = tmp_path / "permissions.yaml"
    path.write_text(yaml.safe_dump(document))
    ps.load_permissions.cache_clear()
    return str(path)


@contextlib.contextmanager
def objects(url: str, setup: str, teardown: str) -> Iterator[str]:
    """Database objects a test needs, created before it (after a clean-up) and dropped after it."""
    admin(url, teardown)
    admin(url, setup)
    try:
        yield url
    finally:
        admin(url, teardown)


def fingerprint(url: str) -> tuple[Any, ...]:
    """What must never change: the victim rows, the set of relations, functions, roles, sequences, settings."""
    with psycopg.connect(url, autocommit=True) as conn:
        return tuple(
            conn.execute(sql).fetchone()  # type: ignore[arg-type]
            for sql in (
                "SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) FROM public.victim",
                "SELECT md5(string_agg(oid::text || relname || relkind::text, ',' ORDER BY oid)) FROM pg_class",
                "SELECT md5(string_agg(oid::text || proname, ',' ORDER BY oid)) FROM pg_proc",
                "SELECT md5(string_agg(rolname || rolsuper::text, ',' ORDER BY rolname)) FROM pg_roles",
                "SELECT last_value, is_called FROM public.counter_seq",
                "SELECT md5(string_agg(name || setting, ',' ORDER BY name)) FROM pg_settings WHERE source <> 'session'",
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
                "SELECT count(*) FROM pg_prepared_xacts",
            )
        )


@contextlib.contextmanager
def server_process(env: dict[str, str]) -> Iterator[tuple[Any, str]]:
    """The server as a process of its own serving HTTP (env: its settings besides the transport and port), once
    /health answers: (the process, its base URL). Terminated afterwards."""
    import subprocess

    import httpx

    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MCP_TRANSPORT": "streamable-http", "MCP_PORT": str(port),
           **env}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "postgres_server"], env=env, cwd=ROOT, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                # With several workers (a listener each), a fresh connection may reach any: all must answer.
                if {httpx.get(f"{base}/health").status_code for _ in range(20)} == {200}:
                    break
            time.sleep(0.05)
        yield server, base
    finally:
        if server.poll() is None:
            server.terminate()
        server.wait(10)


def system_binary(name: str, package: str) -> str:
    """The path of a program from a Debian package a test needs: skipped locally without it, failing under CI
    (.ci/run installs it)."""
    import shutil

    found = shutil.which(name) or next((f"{d}/{name}" for d in ("/usr/sbin", "/sbin") if Path(d, name).exists()), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed: .ci/run installs Debian's {package} package")
        pytest.skip(f"{name} is not installed (apt-get install {package}); CI runs this test")
    return found


@contextlib.contextmanager
def pgbouncer(database_url: str, pool_size: int = 2) -> Iterator[str]:
    """Debian's PgBouncer in transaction-pooling mode on a loopback port, in front of `database_url`'s database
    (`pool_size` server connections): its connection string (database `mcp`, trusted). Stopped afterwards."""
    import pwd
    import shutil
    import subprocess

    binary = system_binary("pgbouncer", "pgbouncer")
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
default_pool_size = {pool_size}
max_client_conn = 50
logfile = {workdir}/pgbouncer.log
pidfile = {workdir}/pgbouncer.pid
""")
    command = [binary, str(workdir / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the owner of the server's socket directory (who can
        # reach the socket), or as nobody for a TCP server, and give that user its files.
        host = str(target.get("host") or "")
        user = pwd.getpwuid(Path(host).stat().st_uid) if host.startswith("/") else pwd.getpwnam("nobody")
        if user.pw_uid == 0:
            user = pwd.getpwnam("nobody")
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", user.pw_name, "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None:
                pytest.fail(f"pgbouncer exited: {process.stderr.read().decode() if process.stderr else ''}")
            time.sleep(0.05)
        yield make_conninfo(host="127.0.0.1", port=str(port), dbname="mcp", user=target.get("user", "postgres"))
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


class PrivateCluster:
    """A PostgreSQL cluster of the test's own (pgserver's binaries, on a loopback port) that the test may stop,
    start and restart, and whose backends it may terminate."""

    def __init__(self) -> None:
        import pwd

        from pgserver._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.root = Path(tempfile.mkdtemp(prefix="pg-mcp-cluster-"))
        self.data, self.port = self.root / "data", free_port()
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: pgserver's own system user runs it
            from pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, program: str, *args: str) -> None:
        import subprocess

        subprocess.run([str(self.bin / program), *args], check=True, capture_output=True, timeout=60, user=self.user)

    def pg_ctl(self, *action: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "-m", "fast",
                 *action)  # fmt: skip

    def backends(self, application: str) -> list[int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s AND state = 'active'",
                                [application]).fetchall()  # fmt: skip
        return [row[0] for row in rows]

    def close(self) -> None:
        import shutil

        with contextlib.suppress(Exception):
            self.pg_ctl("stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    private = PrivateCluster()
    private.pg_ctl("start")
    try:
        yield private
    finally:
        private.close()
