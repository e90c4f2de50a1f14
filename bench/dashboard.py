"""The dashboard's aggregates on a million subscribers: fill a private PostgreSQL database, time each query.

    .venv/bin/python bench/dashboard.py [--subscribers 1000000] [--digests 100] [--per-digest 10000]
                                        [--rounds 5] [--explain]

Creates a private database (on 127.0.0.1:5432 as postgres when that answers, else a throwaway cluster),
migrates it and fills it in SQL (INSERT … SELECT generate_series, seeded): subscribers created over two
years — 60% confirmed, 10% pending, 22% unsubscribed, 8% suppressed, topics any of the seven masks — with
a "confirm" consent event for everyone who confirmed and an "unsubscribe" one for everyone who left that
way; then ``--digests`` weekly real digests, each with ``--per-digest`` deliveries (96% sent, 2% failed,
2% bounced), and VACUUM ANALYZE. Then it times the dashboard's queries: "cold" is the first run on a new
connection after the fill, "warm" the median of ``--rounds`` more, and last the whole dashboard_figures()
(every query plus drawing) uncached, then cached.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import psycopg
from servers import ROOT
from sqlalchemy import event
from web import Database

sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402

from mailer import create_app  # noqa: E402
from mailer.extensions import db  # noqa: E402
from mailer.staff import charts, overview  # noqa: E402

FILL = [
    (
        "subscribers",
        """
        INSERT INTO subscribers (email, status, topics, link_version, created_at, updated_at, confirmed_at,
                                 unsubscribed_at, suppressed_at, suppressed_reason)
        SELECT 'bench-' || g || '@example.org', status, topics, 1, created, created, confirmed,
               CASE WHEN status = 'unsubscribed' THEN confirmed + (now() - confirmed) * random() END,
               CASE WHEN status = 'suppressed' THEN confirmed + (now() - confirmed) * random() END,
               CASE WHEN status = 'suppressed' THEN '550 5.1.1 user unknown' END
        FROM (
            SELECT g, status, topics, created,
                   CASE WHEN status <> 'pending' THEN created + interval '1 minute' * floor(random() * 2880) END
                       AS confirmed
            FROM (
                SELECT g, 1 + floor(random() * 7)::int AS topics, now() - interval '730 days' * random() AS created,
                       CASE WHEN r < 0.60 THEN 'confirmed' WHEN r < 0.70 THEN 'pending'
                            WHEN r < 0.92 THEN 'unsubscribed' ELSE 'suppressed' END AS status
                FROM (SELECT g, random() AS r FROM generate_series(1, %(subscribers)s) AS g) AS drawn
            ) AS chosen
        ) AS stamped
        """,
    ),
    (
        "consent events",
        """
        INSERT INTO consent_events (subscriber_id, event, occurred_at, source)
        SELECT id, 'confirm', confirmed_at, 'link' FROM subscribers WHERE confirmed_at IS NOT NULL
        UNION ALL
        SELECT id, 'unsubscribe', unsubscribed_at, 'link' FROM subscribers WHERE status = 'unsubscribed'
        """,
    ),
    (
        "digests",
        """
        INSERT INTO digests (number, subject, status, is_test, until, content, topics, created_at, started_at,
                             sent_at)
        SELECT n, 'Digest ' || n, 'sent', false, sent, '{}'::json, 7, sent, sent, sent + interval '20 minutes'
        FROM (SELECT n, now() - interval '1 week' * (%(digests)s - n) - interval '2 days' AS sent
              FROM generate_series(1, %(digests)s) AS n) AS weekly
        """,
    ),
    (
        "deliveries",
        # 7919 is prime and shares no factor with 10**6: a digest's subscribers are distinct.
        """
        INSERT INTO deliveries (digest_id, subscriber_id, email, topics, status, attempts, updated_at, sent_at)
        SELECT d.id, s, 'bench-' || s || '@example.org', 7, outcome, 1, d.sent_at,
               CASE WHEN outcome <> 'failed' THEN d.sent_at END
        FROM digests AS d
        CROSS JOIN LATERAL (
            SELECT ((g::bigint * 7919 + d.id * 104729) %% %(subscribers)s) + 1 AS s,
                   CASE WHEN random() < 0.96 THEN 'sent' WHEN random() < 0.5 THEN 'failed' ELSE 'bounced' END
                       AS outcome
            FROM generate_series(1, %(per_digest)s) AS g
        ) AS picked
        """,
    ),
]


def fill(url: str, args: argparse.Namespace) -> None:
    """Fill the migrated database; print how long each table took."""
    values = {"subscribers": args.subscribers, "digests": args.digests, "per_digest": args.per_digest}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        for what, sql in FILL:
            started = time.perf_counter()
            count = conn.execute(sql, values).rowcount
            print(f"fill {what:<15} {count:>9,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"fill {'vacuum analyze':<15} {'':>9}       {time.perf_counter() - started:6.1f} s", flush=True)


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """Milliseconds of the first call and the median of ``rounds`` more."""
    started = time.perf_counter()
    call()
    cold = (time.perf_counter() - started) * 1000
    warm = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        warm.append((time.perf_counter() - started) * 1000)
    return cold, statistics.median(warm)


def explain(call: Callable[[], object]) -> None:
    """Print PostgreSQL's EXPLAIN ANALYZE of every statement ``call`` runs."""
    statements: list[tuple[str, object]] = []

    def record(conn: object, cursor: object, statement: str, parameters: object, context: object, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    with db.engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()
        for statement, parameters in statements:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            print("\n".join("    " + row[0] for row in cursor.fetchall()))


def measure(app_url: str, rounds: int, show_plans: bool) -> None:
    """Time each of the dashboard's aggregate queries, then the whole figures, uncached and cached."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": app_url, "TESTING": True})
    cases: list[tuple[str, Callable[[], object]]] = [
        ("weekly_audience (joins, leaves, confirmed now)", charts.weekly_audience),
        ("topic_audience", charts.topic_audience),
        ("digest_outcomes (3 queries)", charts.digest_outcomes),
        ("audience (counts by status)", overview.audience),
        ("recent_digests (the table, not cached)", overview.recent_digests),
    ]
    print(f"{'query':<48} {'cold ms':>9} {'warm ms':>9}")
    with app.app_context():
        for name, call in cases:
            db.session.remove()
            db.engine.dispose()  # a new connection: no plan or catalogue cache carried over
            cold, warm = timed(call, rounds)
            print(f"{name:<48} {cold:9.1f} {warm:9.1f}", flush=True)
            if show_plans:
                explain(call)

        def uncached() -> object:
            app.extensions.pop("dashboard_figures", None)
            return overview.dashboard_figures()

        cold, warm = timed(uncached, rounds)
        print(f"{'dashboard_figures(), uncached':<48} {cold:9.1f} {warm:9.1f}")
        cold, warm = timed(overview.dashboard_figures, rounds)
        print(f"{'dashboard_figures(), cached':<48} {cold:9.3f} {warm:9.3f}")
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    """Create, migrate and fill the database, measure, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--digests", type=int, default=100)
    parser.add_argument("--per-digest", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="print each query's EXPLAIN ANALYZE")
    args = parser.parse_args()
    database = Database()
    url = database.start()
    try:
        app_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        app = create_app({"SQLALCHEMY_DATABASE_URI": app_url, "TESTING": True})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            db.engine.dispose()
        started = time.perf_counter()
        fill(url, args)
        print(f"fill total {time.perf_counter() - started:.1f} s", flush=True)
        measure(app_url, args.rounds, args.explain)
    finally:
        database.stop()


if __name__ == "__main__":
    main()
