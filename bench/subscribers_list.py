"""The console's subscriber list on a million subscribers: fill a private PostgreSQL database, time pages.

    .venv/bin/python bench/subscribers_list.py [--subscribers 1000000] [--rounds 5] [--explain]

Creates a private database (on 127.0.0.1:5432 as postgres when that answers, else a throwaway cluster),
migrates it and fills it in SQL (INSERT … SELECT generate_series, seeded): subscribers created over two
years in id order — 60% confirmed, 10% pending, 22% unsubscribed, 8% suppressed, topics any of the seven
masks — each with a first "subscribe" consent event whose source is form (70%), widget (15%), api (8%),
import (6.9%) or staff (0.1%), and a "confirm" event for everyone who confirmed; then VACUUM ANALYZE.
Then it times ``subscriber_page`` (the list's one query, 50 rows) for the first page and a deep page
(``before`` the 5,000th id) of each filter: "cold" is the first call on a new connection, "warm" the
median of ``--rounds`` more.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import psycopg
from dashboard import explain, timed
from servers import ROOT
from web import Database
from werkzeug.datastructures import MultiDict

sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402

from mailer import create_app  # noqa: E402
from mailer.extensions import db  # noqa: E402
from mailer.staff.subscriber_list import read_filter, subscriber_page  # noqa: E402

FILL = [
    (
        "subscribers",
        """
        INSERT INTO subscribers (email, status, topics, link_version, created_at, updated_at, confirmed_at)
        SELECT 'bench-' || g || '@example.org', status, topics, 1, created, created,
               CASE WHEN status <> 'pending' THEN created + interval '1 hour' END
        FROM (
            SELECT g, 1 + floor(random() * 7)::int AS topics,
                   now() - interval '730 days' * (1 - g::float / %(subscribers)s) AS created,
                   CASE WHEN r < 0.60 THEN 'confirmed' WHEN r < 0.70 THEN 'pending'
                        WHEN r < 0.92 THEN 'unsubscribed' ELSE 'suppressed' END AS status
            FROM (SELECT g, random() AS r FROM generate_series(1, %(subscribers)s) AS g) AS drawn
        ) AS chosen
        ORDER BY g
        """,
    ),
    (
        "consent events",
        """
        INSERT INTO consent_events (subscriber_id, event, occurred_at, source)
        SELECT id, 'subscribe', created_at,
               CASE WHEN r < 0.70 THEN 'form' WHEN r < 0.85 THEN 'widget' WHEN r < 0.93 THEN 'api'
                    WHEN r < 0.999 THEN 'import' ELSE 'staff' END
        FROM (SELECT id, created_at, random() AS r FROM subscribers ORDER BY id) AS drawn
        UNION ALL
        SELECT id, 'confirm', confirmed_at, 'email' FROM subscribers WHERE confirmed_at IS NOT NULL
        """,
    ),
]

#: (what, query string): each filter alone, a rare one, and all of them at once.
CASES = [
    ("no filter", ""),
    ("status=pending", "status=pending"),
    ("topic=news", "topic=news"),
    ("source=widget", "source=widget"),
    ("source=staff (0.1%)", "source=staff"),
    ("joined in one month a year ago", "from={year_ago}&to={month_later}"),
    ("q=bench-4242 (0.1% of addresses)", "q=bench-4242"),
    ("q=77@ (1% of addresses)", "q=77@"),
    ("all: confirmed, news, form, month, q=1", "status=confirmed&topic=news&source=form&from={year_ago}"
     "&to={month_later}&q=1"),
]  # fmt: skip
DEEP = 5000


def fill(url: str, subscribers: int) -> None:
    """Fill the migrated database; print how long each table took."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT setseed(0.42)")
        for what, sql in FILL:
            started = time.perf_counter()
            count = conn.execute(sql, {"subscribers": subscribers}).rowcount
            print(f"fill {what:<15} {count:>9,} rows  {time.perf_counter() - started:6.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        print(f"fill {'vacuum analyze':<15} {'':>9}       {time.perf_counter() - started:6.1f} s", flush=True)


def page(query: str) -> Callable[[], int]:
    """One call of the list's query for this query string; returns how many rows it showed."""
    filters = read_filter(MultiDict([pair.split("=", 1) for pair in query.split("&") if pair]))
    return lambda: len(subscriber_page(filters, 50)[0])


def measure(app_url: str, rounds: int, show_plans: bool) -> None:
    """Time the first and a deep page of each case."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": app_url, "TESTING": True})
    today = time.gmtime()
    year_ago = f"{today.tm_year - 1}-{today.tm_mon:02d}-01"
    month_later = f"{today.tm_year - 1}-{today.tm_mon:02d}-28"
    print(f"{'filter':<42} {'page':<6} {'rows':>4} {'cold ms':>9} {'warm ms':>9}")
    with app.app_context():
        for name, template in CASES:
            query = template.format(year_ago=year_ago, month_later=month_later)
            for depth, extra in (("first", ""), ("deep", f"&before={DEEP}")):
                call = page(query + extra)
                db.session.remove()
                db.engine.dispose()  # a new connection: no plan or catalogue cache carried over
                cold, warm = timed(call, rounds)
                print(f"{name:<42} {depth:<6} {call():>4} {cold:9.1f} {warm:9.1f}", flush=True)
                if show_plans:
                    explain(call)
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    """Create, migrate and fill the database, measure, drop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
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
        fill(url, args.subscribers)
        print(f"fill total {time.perf_counter() - started:.1f} s", flush=True)
        measure(app_url, args.rounds, args.explain)
    finally:
        database.stop()


if __name__ == "__main__":
    main()
