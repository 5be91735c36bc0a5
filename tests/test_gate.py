"""The SQL gate alone, without a database: what PostgreSQL's parser lets through and what it refuses."""

from __future__ import annotations

import pytest
from conftest import ps

ALLOWED = [
    ("SELECT 1", "select"),
    ("select * from shop.orders where id = $1", "select"),
    ("VALUES (1, 2)", "select"),
    ("TABLE shop.orders", "select"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "select"),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", "select"),
    ("SELECT 1 UNION SELECT 2 INTERSECT SELECT 2", "select"),
    ("SELECT * FROM shop.orders o JOIN LATERAL (SELECT 1) x ON true", "select"),
    ("SELECT $$;DROP TABLE victim$$", "select"),  # a string, not a statement
    ("SELECT 1 -- ; DROP TABLE victim", "select"),
    ("SELECT 1;", "select"),
    ("  SELECT 1 ; ", "select"),
    ("SELECT clock_timestamp(), random()", "select"),
    ("SELECT current_setting('work_mem')", "select"),
    ("SELECT count(*) FILTER (WHERE true) OVER () FROM shop.orders", "select"),
    ("SELECT pg_size_pretty(pg_total_relation_size('shop.orders'))", "select"),
    ("SELECT * FROM pg_stat_activity", "select"),
    ("SELECT * FROM json_to_record('{\"a\":1}') AS x(a int)", "select"),
    ("EXPLAIN SELECT 1", "explain"),
    ("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM shop.orders", "explain"),
    ("SELECT rolname, rolsuper FROM pg_roles r WHERE r.rolcanlogin", "select"),
    ("SHOW work_mem", "show"),
    ("SHOW search_path", "show"),
    ("SHOW TIME ZONE", "show"),
]

REFUSED = [
    # (statement, words the refusal must contain)
    ("", "empty statement"),
    ("-- only a comment", "empty statement"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("COMMIT; DROP SCHEMA public CASCADE;", "2 statements"),
    ("SELECT 1; COMMIT", "2 statements"),
    ("/* ; */ DROP TABLE victim", "DROP refused"),
    ("SELEC 1", "syntax error"),
    ("INSERT INTO victim VALUES (1, 'x')", "INSERT refused"),
    ("UPDATE victim SET v = 'x'", "UPDATE refused"),
    ("DELETE FROM victim", "DELETE refused"),
    ("MERGE INTO victim v USING victim w ON v.id = w.id WHEN MATCHED THEN DELETE", "MERGE refused"),
    ("TRUNCATE victim", "TRUNCATE refused"),
    ("DROP TABLE victim", "DROP refused"),
    ("CREATE TABLE x (i int)", "CREATE TABLE refused"),
    ("CREATE TEMP TABLE x (i int)", "CREATE TABLE refused"),
    ("CREATE TABLE x AS SELECT 1", "CREATE TABLE AS"),
    ("SELECT 1 INTO x", "SELECT INTO refused"),
    ("SELECT 1 INTO TEMP x", "SELECT INTO refused"),
    ("ALTER TABLE victim ADD COLUMN z int", "ALTER TABLE refused"),
    ("ALTER SYSTEM SET work_mem = '1GB'", "ALTER SYSTEM refused"),
    ("COPY victim TO '/tmp/x'", "COPY refused"),
    ("COPY (SELECT 1) TO PROGRAM 'touch /tmp/pwned'", "COPY refused"),
    ("COPY victim FROM STDIN", "COPY refused"),
    ("SET default_transaction_read_only = off", "SET refused"),
    ("SET ROLE postgres", "SET refused"),
    ("SET SESSION AUTHORIZATION postgres", "SET refused"),
    ("RESET ALL", "SET refused"),
    ("SET TRANSACTION READ WRITE", "refused"),
    ("BEGIN", "BEGIN refused"),
    ("START TRANSACTION READ WRITE", "START refused"),
    ("COMMIT", "COMMIT refused"),
    ("ROLLBACK", "ROLLBACK refused"),
    ("SAVEPOINT a", "SAVEPOINT refused"),
    ("PREPARE TRANSACTION 'x'", "PREPARE refused"),
    ("PREPARE p AS SELECT 1", "PREPARE refused"),
    ("EXECUTE p", "EXECUTE refused"),
    ("DEALLOCATE ALL", "DEALLOCATE refused"),
    ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DECLARE refused"),
    ("FETCH ALL FROM c", "FETCH refused"),
    ("LISTEN x", "LISTEN refused"),
    ("NOTIFY x", "NOTIFY refused"),
    ("LOCK victim", "LOCK refused"),
    ("VACUUM victim", "VACUUM"),
    ("ANALYZE victim", "VACUUM / ANALYZE"),
    ("CLUSTER victim", "CLUSTER refused"),
    ("REINDEX TABLE victim", "REINDEX refused"),
    ("REFRESH MATERIALIZED VIEW analytics.customer_value", "REFRESH MATERIALIZED VIEW refused"),
    ("CHECKPOINT", "CHECKPOINT refused"),
    ("LOAD 'auto_explain'", "LOAD refused"),
    ("DISCARD ALL", "DISCARD refused"),
    ("DO $$ BEGIN DELETE FROM victim; END $$", "DO refused"),
    ("CALL p()", "CALL refused"),
    ("GRANT ALL ON victim TO PUBLIC", "GRANT"),
    ("CREATE ROLE evil SUPERUSER", "CREATE ROLE refused"),
    ("ALTER ROLE postgres PASSWORD 'x'", "ALTER ROLE refused"),
    ("CREATE EXTENSION dblink", "CREATE EXTENSION refused"),
    ("COMMENT ON TABLE victim IS 'x'", "COMMENT refused"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION refused"),
    ("CREATE DATABASE x", "CREATE DATABASE refused"),
    ("IMPORT FOREIGN SCHEMA s FROM SERVER x INTO public", "refused"),
    # locking clauses
    ("SELECT * FROM victim FOR UPDATE", "FOR UPDATE/SHARE"),
    ("SELECT * FROM victim FOR SHARE", "FOR UPDATE/SHARE"),
    ("SELECT * FROM victim FOR NO KEY UPDATE SKIP LOCKED", "FOR UPDATE/SHARE"),
    ("SELECT * FROM (SELECT * FROM victim FOR KEY SHARE) s", "FOR UPDATE/SHARE"),
    # data-modifying CTEs, anywhere
    ("WITH d AS (DELETE FROM victim RETURNING *) SELECT * FROM d", "DELETE refused"),
    ("WITH u AS (UPDATE victim SET v = 'x' RETURNING *) SELECT 1", "UPDATE refused"),
    ("WITH i AS (INSERT INTO victim VALUES (9, 'x') RETURNING 1) SELECT 1", "INSERT refused"),
    ("SELECT * FROM (WITH d AS (DELETE FROM victim RETURNING 1) SELECT * FROM d) s", "DELETE refused"),
    # EXPLAIN only of reads
    ("EXPLAIN ANALYZE DELETE FROM victim", "EXPLAIN ANALYZE DELETE refused"),
    ("EXPLAIN (ANALYZE) INSERT INTO victim VALUES (7, 'x')", "EXPLAIN ANALYZE INSERT refused"),
    ("EXPLAIN (ANALYZE true) UPDATE victim SET v = 'x'", "EXPLAIN ANALYZE UPDATE refused"),
    ("EXPLAIN (ANALYZE false, ANALYZE true) DELETE FROM victim", "EXPLAIN ANALYZE DELETE refused"),
    # settings kept on roles, foreign-server passwords under other names
    ("SELECT rolname, rolconfig FROM pg_roles", "column rolconfig refused"),
    ("SELECT pg_options_to_table(r.rolconfig) FROM pg_roles r", "column rolconfig refused"),
    ("SELECT usename, useconfig FROM pg_user", "column useconfig refused"),
    ("SELECT * FROM pg_roles", "name the columns"),
    ("TABLE pg_roles", "name the columns"),
    ("SELECT r FROM pg_roles r", "name the columns"),
    ("SELECT to_jsonb(u) FROM pg_catalog.pg_user u", "name the columns"),
    ("SELECT * FROM information_schema._pg_user_mappings", "_pg_user_mappings refused"),
    ("SELECT * FROM information_schema.user_mapping_options", "user_mapping_options refused"),
    ("SELECT * FROM xpath_table('k', 'd', 'pg_authid', '/a', 'true') AS t(a text, b text)", "xpath_table"),
    ("EXPLAIN ANALYZE WITH d AS (DELETE FROM victim RETURNING 1) SELECT * FROM d", "DELETE refused"),
    ("EXPLAIN ANALYZE SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("EXPLAIN CREATE TABLE x AS SELECT 1", "EXPLAIN CREATE TABLE AS"),
    # settings and session
    ("SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("SELECT pg_catalog.set_config('role', 'postgres', false)", "set_config"),
    ("SELECT pg_reload_conf()", "pg_reload_conf"),
    ("SHOW ALL", "SHOW ALL refused"),
    ("SHOW data_directory", "setting data_directory refused"),
    ("SHOW config_file", "setting config_file refused"),
    ("SHOW hba_file", "setting hba_file refused"),
    ("SELECT current_setting('data_directory')", "data_directory"),
    ("SELECT current_setting('primary_conninfo')", "primary_conninfo"),
    ("SELECT current_setting(x) FROM (VALUES ('data_directory')) v(x)", "literal"),
    # advisory locks and signalling
    ("SELECT pg_advisory_lock(1)", "advisory"),
    ("SELECT pg_try_advisory_lock(1)", "advisory"),
    ("SELECT pg_advisory_xact_lock(1)", "advisory"),
    ("SELECT pg_advisory_lock_shared(1)", "advisory"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "pg_terminate_backend"),
    ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
    # files and large objects
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() refused"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT PG_READ_FILE('/etc/passwd')", "pg_read_file"),
    ("SELECT \"pg_read_file\"('/etc/passwd')", "pg_read_file"),
    ("SELECT U&\"pg_read_\\0066ile\"('/etc/passwd')", "pg_read_file"),
    ('SELECT * FROM U&"pg_auth\\0069d"', "pg_authid"),
    ("SELECT U&\"pg_read_!0066ile\" UESCAPE '!' ('/etc/passwd')", "pg_read_file"),
    ("select/**/pg_read_file('x')", "pg_read_file"),
    ("SELECT pg_read_binary_file('/etc/passwd')", "pg_read_binary_file"),
    ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    ("SELECT pg_stat_file('postgresql.conf')", "pg_stat_file"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT lo_export(1, '/tmp/x')", "lo_export"),
    ("SELECT lo_get(1)", "lo_get"),
    ("SELECT * FROM pg_largeobject", "pg_largeobject"),
    # sequences, notifications, xids, WAL, replication
    ("SELECT nextval('public.counter_seq')", "nextval"),
    ("SELECT setval('public.counter_seq', 100)", "setval"),
    ("SELECT pg_notify('x', 'y')", "pg_notify"),
    ("SELECT txid_current()", "txid_current"),
    ("SELECT pg_switch_wal()", "pg_switch_wal"),
    ("SELECT pg_create_restore_point('x')", "pg_create_restore_point"),
    ("SELECT pg_logical_emit_message(true, 'x', 'y')", "pg_logical_emit_message"),
    ("SELECT pg_stat_reset()", "pg_stat_reset"),
    ("SELECT pg_create_logical_replication_slot('s', 'pgoutput')", "pg_create_logical_replication_slot"),
    # SQL executed from text, foreign connections
    ("SELECT query_to_xml('delete from victim', true, true, '')", "query_to_xml"),
    ("SELECT database_to_xml(true, true, '')", "database_to_xml"),
    ("SELECT * FROM ts_stat('SELECT to_tsvector(v) FROM victim')", "ts_stat"),
    ("SELECT * FROM dblink('dbname=postgres', 'delete from victim') AS t(x int)", "dblink"),
    ("SELECT dblink_exec('dbname=postgres', 'delete from victim')", "dblink_exec"),
    ("SELECT * FROM crosstab('select 1')", "crosstab"),
    # secrets and configuration
    ("SELECT rolpassword FROM pg_authid", "pg_authid"),
    ("SELECT * FROM pg_catalog.pg_authid", "pg_authid"),
    ('SELECT * FROM pg_catalog."pg_authid"', "pg_authid"),
    ("TABLE pg_authid", "pg_authid"),
    ("SELECT * FROM pg_shadow", "pg_shadow"),
    ("SELECT * FROM pg_user_mappings", "pg_user_mappings"),
    ("SELECT * FROM pg_hba_file_rules", "pg_hba_file_rules"),
    ("SELECT * FROM pg_file_settings", "pg_file_settings"),
    ("SELECT * FROM pg_settings", "pg_settings"),
    ("SELECT * FROM pg_config", "pg_config"),
    ("SELECT * FROM pg_show_all_settings()", "pg_show_all_settings"),
    # functions hidden in every corner of a statement
    ("SELECT (SELECT pg_read_file('/etc/passwd'))", "pg_read_file"),
    ("SELECT * FROM victim WHERE v = (SELECT pg_read_file('x'))", "pg_read_file"),
    ("SELECT 1 ORDER BY pg_advisory_lock(1)", "advisory"),
    ("SELECT * FROM victim v, LATERAL (SELECT pg_advisory_lock(v.id)) l", "advisory"),
    ("SELECT CAST(pg_read_file('x') AS int)", "pg_read_file"),
    ("SELECT pg_read_file('x')::int", "pg_read_file"),
    ("SELECT ARRAY[pg_read_file('x')]", "pg_read_file"),
    ("SELECT CASE WHEN true THEN pg_read_file('x') END", "pg_read_file"),
    ("SELECT coalesce(pg_read_file('x'), '')", "pg_read_file"),
    ("SELECT 1 GROUP BY pg_read_file('x')", "pg_read_file"),
    ("SELECT 1 HAVING pg_read_file('x') IS NOT NULL", "pg_read_file"),
    ("SELECT count(*) FILTER (WHERE pg_read_file('x') IS NULL) FROM victim", "pg_read_file"),
    ("SELECT row_number() OVER (ORDER BY pg_read_file('x'))", "pg_read_file"),
    ("VALUES (pg_read_file('x'))", "pg_read_file"),
    ("SELECT * FROM (VALUES (1)) v WHERE EXISTS (SELECT pg_terminate_backend(1))", "pg_terminate_backend"),
    ("WITH x AS (SELECT pg_read_file('x')) SELECT * FROM x", "pg_read_file"),
    ("SELECT 1 UNION SELECT length(pg_read_file('x'))", "pg_read_file"),
    ("SELECT * FROM generate_series(1, 2) g LIMIT (SELECT pg_advisory_lock(1))", "advisory"),
    ("SELECT (pg_read_file('x')).foo", "pg_read_file"),
    ("SELECT 1 WHERE 1 IN (SELECT pg_advisory_lock(1))", "advisory"),
    ("SELECT json_agg(pg_read_file('x'))", "pg_read_file"),
    ("SELECT * FROM ROWS FROM (pg_read_file('x')) AS r", "pg_read_file"),
    ("SELECT xmlelement(name x, pg_read_file('x'))", "pg_read_file"),
    ("EXPLAIN SELECT pg_read_file('x')", "pg_read_file"),
]


@pytest.mark.parametrize(("sql", "kind"), ALLOWED)
def test_gate_allows_reads(sql: str, kind: str) -> None:
    assert ps.gate(sql).kind == kind


@pytest.mark.parametrize(("sql", "words"), REFUSED)
def test_gate_refuses_with_reason(sql: str, words: str) -> None:
    with pytest.raises(ps.GateRefusal) as refused:
        ps.gate(sql)
    assert words.lower() in str(refused.value).lower()


def test_gate_trims_to_the_statement_and_keeps_offsets() -> None:
    gated = ps.gate("  /* hi */ SELECT 1 ;  -- trailing")
    assert gated.sql == "SELECT 1"
    assert "  /* hi */ SELECT 1 ;  -- trailing"[gated.offset :].startswith("SELECT 1")


def test_gate_handles_multibyte_text() -> None:
    gated = ps.gate("SELECT 'ünïcødé ✓' AS x;")
    assert gated.sql == "SELECT 'ünïcødé ✓' AS x"


def test_syntax_error_points_at_the_spot() -> None:
    with pytest.raises(ps.GateRefusal) as refused:
        ps.gate("SELECT *\nFROM victim\nWHERE id = = 1")
    message = str(refused.value)
    assert "LINE 3: WHERE id = = 1" in message
    assert message.splitlines()[-1] == " " * len("LINE 3: WHERE id = ") + "^"


def test_sql_json_syntax_is_judged_as_calls() -> None:
    """On servers before PostgreSQL 16/17 these words call functions of the same names."""
    refs = ps.gate("SELECT json_scalar(1), json_serialize('1'), json_value('1', '$'), json_object('a': 1)").references
    assert {ref.name for ref in refs if ref.kind == "call"} >= {"json_scalar", "json_serialize", "json_value",
                                                                 "json_object"}  # fmt: skip


def test_gate_is_cached_for_statements_of_ordinary_length() -> None:
    ps._cached_gate.cache_clear()
    ps.gate("SELECT 42")
    ps.gate("SELECT 42")
    long = "SELECT 1 WHERE 1 IN (" + ",".join(["1"] * 5_000) + ")"
    ps.gate(long)
    ps.gate(long)
    assert ps._cached_gate.cache_info().hits == 1 and ps._cached_gate.cache_info().currsize == 1


def test_deep_nesting_is_a_clear_refusal() -> None:
    for depth in (500, 2_000):
        with pytest.raises(ps.GateRefusal, match="nested too deeply to check"):
            ps.gate("SELECT " + "NOT (" * depth + "true" + ")" * depth)
    assert ps.gate("SELECT " + "NOT (" * 100 + "true" + ")" * 100).kind == "select"


def test_json_depth() -> None:
    assert not ps.too_deep('{"a": [[["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]]]}')
    assert ps.too_deep("[" * 65 + "]" * 65) and not ps.too_deep("[" * 64 + "]" * 64)
