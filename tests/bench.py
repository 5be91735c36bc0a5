"""Benchmark: this server against the in-process psycopg floor (and optionally the archived Node reference).

    python tests/bench.py                      # embedded PostgreSQL, stdio + HTTP, Markdown table + JSON
    python tests/bench.py --url postgresql://… # a given server (superuser; creates database mcp_bench)
    python tests/bench.py --reference          # also @modelcontextprotocol/server-postgres 0.6.2 (npm)
    python tests/bench.py --hostile            # peak RSS per hostile payload, latency beside a flood
    python tests/bench.py --context            # bytes of each tool's text and structured content, of tools/list
    python tests/bench.py --search             # search_schema on 10,000 tables (database mcp_bench_10k, built once)

Every figure is measured in one run, the workloads interleaved round by round, and reported as a ratio to
the floor, run in this process with psycopg on an open connection: for execute_sql the same query, for the
introspection tools the plain catalog queries a client would write (issue 13). Servers are driven by a
minimal raw JSON-RPC client (newline-delimited over stdio, keep-alive POSTs over HTTP), so the figures are
the servers' costs, not a client library's. Not part of the test suite: timing belongs here, not in asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent

BENCH_DB = "mcp_bench"
# As .mcp.json and the Dockerfile run it: as a module, from cached bytecode (a script is compiled at every start).
SERVER_ARGV = [sys.executable, "-m", "postgres_server"]
WIDE_ROWS = 1_000_000
REFERENCE_PACKAGE = "@modelcontextprotocol/server-postgres@0.6.2"
# HTTP throughput is measured in both protocol eras: 2025-06-18 (stateless, one transport per request) and
# 2026-07-28 (every request self-contained), which the SDK serves on a lighter path.
LEGACY_ERA, MODERN_ERA = "2025-06-18", "2026-07-28"
MODERN_META = {"io.modelcontextprotocol/protocolVersion": MODERN_ERA,
               "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
               "io.modelcontextprotocol/clientCapabilities": {}}  # fmt: skip

# The `sales` schema the introspection workloads read (issue 13): exactly 104 relations, 100 tables named like a
# business's (each with a primary key, a foreign key to its parent when it has one, a comment), 3 views, and
# sales.wide_events, a 24-column event table of 200,000 rows. "child<parent": the child's foreign key to its parent.
SALES_TABLE_LIST = """
regions countries<regions currencies exchange_rates<currencies tax_rates<countries
customer_segments customers customer_addresses<customers customer_contacts<customers customer_notes<customers
accounts<customers payment_methods<customers tax_exemptions<customers
product_categories products product_variants<products product_prices<products product_images<products
product_reviews<products product_bundles bundle_items<product_bundles
suppliers supplier_contacts<suppliers purchase_orders<suppliers purchase_order_lines<purchase_orders
warehouses<regions inventory_levels<warehouses stock_movements<warehouses
sales_teams sales_reps<sales_teams territories<regions quotas<sales_reps commissions<sales_reps
orders<customers order_items<orders order_status_history<orders order_discounts<orders
carriers shipments<orders shipment_items<shipments shipment_events<shipments
returns<orders return_items<returns refunds<returns
invoices<orders invoice_lines<invoices payments<invoices credit_notes<invoices payment_disputes<payments
quotes<customers quote_lines<quotes contracts<customers contract_terms<contracts
plans plan_features<plans subscriptions<customers subscription_items<subscriptions subscription_events<subscriptions
coupons coupon_redemptions<coupons promotions promotion_rules<promotions price_lists price_list_entries<price_lists
lead_sources leads<lead_sources opportunities<customers opportunity_products<opportunities
opportunity_stages activities<sales_reps tasks<sales_reps meetings<customers calls<customers
campaigns campaign_members<campaigns marketing_lists list_members<marketing_lists
carts<customers cart_items<carts wishlists<customers wishlist_items<wishlists
loyalty_accounts<customers loyalty_transactions<loyalty_accounts gift_cards gift_card_transactions<gift_cards
support_tickets<customers ticket_messages<support_tickets satisfaction_surveys<customers
survey_responses<satisfaction_surveys partners partner_referrals<partners affiliates affiliate_payouts<affiliates
store_locations<regions pos_terminals<store_locations pos_transactions<pos_terminals
forecast_periods forecasts<forecast_periods cost_centers budget_lines<cost_centers
"""
SALES_TABLES = SALES_TABLE_LIST.split()
# A few tables carry more than the generic columns (and a second foreign key).
SALES_EXTRA_COLUMNS = {
    "customers": "email text NOT NULL UNIQUE, country char(2), "
    "segment_id bigint REFERENCES sales.customer_segments (id)",
    "products": "sku text NOT NULL UNIQUE, list_price numeric(12,2), "
    "category_id bigint REFERENCES sales.product_categories (id)",
    "orders": "order_number text NOT NULL UNIQUE, total numeric(12,2), "
    "sales_rep_id bigint REFERENCES sales.sales_reps (id)",
    "order_items": "product_id bigint NOT NULL REFERENCES sales.products (id), "
    "quantity int NOT NULL CHECK (quantity > 0)",
}
SALES_EVENTS = 200_000
SALES_CUSTOMERS = 5_000


def singular(name: str) -> str:
    return name[:-3] + "y" if name.endswith("ies") else name.removesuffix("s")


def sales_tables_sql() -> str:
    """CREATE TABLE and COMMENT statements of the 100 sales tables, each after its parent."""
    statements = []
    for number, entry in enumerate(SALES_TABLES):
        name, _, parent = entry.partition("<")
        columns = ["id bigint PRIMARY KEY"]
        if parent:
            columns.append(f"{singular(parent)}_id bigint NOT NULL REFERENCES sales.{parent} (id) ON DELETE CASCADE")
        if name in SALES_EXTRA_COLUMNS:
            columns.append(SALES_EXTRA_COLUMNS[name])
        columns += ["name text NOT NULL", "status text NOT NULL DEFAULT 'active'",
                    "amount numeric(12,2)" if number % 2 else "note text",
                    "created_at timestamptz NOT NULL DEFAULT now()"]  # fmt: skip
        comment = name.replace("_", " ") + (f", each of one {singular(parent).replace('_', ' ')}" if parent else "")
        statements += [f"CREATE TABLE sales.{name} ({', '.join(columns)});",
                       f"COMMENT ON TABLE sales.{name} IS '{comment}';"]  # fmt: skip
    return "\n".join(statements)


SALES_SQL = f"""
CREATE SCHEMA sales;
COMMENT ON SCHEMA sales IS 'the storefront: customers, catalog, orders, billing, CRM and tracked events';
{sales_tables_sql()}
INSERT INTO sales.customer_segments (id, name) VALUES (1, 'consumer'), (2, 'small business'), (3, 'enterprise'),
    (4, 'public sector'), (5, 'partner');
INSERT INTO sales.customers (id, email, country, segment_id, name, status)
SELECT g, 'customer' || g || '@example.com', (ARRAY['DE', 'FR', 'NL', 'IT', 'ES', 'AT', 'GB', 'US'])[1 + g % 8],
       CASE WHEN g % 10 < 7 THEN 1 ELSE 1 + g % 5 END, 'Customer ' || g,
       CASE WHEN g % 20 = 0 THEN 'closed' ELSE 'active' END
FROM generate_series(1, {SALES_CUSTOMERS}) g;
CREATE TYPE sales.event_type AS ENUM ('page_view', 'add_to_cart', 'checkout', 'purchase', 'refund');
CREATE TABLE sales.wide_events (
    event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    event_date date NOT NULL,
    event_type sales.event_type NOT NULL,
    customer_id bigint REFERENCES sales.customers (id),
    session_id uuid NOT NULL,
    channel text NOT NULL,
    country char(2),
    amount numeric(12,2),
    currency text NOT NULL DEFAULT 'EUR',
    order_id bigint,
    page_url text NOT NULL,
    referrer text,
    utm_campaign text,
    user_agent text,
    ip inet,
    device text,
    os text,
    browser text,
    duration_ms int,
    is_bot boolean NOT NULL DEFAULT false,
    properties jsonb,
    tags text[]
);
COMMENT ON TABLE sales.wide_events IS 'one row per tracked storefront event (web, app, email, partner)';
COMMENT ON COLUMN sales.wide_events.occurred_at IS 'when the client says the event happened';
COMMENT ON COLUMN sales.wide_events.customer_id IS 'null for anonymous visitors';
COMMENT ON COLUMN sales.wide_events.amount IS 'order value of purchase and refund events, in currency';
COMMENT ON COLUMN sales.wide_events.properties IS 'free-form attributes sent by the client';
CREATE INDEX wide_events_occurred_at ON sales.wide_events (occurred_at);
CREATE INDEX wide_events_customer ON sales.wide_events (customer_id, occurred_at) WHERE customer_id IS NOT NULL;
CREATE INDEX wide_events_session ON sales.wide_events (session_id);
SELECT setseed(0.13);
INSERT INTO sales.wide_events (occurred_at, received_at, event_date, event_type, customer_id, session_id, channel,
    country, amount, currency, order_id, page_url, referrer, utm_campaign, user_agent, ip, device, os, browser,
    duration_ms, is_bot, properties, tags)
SELECT ts, ts + r[2] * 5 * interval '1 second', (ts AT TIME ZONE 'UTC')::date, kind::sales.event_type,
       CASE WHEN r[3] < 0.35 THEN NULL ELSE 1 + floor(r[4] ^ 2 * {SALES_CUSTOMERS})::bigint END,
       md5('session ' || g / 12)::uuid,
       CASE WHEN r[5] < 0.62 THEN 'web' WHEN r[5] < 0.88 THEN 'app' WHEN r[5] < 0.97 THEN 'email' ELSE 'partner' END,
       CASE WHEN r[6] >= 0.02 THEN (ARRAY['DE', 'DE', 'DE', 'DE', 'FR', 'FR', 'NL', 'IT', 'ES', 'AT', 'BE', 'PL', 'SE',
                                          'GB', 'US'])[1 + floor(r[7] * 15)::int] END,
       CASE WHEN kind IN ('purchase', 'refund') THEN round((5 + r[8] ^ 3 * 900)::numeric, 2) END,
       CASE WHEN r[9] < 0.85 THEN 'EUR' WHEN r[9] < 0.95 THEN 'GBP' ELSE 'USD' END,
       CASE WHEN kind IN ('checkout', 'purchase', 'refund') THEN 1000000 + g END,
       'https://shop.example.com/' || CASE kind WHEN 'page_view' THEN
           (ARRAY['', 'products/' || floor(r[10] ^ 2 * 2000)::int, 'search?q=shoes', 'sale', 'account/orders'])
           [1 + floor(r[11] * 5)::int] WHEN 'add_to_cart' THEN 'products/' || floor(r[10] ^ 2 * 2000)::int
           WHEN 'refund' THEN 'account/returns' ELSE 'checkout' END,
       CASE WHEN r[12] >= 0.55 THEN (ARRAY['https://www.google.com/', 'https://www.google.com/', 'https://www.bing.com/',
           'https://t.co/', 'https://newsletter.example.com/'])[1 + floor(r[13] * 5)::int] END,
       CASE WHEN r[14] >= 0.8 THEN 'spring_sale_' || 1 + floor(r[13] * 5)::int END,
       CASE WHEN bot THEN 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
            ELSE 'Mozilla/5.0 (' || os || ') ' || browser || '/' || 100 + floor(r[15] * 25)::int END,
       (1 + floor(r[16] * 223)::int || '.' || floor(r[17] * 256)::int || '.' || g % 256 || '.' || g % 254 + 1)::inet,
       device, os, browser,
       CASE WHEN r[18] >= 0.05 THEN floor(-ln(1 - r[19]) * 8000)::int END, bot,
       jsonb_strip_nulls(jsonb_build_object('ab', CASE WHEN r[20] < 0.5 THEN 'A' ELSE 'B' END, 'consent', r[21] < 0.8,
           'items', CASE WHEN kind <> 'page_view' THEN 1 + floor(r[22] ^ 2 * 6)::int END)),
       CASE WHEN r[23] >= 0.6 THEN ARRAY[(ARRAY['returning', 'returning', 'new', 'vip', 'sale', 'mobile_app'])
           [1 + floor(r[24] * 6)::int]] END
FROM (SELECT g, r, bot, device, ts,
             CASE WHEN r[1] < 0.70 THEN 'page_view' WHEN r[1] < 0.85 THEN 'add_to_cart' WHEN r[1] < 0.93 THEN 'checkout'
                  WHEN r[1] < 0.99 THEN 'purchase' ELSE 'refund' END AS kind,
             CASE device WHEN 'mobile' THEN CASE WHEN r[25] < 0.6 THEN 'Android' ELSE 'iOS' END
                         WHEN 'tablet' THEN CASE WHEN r[25] < 0.7 THEN 'iPadOS' ELSE 'Android' END
                         ELSE CASE WHEN r[25] < 0.7 THEN 'Windows' WHEN r[25] < 0.93 THEN 'macOS' ELSE 'Linux' END
             END AS os,
             CASE WHEN r[26] < 0.63 THEN 'Chrome' WHEN r[26] < 0.82 THEN 'Safari' WHEN r[26] < 0.9 THEN 'Edge'
                  WHEN r[26] < 0.97 THEN 'Firefox' ELSE 'Samsung Internet' END AS browser
      FROM (SELECT g, r, r[27] < 0.03 AS bot,
                   CASE WHEN r[28] < 0.55 THEN 'mobile' WHEN r[28] < 0.93 THEN 'desktop' ELSE 'tablet' END AS device,
                   timestamptz '2025-01-01 00:00+00' + g * interval '131 seconds' + r[29] * interval '1 minute' AS ts
            FROM (SELECT g, ARRAY(SELECT random() FROM generate_series(1, 29) WHERE g > 0) AS r
                  FROM generate_series(1, {SALES_EVENTS}) g) draws) devices) events;
CREATE VIEW sales.customer_revenue AS
    SELECT customer_id, currency, count(*) AS purchases, sum(amount) AS revenue
    FROM sales.wide_events WHERE event_type = 'purchase' AND customer_id IS NOT NULL GROUP BY customer_id, currency;
CREATE VIEW sales.daily_events AS
    SELECT event_date, event_type, channel, count(*) AS events FROM sales.wide_events GROUP BY 1, 2, 3;
CREATE VIEW sales.active_customers AS
    SELECT id, name, email, country, segment_id FROM sales.customers WHERE status = 'active';
COMMENT ON VIEW sales.customer_revenue IS 'purchases and revenue per identified customer and currency';
COMMENT ON VIEW sales.daily_events IS 'events per day, type and channel';
"""

# ≈200 tables in 3 schemas (bench_a, bench_b, bench_c), keys, indexes, comments, enums, views, one wide table of a
# million rows of mixed types (the wide_1000 workload), and the sales schema above.
SCHEMA_SQL = f"""
CREATE SCHEMA bench_a; CREATE SCHEMA bench_b; CREATE SCHEMA bench_c;
CREATE TYPE bench_a.status AS ENUM ('new', 'active', 'suspended', 'closed');
CREATE TYPE bench_b.kind AS ENUM ('alpha', 'beta', 'gamma');
DO $$
BEGIN
  FOR i IN 1..100 LOOP
    EXECUTE format('CREATE TABLE bench_a.t%1$s (id int PRIMARY KEY, region int NOT NULL, parent_id int %2$s,
                    status bench_a.status NOT NULL DEFAULT ''new'', label text, created_at timestamptz DEFAULT now(),
                    UNIQUE (id, region))',
                   lpad(i::text, 3, '0'),
                   CASE WHEN i > 1
                        THEN format('REFERENCES bench_a.t%s(id) ON DELETE CASCADE', lpad((i - 1)::text, 3, '0'))
                        ELSE '' END);
    EXECUTE format('COMMENT ON TABLE bench_a.t%s IS %L', lpad(i::text, 3, '0'), 'table number ' || i);
    EXECUTE format('CREATE INDEX ON bench_a.t%s (region, created_at)', lpad(i::text, 3, '0'));
  END LOOP;
  FOR i IN 1..60 LOOP
    EXECUTE format('CREATE TABLE bench_b.u%1$s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    a_id int NOT NULL, a_region int NOT NULL, kind bench_b.kind,
                    amount numeric(12,2) CHECK (amount >= 0),
                    FOREIGN KEY (a_id, a_region) REFERENCES bench_a.t%2$s (id, region))',
                   lpad(i::text, 3, '0'), lpad((1 + i % 100)::text, 3, '0'));
  END LOOP;
  FOR i IN 1..40 LOOP
    EXECUTE format('CREATE TABLE bench_c.v%1$s (id int PRIMARY KEY, b_id bigint REFERENCES bench_b.u%2$s(id),
                    note text)', lpad(i::text, 3, '0'), lpad((1 + i % 60)::text, 3, '0'));
    EXECUTE format('CREATE VIEW bench_c.view%1$s AS SELECT id, note FROM bench_c.v%1$s', lpad(i::text, 3, '0'));
  END LOOP;
END $$;
ALTER TABLE bench_a.t050 ADD COLUMN b_id bigint REFERENCES bench_b.u001(id);
CREATE TABLE bench_a.wide (
    id bigint PRIMARY KEY, uid uuid NOT NULL, created_at timestamptz NOT NULL, amount numeric(14,4),
    ratio double precision, status bench_a.status, tags text[], ip inet, payload jsonb, note text,
    flag boolean, day date, qty int, code varchar(16), span interval, scores int[]
);
COMMENT ON TABLE bench_a.wide IS 'a million rows of mixed types';
INSERT INTO bench_a.wide
SELECT g, md5(g::text)::uuid, timestamptz '2024-01-01' + g * interval '17 seconds', (g % 100000) / 7.0,
       CASE WHEN g % 1000 = 0 THEN 'NaN'::float8 ELSE g / 3.0 END, (enum_range(NULL::bench_a.status))[1 + g % 4],
       ARRAY['t' || g % 10, 't' || g % 7], ('10.' || g % 256 || '.' || g % 250 || '.1')::inet,
       jsonb_build_object('k', g % 97, 'name', 'item ' || g, 'nested', jsonb_build_object('x', g % 5)),
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'note for row ' || g END, g % 2 = 0, date '2020-01-01' + g % 2000,
       g % 500, 'C-' || g % 100000, (g % 3600) * interval '1 second', ARRAY[g % 10, g % 100]
FROM generate_series(1, {WIDE_ROWS}) g;
{SALES_SQL}
ANALYZE;
"""

WORKLOADS = {
    "select_1": ("execute_sql", {"sql": "SELECT 1"}, "SELECT 1"),
    "wide_1000": (
        "execute_sql",
        {"sql": "SELECT * FROM bench_a.wide ORDER BY id LIMIT 1000", "max_rows": 1000},
        "SELECT * FROM bench_a.wide ORDER BY id LIMIT 1000",
    ),
    "list_tables_sales": ("list_tables", {"schema": "sales"}, None),
    "describe_wide_events": ("describe_table", {"table": "sales.wide_events"}, None),
    "search_schema": ("search_schema", {"query": "customer"}, None),
}

# The introspection floors (issue 13): plain catalog queries in this process, not this server's own SQL.
EXPOSED = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname !~ '^pg_(toast_)?temp_'"
LIST_TABLES_FLOOR = """
SELECT c.relname, c.relkind, obj_description(c.oid, 'pg_class')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
ORDER BY c.relname"""
# One after another on one connection; {oid}: the table's, resolved before the timing.
DESCRIBE_TABLE_FLOOR = (
    """SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
              col_description(a.attrelid, a.attnum)
       FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""",
    """SELECT conname, contype, pg_get_constraintdef(oid, true) FROM pg_constraint
       WHERE conrelid = {oid} ORDER BY conname""",
    """SELECT ic.relname, pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary
       FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = {oid} ORDER BY ic.relname""",
    """SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid, true) FROM pg_constraint
       WHERE contype = 'f' AND confrelid = {oid} ORDER BY conname""",
)
SEARCH_SCHEMA_FLOOR = f"""
SELECT n.nspname, c.relname, NULL::name AS attname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {EXPOSED} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition AND c.relname ILIKE $1
UNION ALL
SELECT n.nspname, c.relname, a.attname, c.relkind
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE {EXPOSED} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attname ILIKE $1
ORDER BY 1, 2, 3"""
FLOOR_LEGEND = {
    "execute_sql": "the same statement",
    "list_tables": "one names-and-comments query on pg_class",
    "describe_table": "four catalog queries in a row (columns, constraints, indexes, incoming foreign keys)",
    "search_schema": "one ILIKE query on relation and column names (pg_class, pg_attribute)",
}


# search_schema on a big catalog (issue 13): 10,000 tables in 10 schemas, 6 columns each (customer_id, order_id or
# account_id; email on one in five), a comment on one in four; built once, committing every 250 tables.
BIG_DB = "mcp_bench_10k"
BIG_TABLES = 10_000
BIG_SQL = f"""
DO $$
DECLARE
  nouns text[] := ARRAY['customers', 'orders', 'order_items', 'invoices', 'invoice_lines', 'payments', 'products',
    'product_prices', 'shipments', 'accounts', 'users', 'sessions', 'events', 'subscriptions', 'plans', 'coupons',
    'refunds', 'returns', 'suppliers', 'warehouses', 'stock_levels', 'carts', 'reviews', 'tickets', 'campaigns'];
  qualified text;
BEGIN
  FOR s IN 0..9 LOOP
    EXECUTE format('CREATE SCHEMA big_%s', s);
  END LOOP;
  FOR i IN 0..{BIG_TABLES - 1} LOOP
    qualified := format('big_%s.%I', i % 10, nouns[1 + (i / 10) % 25] || '_' || i / 250);
    EXECUTE format('CREATE TABLE %s (id bigint PRIMARY KEY, %s bigint, name text, %s text,
                    created_at timestamptz NOT NULL DEFAULT now(), amount numeric(12,2))',
                   qualified, (ARRAY['customer_id', 'order_id', 'account_id'])[1 + i % 3],
                   CASE WHEN i % 5 = 0 THEN 'email' ELSE 'status' END);
    IF i % 4 = 0 THEN
      EXECUTE format('COMMENT ON TABLE %s IS %L', qualified, 'generated table ' || i);
    END IF;
    IF i % 2 = 0 THEN  -- column comments: search_schema's comment filter must stay one scan, not one per column
      EXECUTE format('COMMENT ON COLUMN %s.amount IS %L', qualified, 'amount in cents, batch ' || i);
    END IF;
    IF i % 250 = 249 THEN
      COMMIT;
    END IF;
  END LOOP;
END $$"""
BIG_SEARCHES = ("email", "customer", "order_items")


def empty_database(admin_url: str, name: str, ready_sql: str, rebuild: bool) -> tuple[str, bool]:
    """A benchmark database's connection string, and whether it must be built: it is (re)created empty unless it
    exists and `ready_sql` says it is complete."""
    url = make_conninfo(admin_url, dbname=name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not rebuild:
            with psycopg.connect(url) as existing:
                ready = existing.execute(ready_sql).fetchone()  # type: ignore[arg-type]
            if ready and ready[0]:
                return url, False
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return url, True


def build_big_database(admin_url: str, rebuild: bool) -> str:
    """The 10,000-table database, built once (about 15 s)."""
    ready = (f"SELECT count(*) = {BIG_TABLES} AND EXISTS (SELECT FROM pg_description WHERE objsubid > 0)"
             " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE n.nspname LIKE 'big\\_%' AND c.relkind = 'r'")  # fmt: skip
    url, build = empty_database(admin_url, BIG_DB, ready, rebuild)
    if build:
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(BIG_SQL)  # type: ignore[arg-type]  # alone: a DO block commits only outside a transaction
            conn.execute("ANALYZE pg_class, pg_attribute, pg_namespace, pg_description, pg_constraint, pg_index")
        print(f"built the {BIG_TABLES:,}-table database in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url


def build_database(admin_url: str, rebuild: bool) -> str:
    ready = "SELECT to_regclass('bench_a.wide') IS NOT NULL AND to_regclass('sales.wide_events') IS NOT NULL"
    url, build = empty_database(admin_url, BENCH_DB, ready, rebuild)
    if build:
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)  # type: ignore[arg-type]
            conn.execute("VACUUM")  # now, not by autovacuum during the first measurements
        print(f"built the benchmark database in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return url


# ---- clients -------------------------------------------------------------------------------------------


class StdioServer:
    """A server subprocess driven by newline-delimited JSON-RPC over its stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv, self.env = argv, env
        self.process: asyncio.subprocess.Process | None = None
        self.next_id = 0

    async def start(self) -> float:
        """Spawn and initialize; returns when the spawn began (perf_counter), for timing the first result."""
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            *self.argv, env=self.env, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=256 * 1024 * 1024,
        )  # fmt: skip
        await self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                          "clientInfo": {"name": "bench", "version": "1"}})  # fmt: skip
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return started

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        assert self.process and self.process.stdout
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            line = await self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.argv} exited")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                return message, len(line)

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        message, size = await self.request("tools/call", {"name": tool, "arguments": args})
        if "result" not in message:
            raise RuntimeError(f"{tool}: {message}")
        return message["result"], size

    async def stop(self) -> None:
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            await self.process.wait()


class RawHttp:
    """One keep-alive HTTP/1.1 connection that sends pre-encoded JSON POSTs: a client costing next to nothing,
    so that throughput measures the server (an httpx client costs more CPU per call than the server does)."""

    def __init__(self, port: int, headers: dict[str, str], era: str) -> None:
        self.port, self.headers, self.era = port, {**headers, "MCP-Protocol-Version": era}, era
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, extra: dict[str, str]) -> bytes:
        """POST on the kept-alive connection; reconnect once if the server closed it while idle."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=2**28)
            assert self.reader is not None
            headers = {**self.headers, **extra, "Host": f"127.0.0.1:{self.port}", "Content-Type": "application/json",
                       "Content-Length": str(len(body))}  # fmt: skip
            head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            self.writer.write(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + body)
            status = await self.reader.readline()
            if not status and attempt == 1:
                self.writer.close()
                self.writer = None
                continue
            length = 0
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"HTTP {status!r}")
            return await self.reader.readexactly(length)
        raise RuntimeError("unreachable")

    async def close(self) -> None:
        if self.writer:
            self.writer.close()


class HttpServer:
    """This server in stateless streamable-HTTP mode (JSON responses), driven by raw keep-alive POSTs."""

    def __init__(self, env: dict[str, str], workers: int = 1, stateless: bool = True) -> None:
        self.port = free_port()
        self.env = {**env, "MCP_TRANSPORT": "streamable-http", "MCP_PORT": str(self.port),
                    "MCP_STATELESS": str(stateless).lower(), "MCP_WORKERS": str(workers)}  # fmt: skip
        self.process: asyncio.subprocess.Process | None = None
        self.headers = {"Accept": "application/json, text/event-stream"}

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *SERVER_ARGV, env=self.env, cwd=ROOT, stderr=asyncio.subprocess.DEVNULL
        )
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{self.port}/health")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise RuntimeError("HTTP server did not start")

    def client(self, era: str = LEGACY_ERA) -> RawHttp:
        return RawHttp(self.port, self.headers, era)

    async def call(self, client: RawHttp, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """One tools/call: sessionless in a 2025 era; in 2026-07-28, a self-contained request (no handshake)."""
        params: dict[str, Any] = {"name": tool, "arguments": args}
        extra = {}
        if client.era == MODERN_ERA:
            params["_meta"] = MODERN_META
            extra = {"Mcp-Method": "tools/call", "Mcp-Name": tool}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        raw = await client.post("/mcp", json.dumps(body).encode(), extra)
        return json.loads(raw)["result"], len(raw)

    async def stop(self) -> None:
        if self.process:
            self.process.terminate()
            await self.process.wait()

    def rss_mb(self, field: str = "VmHWM") -> float:
        """Peak (VmHWM) or current (VmRSS) RSS of the server process and its workers (the largest one)."""
        if not self.process:
            return 0.0
        pids = [self.process.pid, *children(self.process.pid)]
        return max(rss_mb(pid, field) for pid in pids)


@contextlib.asynccontextmanager
async def fresh_server(env: dict[str, str]) -> AsyncIterator[tuple[HttpServer, RawHttp, float]]:
    """A new HTTP server and client after one call, with its idle RSS: the next call's peak RSS is that call's."""
    server = HttpServer(env)
    await server.start()
    client = server.client()
    try:
        await server.call(client, "execute_sql", {"sql": "SELECT 1"})
        yield server, client, server.rss_mb("VmRSS")
    finally:
        await client.close()
        await server.stop()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- measurement ---------------------------------------------------------------------------------------


@dataclass
class Series:
    samples: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.samples)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

        return {"p50_ms": pct(0.5), "p95_ms": pct(0.95), "p99_ms": pct(0.99), "n": len(ordered),
                "bytes": statistics.median(self.sizes) if self.sizes else 0}  # fmt: skip


async def timed(series: Series, action: Callable[[], Awaitable[int]], times: int) -> None:
    for _ in range(times):
        started = time.perf_counter()
        size = await action()
        series.samples.append(time.perf_counter() - started)
        series.sizes.append(size)


def text_bytes(result: dict[str, Any]) -> int:
    return sum(len(block.get("text", "").encode()) for block in result.get("content", []))


def like_word(word: str) -> str:
    """An ILIKE pattern matching `word` anywhere, its wildcards escaped."""
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def floor_queries(
    conn: psycopg.AsyncConnection[Any], tool: str, args: dict[str, Any], sql: str | None
) -> list[tuple[str, list[Any]]]:
    """A workload's floor: the statements (with their parameters) this process runs in its place."""
    if sql:
        return [(sql, [])]
    if tool == "list_tables":
        return [(LIST_TABLES_FLOOR, [args["schema"]])]
    if tool == "describe_table":
        found = await (await conn.execute("SELECT %s::regclass::oid", [args["table"]])).fetchone()
        assert found is not None
        return [(query.format(oid=int(found[0])), []) for query in DESCRIBE_TABLE_FLOOR]
    if tool == "search_schema":
        return [(SEARCH_SCHEMA_FLOOR, [like_word(args["query"])])]
    raise ValueError(f"no floor for {tool}")


async def floor_action(conn: psycopg.AsyncConnection[Any], workload: str) -> Callable[[], Awaitable[int]]:
    """The workload's floor in this process: its statements on an open connection, one after another, fetching
    every row; the action returns the number of rows."""
    tool, args, sql = WORKLOADS[workload]
    return await floor_action_for(conn, tool, args, sql)


async def floor_action_for(
    conn: psycopg.AsyncConnection[Any], tool: str, args: dict[str, Any], sql: str | None = None
) -> Callable[[], Awaitable[int]]:
    queries = await floor_queries(conn, tool, args, sql)
    raw = psycopg.AsyncRawCursor(conn)

    async def run() -> int:
        rows = 0
        for query, params in queries:
            await raw.execute(query, params or None)  # type: ignore[arg-type]
            rows += len(await raw.fetchall())
        return rows

    return run


async def concurrent_calls(clients: int, seconds: float, call: Callable[[], Awaitable[Any]]) -> float:
    """Calls per second with `clients` concurrent callers for `seconds`."""
    deadline = time.perf_counter() + seconds
    done = 0

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def install_reference() -> Path | None:
    """The archived Node reference server from npm (cached), or None without node and npm."""
    if not (shutil.which("npm") and shutil.which("node")):
        print("npm/node not found: skipping the reference server", file=sys.stderr)
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "postgres-mcp-bench"
    entry = cache / "node_modules/@modelcontextprotocol/server-postgres/dist/index.js"
    if not entry.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(cache), REFERENCE_PACKAGE], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return entry


async def http_throughput(http: HttpServer, clients: int, seconds: float, era: str) -> float:
    """SELECT 1 calls per second from `clients` concurrent keep-alive connections."""
    connections = [http.client(era) for _ in range(clients)]
    queue = list(connections)

    async def call() -> None:
        connection = queue.pop()
        try:
            await http.call(connection, "execute_sql", {"sql": "SELECT 1"})
        finally:
            queue.append(connection)

    rate = await concurrent_calls(clients, seconds, call)
    for connection in connections:
        await connection.close()
    return rate


@contextlib.asynccontextmanager
async def reference_server(entry: Path | None, url: str) -> AsyncIterator[StdioServer | None]:
    if entry is None:
        yield None
        return
    server = StdioServer(["node", str(entry), ps_uri(url)], {**os.environ})
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def ps_uri(conninfo: str) -> str:
    """A postgresql:// URI for clients that take only URIs (node-postgres)."""
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    host = str(params.get("host", "localhost"))
    auth = str(params.get("user", "")) + (f":{params['password']}" if params.get("password") else "")
    if host.startswith("/"):
        return f"postgresql://{auth}@/{params.get('dbname')}?host={host}&port={params.get('port', 5432)}"
    return f"postgresql://{auth}@{host}:{params.get('port', 5432)}/{params.get('dbname')}"


async def run(url: str, rounds: int, per_round: int, reference_entry: Path | None) -> dict[str, Any]:
    env = {**os.environ, "DATABASE_URL": url, "POSTGRES_MAX_ROWS": "1000", "MCP_MAX_RESPONSE_BYTES": "10000000",
           "MCP_LOG_LEVEL": "WARNING", "MCP_POOL_MAX": "8"}  # fmt: skip
    results: dict[str, Any] = {"workloads": {}, "server": {}}
    series: dict[tuple[str, str], Series] = {}
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)

    cold = []
    for _ in range(3):
        server = StdioServer(SERVER_ARGV, env)
        started = await server.start()
        await server.call("execute_sql", {"sql": "SELECT 1"})
        cold.append(time.perf_counter() - started)
        await server.stop()
    results["server"]["cold_start_s"] = statistics.median(cold)

    stdio = StdioServer(SERVER_ARGV, env)
    await stdio.start()
    http = HttpServer(env)
    await http.start()
    client = http.client()
    try:
        async with reference_server(reference_entry, url) as reference:
            for tool, args, _ in WORKLOADS.values():  # warm every path once
                await stdio.call(tool, args)
                await http.call(client, tool, args)
            for round_no in range(rounds):
                for workload, (tool, args, sql) in WORKLOADS.items():
                    floor = await floor_action(conn, workload)
                    await timed(series.setdefault(("floor", workload), Series()), floor, per_round)

                    async def via_stdio(tool: str = tool, args: dict[str, Any] = args) -> int:
                        return text_bytes((await stdio.call(tool, args))[0])

                    async def via_http(tool: str = tool, args: dict[str, Any] = args) -> int:
                        return text_bytes((await http.call(client, tool, args))[0])

                    await timed(series.setdefault(("stdio", workload), Series()), via_stdio, per_round)
                    await timed(series.setdefault(("http", workload), Series()), via_http, per_round)
                    if reference and sql:

                        async def via_reference(sql: str = sql) -> int:
                            return text_bytes((await reference.call("query", {"sql": sql}))[0])

                        await timed(series.setdefault(("reference", workload), Series()), via_reference, per_round)
                print(f"round {round_no + 1}/{rounds} done", file=sys.stderr)

            floor_conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(8)]
            queue = list(floor_conns)

            async def floor_call() -> None:
                c = queue.pop()
                try:
                    await (await c.execute("SELECT 1")).fetchall()
                finally:
                    queue.append(c)

            results["server"]["floor_calls_per_s_8"] = await concurrent_calls(8, 3, floor_call)
            throughput: dict[str, dict[str, float]] = {LEGACY_ERA: {}, MODERN_ERA: {}}
            workers = HttpServer(env, workers=os.cpu_count() or 2)
            await workers.start()
            try:
                for era, by_workers in throughput.items():
                    by_workers["1"] = await http_throughput(http, 8, 3, era)
                    by_workers[workers.env["MCP_WORKERS"]] = await http_throughput(workers, 8, 3, era)
            finally:
                await workers.stop()
            results["server"]["http_calls_per_s_8"] = throughput
            for c in floor_conns:
                await c.close()

            # A fresh server, so that its peak RSS is this query's: idle after one call, then the whole table.
            async with fresh_server(env) as (fresh, fresh_client, idle):
                started = time.perf_counter()
                whole, size = await fresh.call(fresh_client, "execute_sql", {"sql": "SELECT * FROM bench_a.wide"})
                results["server"]["whole_table"] = {
                    "seconds": time.perf_counter() - started, "bytes": size, "text_bytes": text_bytes(whole),
                    "truncated": whole["structuredContent"]["truncated"],
                    "rows": whole["structuredContent"]["row_count"], "idle_rss_mb": idle, "peak_rss_mb": fresh.rss_mb(),
                }  # fmt: skip
            if reference:
                started = time.perf_counter()
                proc = reference.process
                assert proc is not None
                try:
                    ref, _ = await asyncio.wait_for(reference.call("query", {"sql": "SELECT * FROM bench_a.wide"}), 120)
                    results["server"]["reference_whole_table"] = {
                        "seconds": time.perf_counter() - started, "text_bytes": text_bytes(ref),
                        "peak_rss_mb": rss_mb(proc.pid),
                    }  # fmt: skip
                except Exception as exc:  # the reference may run out of memory: that is the point of the test
                    results["server"]["reference_whole_table"] = {"error": type(exc).__name__}

    finally:  # never leave a server behind, whatever failed
        await client.close()
        await stdio.stop()
        await http.stop()
        await conn.close()
    for (who, workload), data in series.items():
        results["workloads"].setdefault(workload, {})[who] = data.summary()
    for workload in results["workloads"].values():
        floor = workload["floor"]["p50_ms"]
        for who in ("stdio", "http", "reference"):
            if who in workload:
                workload[who]["ratio_p50"] = workload[who]["p50_ms"] / floor
    return results


# The targets, p50 over stdio as a multiple of the floor (None: none set).
TARGETS: dict[str, float | None] = {"select_1": 4.0, "wide_1000": 2.0, "list_tables_sales": 2.0,
                                    "describe_wide_events": 2.0, "search_schema": None}  # fmt: skip


async def search_big(url: str, rounds: int, per_round: int) -> dict[str, Any]:
    """search_schema over stdio on the 10,000-table database against its floor, per query: the first call (a fresh
    server), then p50 and p95 of calls interleaved with the floor round by round."""
    env = {**os.environ, "DATABASE_URL": url, "POSTGRES_MAX_ROWS": "1000", "MCP_MAX_RESPONSE_BYTES": "10000000",
           "MCP_LOG_LEVEL": "WARNING"}  # fmt: skip
    series: dict[tuple[str, str], Series] = {}
    found: dict[str, Any] = {}
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    stdio = StdioServer(SERVER_ARGV, env)
    await stdio.start()
    try:
        for word in BIG_SEARCHES:
            started = time.perf_counter()
            result, _ = await stdio.call("search_schema", {"query": word})
            found[word] = {"first_call_ms": (time.perf_counter() - started) * 1000, "text_bytes": text_bytes(result),
                           "is_error": bool(result.get("isError"))}  # fmt: skip
        for _ in range(rounds):
            for word in BIG_SEARCHES:
                args = {"query": word}
                floor = await floor_action_for(conn, "search_schema", args)
                await timed(series.setdefault(("floor", word), Series()), floor, per_round)

                async def via_stdio(args: dict[str, Any] = args) -> int:
                    return text_bytes((await stdio.call("search_schema", args))[0])

                await timed(series.setdefault(("stdio", word), Series()), via_stdio, per_round)
    finally:
        await stdio.stop()
        await conn.close()
    for (who, word), data in series.items():
        found[word][who] = data.summary()
    for data in found.values():
        data["stdio"]["ratio_p50"] = data["stdio"]["p50_ms"] / data["floor"]["p50_ms"]
    return found


def search_markdown(found: dict[str, Any]) -> str:
    lines = [f"search_schema on {BIG_TABLES:,} tables in 10 schemas (stdio; target: well under a second)", "",
             "| query | floor rows | floor p50 / p95 ms | first call ms | stdio p50 / p95 ms | stdio ×floor "
             "| text bytes |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for word, data in found.items():
        floor, stdio = data["floor"], data["stdio"]
        error = " (error)" if data["is_error"] else ""
        lines.append(
            f"| {word} | {floor['bytes']:,.0f} | {floor['p50_ms']:.1f} / {floor['p95_ms']:.1f} | "
            f"{data['first_call_ms']:.1f} | **{stdio['p50_ms']:.1f}** / {stdio['p95_ms']:.1f} | "
            f"{stdio['ratio_p50']:.2f}× | {stdio['bytes']:,.0f}{error} |"
        )
    lines.append(f"\nFloor: {FLOOR_LEGEND['search_schema']}, every row fetched, in this process with psycopg.")
    return "\n".join(lines)


# Read-only SQL an attacker with a valid token can send (issue 10): each must cost the server at most its idle
# memory + 64 MB and answer with a normal (truncated) result.
HOSTILE = {
    "one 400 MB cell": "SELECT repeat('x', 400000000)",
    "500 rows of 2 MB": "SELECT repeat('x', 2000000) FROM generate_series(1, 500)",
    "100 rows of 10 MB": "SELECT repeat('x', 10000000) FROM generate_series(1, 100)",
    "300 MB string_agg": "SELECT string_agg(repeat('y', 1000), ',') FROM generate_series(1, 300000)",
    "150 MB bytea": "SELECT decode(repeat('ff', 75000000), 'hex')",
    # a function scan in FROM spills its rows to temporary files: POSTGRES_TEMP_FILE_LIMIT answers first
    "array_agg of 50 M ints (spills)": "SELECT array_agg(g) FROM generate_series(1, 50000000) g",
    "array_agg of 50 M ints": "SELECT array_agg(g) FROM (SELECT generate_series(1, 50000000)) s(g)",
    "1,600 columns of 2,000 chars": "SELECT "
    + ", ".join(f"repeat('z', 2000) c{i}" for i in range(1600))
    + " FROM generate_series(1, 500)",
    "jsonb 900 deep": "SELECT (repeat('[', 900) || repeat(']', 900))::jsonb",
}


async def hostile(url: str) -> dict[str, Any]:
    """Peak RSS of a fresh server per hostile payload, and a SELECT 1's latency while another client sends a
    statement near MCP_MAX_SQL_BYTES (128 KB), over and over."""
    env = {"DATABASE_URL": url, "PATH": os.environ.get("PATH", ""), "MCP_MAX_RESPONSE_BYTES": "60000"}
    results: dict[str, Any] = {"payloads": {}}
    for name, sql in HOSTILE.items():
        async with fresh_server(env) as (server, client, idle):
            started = time.perf_counter()
            try:
                answer, size = await asyncio.wait_for(server.call(client, "execute_sql", {"sql": sql}), 120)
                data = answer.get("structuredContent") or {}
                outcome = (answer["content"][0]["text"].split(" (")[0] if answer.get("isError")
                           else f"{data['row_count']} rows, truncated={data['truncated']}")  # fmt: skip
            except Exception as exc:  # a crash or a hang is the finding
                outcome, size = f"failed: {type(exc).__name__}", 0
            results["payloads"][name] = {"idle_mb": idle, "peak_mb": server.rss_mb(), "outcome": outcome,
                                         "seconds": time.perf_counter() - started, "bytes": size}  # fmt: skip
    server = HttpServer(env)
    await server.start()
    big = "SELECT count(*) FROM pg_class WHERE oid IN (" + ",".join(str(i) for i in range(20_000)) + ")"
    latencies: list[float] = []
    loud, quiet = server.client(), server.client()
    try:
        await server.call(quiet, "execute_sql", {"sql": "SELECT 1"})
        stop = asyncio.Event()

        async def flood() -> None:
            n = 0
            while not stop.is_set():
                await server.call(loud, "execute_sql", {"sql": f"{big} AND {n} = {n}"})
                n += 1

        task = asyncio.create_task(flood())
        for _ in range(200):
            started = time.perf_counter()
            await server.call(quiet, "execute_sql", {"sql": "SELECT 1"})
            latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.01)
        stop.set()
        await task
    finally:
        await loud.close()
        await quiet.close()
        await server.stop()
    latencies.sort()
    results["concurrent_select_1"] = {"statement_bytes": len(big), "p50_ms": latencies[len(latencies) // 2],
                                      "p99_ms": latencies[int(len(latencies) * 0.99)]}  # fmt: skip
    results["session_flood"] = await session_flood(env)
    results["slow_headers"] = await slow_headers(env)
    return results


async def session_flood(env: dict[str, str], seconds: float = 5) -> dict[str, Any]:
    """One token holder opens stateful sessions (an initialize never followed by anything) from 8 connections
    for `seconds`; then, once half-open sessions should have been ended, opens one more."""
    server = HttpServer({**env, "MCP_API_TOKEN": "bench-token"}, stateless=False)
    await server.start()
    base = f"http://127.0.0.1:{server.port}/mcp"
    headers = {"Authorization": "Bearer bench-token", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": LEGACY_ERA}  # fmt: skip
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY_ERA, "capabilities": {}, "clientInfo": {"name": "f", "version": "1"}},
    }
    statuses: dict[int, int] = {}
    try:
        idle = server.rss_mb("VmRSS")
        deadline = time.perf_counter() + seconds

        async def opener() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                while time.perf_counter() < deadline:
                    status = (await http.post(base, json=body, headers=headers)).status_code
                    statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(opener() for _ in range(8)))
        flooded = server.rss_mb("VmRSS")
        await asyncio.sleep(12)  # past MCP_SESSION_INIT_TIMEOUT_S (10 s)
        async with httpx.AsyncClient(timeout=30) as http:
            after = (await http.post(base, json=body, headers=headers)).status_code
    finally:
        await server.stop()
    return {"seconds": seconds, "statuses": statuses, "idle_mb": idle, "flooded_mb": flooded, "after_12_s": after}


async def slow_headers(env: dict[str, str], connections: int = 500, seconds: float = 15) -> dict[str, Any]:
    """Connections that send a request line and then one header byte a second: how many the server closes."""
    server = HttpServer(env)
    await server.start()
    closed_at: list[float] = []
    started = time.perf_counter()

    async def trickle() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            while time.perf_counter() - started < seconds:
                with contextlib.suppress(TimeoutError):
                    if await asyncio.wait_for(reader.read(1), 1) == b"":
                        closed_at.append(time.perf_counter() - started)
                        return
                writer.write(b"X")
        except OSError:
            closed_at.append(time.perf_counter() - started)
        finally:
            writer.close()

    try:
        await asyncio.gather(*(trickle() for _ in range(connections)))
    finally:
        await server.stop()
    return {"connections": connections, "seconds": seconds, "closed": len(closed_at),
            "latest_close_s": max(closed_at) if closed_at else None}  # fmt: skip


# What each tool gives the model: Claude Code passes only the JSON of structuredContent when a result has one;
# other clients pass the text content. Both must be lean.
CONTEXT_CALLS = {
    "list_schemas": ("list_schemas", {}),
    "list_tables bench_a (100 tables)": ("list_tables", {"schema": "bench_a"}),
    "list_tables sales (104)": ("list_tables", {"schema": "sales"}),
    "describe_table sales.wide_events": ("describe_table", {"table": "sales.wide_events"}),
    "search_schema customer": ("search_schema", {"query": "customer"}),
    "describe_table bench_a.wide": ("describe_table", {"table": "bench_a.wide"}),
    "describe_table bench_a.t050": ("describe_table", {"table": "bench_a.t050"}),
    "get_relationships bench_a.t050": ("get_relationships", {"table": "bench_a.t050"}),
    "list_enums": ("list_enums", {}),
    "execute_sql 1,000 wide rows": ("execute_sql", {"sql": WORKLOADS["wide_1000"][1]["sql"], "max_rows": 1000}),
}


async def context(url: str) -> dict[str, Any]:
    """Bytes of tools/list, and per tool call the bytes of its text content and of its structured content as
    compact JSON (what Claude Code hands the model)."""
    env = {"DATABASE_URL": url, "PATH": os.environ.get("PATH", ""), "MCP_MAX_RESPONSE_BYTES": "1000000",
           "POSTGRES_MAX_ROWS": "1000"}  # fmt: skip
    server = StdioServer(SERVER_ARGV, env)
    await server.start()
    try:
        listed, _ = await server.request("tools/list", {})
        found: dict[str, Any] = {"tools_list_bytes": len(json.dumps(listed["result"], separators=(",", ":")))}
        for name, (tool, args) in CONTEXT_CALLS.items():
            result, _ = await server.call(tool, args)
            structured = result.get("structuredContent")
            compact = json.dumps(structured, separators=(",", ":"), ensure_ascii=False) if structured else ""
            found[name] = {"text": text_bytes(result), "structured": len(compact.encode())}
    finally:
        await server.stop()
    return found


# The targets for what the model reads: bytes of tools/list; structured ÷ text for every call; bytes of
# one call's structured content, or of both its forms.
CONTEXT_TOOLS_LIST_BYTES = 6_000
CONTEXT_RATIO = 1.10
CONTEXT_STRUCTURED_BYTES = {"describe_table sales.wide_events": 2_400}
CONTEXT_BOTH_BYTES = {"execute_sql 1,000 wide rows": 250_000}


def missed(value: float, limit: float) -> str:
    return " **MISSED**" if value > limit else ""


def context_markdown(found: dict[str, Any]) -> str:
    listed, limit = found["tools_list_bytes"], CONTEXT_TOOLS_LIST_BYTES
    lines = [f"tools/list: **{listed:,} bytes** (target ≤ {limit:,}){missed(listed, limit)}", "",
             "| call | text bytes | structured JSON bytes | structured ÷ text | target |",
             "|---|---|---|---|---|"]  # fmt: skip
    for name in CONTEXT_CALLS:
        data = found[name]
        text, structured = data["text"], data["structured"]
        ratio = structured / text if text else 0
        targets = [f"÷ ≤ {CONTEXT_RATIO:.2f}{missed(ratio, CONTEXT_RATIO)}"]
        if name in CONTEXT_STRUCTURED_BYTES:
            limit = CONTEXT_STRUCTURED_BYTES[name]
            targets.append(f"structured ≤ {limit:,}{missed(structured, limit)}")
        if name in CONTEXT_BOTH_BYTES:
            limit = CONTEXT_BOTH_BYTES[name]
            targets.append(f"each form ≤ {limit:,}{missed(max(text, structured), limit)}")
        lines.append(f"| {name} | {text:,} | {structured:,} | {ratio:.2f} | {'; '.join(targets)} |")
    return "\n".join(lines)


def hostile_markdown(results: dict[str, Any]) -> str:
    lines = ["| hostile payload | idle MB | peak MB | answer | seconds | target |", "|---|---|---|---|---|---|"]
    for name, data in results["payloads"].items():
        lines.append(f"| {name} | {data['idle_mb']:.0f} | **{data['peak_mb']:.0f}** | {data['outcome']} | "
                     f"{data['seconds']:.1f} | ≤ idle + 64 MB |")  # fmt: skip
    latency, flood, slow = results["concurrent_select_1"], results["session_flood"], results["slow_headers"]
    closed = f"the last after {slow['latest_close_s']:.1f} s" if slow["latest_close_s"] else "none closed"
    lines += [
        f"\n- SELECT 1 while another client sends {latency['statement_bytes']:,}-byte statements: p50 "
        f"**{latency['p50_ms']:.1f} ms**, p99 **{latency['p99_ms']:.1f} ms** (target p99 < 100 ms)",
        f"- one token opening sessions for {flood['seconds']:.0f} s without using them: HTTP statuses "
        f"{flood['statuses']}, RSS {flood['idle_mb']:.0f} → {flood['flooded_mb']:.0f} MB; a new session 12 s later: "
        f"**{flood['after_12_s']}**",
        f"- {slow['connections']} connections trickling header bytes for {slow['seconds']:.0f} s: "
        f"**{slow['closed']} closed** by the server ({closed})",
    ]
    return "\n".join(lines)


def target_cell(target: float | None, ratio: float) -> str:
    if target is None:
        return "—"
    return f"≤ {target}×" + (" **MISSED**" if ratio > target else "")


def markdown(results: dict[str, Any]) -> str:
    lines = ["| workload | floor p50 ms | stdio p50 / p95 / p99 ms | stdio ×floor | HTTP ×floor | reference ×floor "
             "| text bytes (ours / reference) | target |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, data in results["workloads"].items():
        stdio, http, ref = data["stdio"], data["http"], data.get("reference")
        ref_ratio = f"{ref['ratio_p50']:.2f}×" if ref else "—"
        ref_bytes = f" / {ref['bytes']:,.0f}" if ref else ""
        lines.append(
            f"| {name} | {data['floor']['p50_ms']:.3f} | {stdio['p50_ms']:.2f} / {stdio['p95_ms']:.2f} / "
            f"{stdio['p99_ms']:.2f} | **{stdio['ratio_p50']:.2f}×** | {http['ratio_p50']:.2f}× | {ref_ratio} | "
            f"{stdio['bytes']:,.0f}{ref_bytes} | {target_cell(TARGETS.get(name), stdio['ratio_p50'])} |"
        )
    legend = "; ".join(f"{name}: {FLOOR_LEGEND[WORKLOADS[name][0]]}" for name in results["workloads"])
    lines.append(f"\nFloors, run in this process with psycopg on an open connection, every row fetched: {legend}.")
    server = results["server"]
    whole = server["whole_table"]
    floor_rate = server["floor_calls_per_s_8"]
    lines += [
        "",
        f"- cold start to first result (stdio): **{server['cold_start_s']:.3f} s** (target ≤ 0.6 s)",
        f"- 8 concurrent HTTP clients, SELECT 1 (floor: {floor_rate:,.0f} calls/s; target ≥ 0.14×):",
    ]
    for era, by_workers in server["http_calls_per_s_8"].items():
        rates = ", ".join(f"{n} worker{'s' if n != '1' else ''}: {rate:,.0f} calls/s = **{rate / floor_rate:.3f}×**"
                          for n, rate in by_workers.items())  # fmt: skip
        lines.append(f"  - protocol {era}: {rates}")
    lines += [
        f"- whole {WIDE_ROWS:,}-row table over HTTP: **{whole['seconds']:.3f} s**, server peak RSS "
        f"**{whole['peak_rss_mb']:.0f} MB** (idle {whole['idle_rss_mb']:.0f} MB), {whole['rows']} rows, "
        f"{whole['text_bytes']:,} text bytes, "
        f"truncated={whole['truncated']} (targets ≤ 0.1 s, ≤ 100 MB, truncated)",
        f"- text bytes for 1,000 wide rows: **{results['workloads']['wide_1000']['stdio']['bytes']:,.0f}** "
        "(target ≤ 450 KB)",
    ]
    if "reference_whole_table" in server:
        lines.append(f"- reference server, whole table: {server['reference_whole_table']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="superuser connection string (default: an embedded PostgreSQL)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=100)
    parser.add_argument("--reference", action="store_true", help=f"also run {REFERENCE_PACKAGE} (needs npm)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the benchmark database")
    parser.add_argument("--json", default="bench-results.json", help="where to write the JSON results")
    parser.add_argument("--hostile", action="store_true", help="only the hostile payloads: peak RSS and latency")
    parser.add_argument("--context", action="store_true", help="only what each tool gives the model, in bytes")
    parser.add_argument("--search", action="store_true", help=f"only search_schema on {BIG_TABLES:,} tables")
    # --rebuild with --search rebuilds the 10,000-table database only
    args = parser.parse_args()
    server = None
    admin_url = args.url
    if not admin_url:
        import pgserver

        server = pgserver.get_server(tempfile.mkdtemp(prefix="pg-mcp-bench-"), cleanup_mode="delete")
        admin_url = server.get_uri()
    url = build_big_database(admin_url, args.rebuild) if args.search else build_database(admin_url, args.rebuild)
    # This process parses every answer: its own full garbage collections, scanning everything imported, added
    # 40 ms to one timed call in twenty, floor included. Frozen, they stay short (switched off instead, the
    # SELECT 1 floor measured 40% slower, which would flatter every ratio).
    gc.freeze()
    if args.context:
        found = asyncio.run(context(url))
        Path(args.json).write_text(json.dumps(found, indent=1))
        print(context_markdown(found))
        return 0
    if args.search:  # the rounds as given, a tenth of the calls per round: a search of the big catalog is slower
        found = asyncio.run(search_big(url, args.rounds, max(1, args.per_round // 10)))
        Path(args.json).write_text(json.dumps(found, indent=1))
        print(search_markdown(found))
        return 0
    if args.hostile:
        found = asyncio.run(hostile(url))
        Path(args.json).write_text(json.dumps(found, indent=1))
        print(hostile_markdown(found))
        return 0
    results = asyncio.run(run(url, args.rounds, args.per_round, install_reference() if args.reference else None))
    Path(args.json).write_text(json.dumps(results, indent=1))
    print(markdown(results))
    print(f"\n(JSON written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
