"""Public pages under load: mailer's gunicorn beside a hello-world app on the same gunicorn, measured with wrk.

    .venv/bin/python bench/web.py [--duration 3] [--rounds 5] [--connections 20] [--app-dir PATH]

Starts a private Redis and a private PostgreSQL database (a new database on 127.0.0.1:5432 as
postgres when that answers, else a throwaway cluster), migrates it, imports the example content
and marks one digest sent, then starts gunicorn exactly as the Procfile's ``web`` line (plus
``--no-control-socket``) for mailer and for bench/hello.py. Each endpoint is measured beside
hello-world in the same run (alternating short runs, medians), so the ratio holds on a busy shared
machine. The limiter stays on; its limits are raised (RATELIMIT_*) because every wrk client comes
from 127.0.0.1, and the subscribe script sends a distinct address per request.
``--app-dir`` serves another checkout (``git archive <commit> | tar -x -C DIR``) to compare commits.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
from servers import ROOT, Postgres, Redis, free_port, start, stop, wait_until

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
VENV_BIN = ROOT / ".venv" / "bin"
SUBSCRIBE_LUA = """\
local threads, counter = 0, 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local body = string.format('{"email":"bench-%s-%d-%d@bench.example.org","topics":["news"]}', run, tid, counter)
  return wrk.format("POST", "/api/v1/subscriptions", {["Content-Type"] = "application/json"}, body)
end
"""


class Database:
    """A private database: on the machine's PostgreSQL if it answers, else in a throwaway cluster."""

    def __init__(self) -> None:
        self.name = f"mailer_bench_http_{uuid.uuid4().hex[:8]}"
        self.cluster: Postgres | None = None
        self.admin_url = LOCAL_POSTGRES

    def start(self) -> str:
        """Create the database; return its URL."""
        try:
            psycopg.connect(LOCAL_POSTGRES, connect_timeout=2).close()
        except psycopg.OperationalError:
            self.cluster = Postgres()
            self.cluster.start()
            self.admin_url = self.cluster.admin_url
            return self.cluster.create_database(self.name)
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return LOCAL_POSTGRES.rsplit("/", 1)[0] + f"/{self.name}"

    def stop(self) -> None:
        """Drop the database (and stop the throwaway cluster)."""
        if self.cluster is not None:
            self.cluster.stop()
            return
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def procfile_web(port: int, app: str) -> list[str]:
    """The Procfile's ``web`` command for ``app`` on ``port``, with gunicorn's control socket off."""
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("web:"))
    chosen = {"PORT": str(port), "WEB_CONCURRENCY": "2"}
    # ${NAME:-default}: the port is ours, two workers as on this machine, every other setting its default.
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: chosen.get(m[1], m[2]), line.split(":", 1)[1])
    argv = shlex.split(line.replace("wsgi:app", app))
    return [str(VENV_BIN / argv[0]), *argv[1:], "--no-control-socket"]


def wait_for_http(url: str) -> None:
    """Wait until ``url`` answers at all (any status)."""

    def answers() -> bool:
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=2).close()
        return True

    wait_until(answers, url)


def wrk(url: str, connections: int, duration: int, script: Path | None = None) -> dict[str, float]:
    """Run wrk against ``url``; return req/s, p99 latency in ms and non-2xx/3xx plus socket errors."""
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return {"rate": rate, "p99": p99, "bad": (int(bad.group(1)) if bad else 0) + errors}


def prepare(env: dict[str, str], app_dir: Path, log: Path) -> str:
    """Migrate, import the example content, leave one sent digest in the archive; return a meeting's slug."""
    flask = [str(VENV_BIN / "flask"), "--app", "wsgi"]
    content = ROOT / "examples" / "smewg-content.json"
    for args in (["db", "upgrade"], ["content", "import", str(content)], ["digest", "send"]):
        with log.open("ab") as out:
            subprocess.run([*flask, *args], env=env, cwd=app_dir, check=True, stdout=out, stderr=subprocess.STDOUT)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        # No worker runs here: mark the queued digest sent as the send engine would at its end.
        conn.execute("UPDATE digests SET status = 'sent', started_at = now(), sent_at = now()")
        return conn.execute("SELECT slug FROM meetings ORDER BY start_date DESC LIMIT 1").fetchone()[0]


def measure(base: str, hello: str, slug: str, args: argparse.Namespace, folder: Path) -> None:
    """Measure every endpoint right after hello-world and print one table row each."""
    script = folder / "subscribe.lua"
    # A fresh run id per run keeps addresses distinct across runs against the same database.
    script.write_text(f'run = "{uuid.uuid4().hex[:8]}"\n' + SUBSCRIBE_LUA)
    cases = [
        ("GET /", "/", None),
        ("GET /archive/", "/archive/", None),
        ("GET /archive/feed.atom", "/archive/feed.atom", None),
        (f"GET /meetings/{slug}.ics", f"/meetings/{slug}.ics", None),
        ("POST /api/v1/subscriptions", "/api/v1/subscriptions", script),
    ]
    cases = [case for case in cases if not args.only or any(word in case[0] for word in args.only)]
    print(f"{'endpoint':<44} {'req/s':>8} {'hello':>8} {'ratio':>6} {'p99 ms':>7} {'hello p99':>9} {'non-2xx':>7}")
    for name, path, lua in cases:
        wrk(base + path, args.connections, 2, lua)  # warm-up: fills connection pools and caches
        mailer, hello_world = [], []
        for _ in range(args.rounds):
            # Alternate short runs: a neighbour's load on the shared machine then hits both sides alike.
            hello_world.append(wrk(hello + ("/" if lua is None else path), args.connections, args.duration, lua))
            mailer.append(wrk(base + path, args.connections, args.duration, lua))
        ours, theirs = _median(mailer), _median(hello_world)
        bad = sum(run["bad"] for run in mailer)
        print(
            f"{name:<44} {ours['rate']:>8.0f} {theirs['rate']:>8.0f} {ours['rate'] / theirs['rate']:>5.2f}x "
            f"{ours['p99']:>7.1f} {theirs['p99']:>9.1f} {bad:>7.0f}",
            flush=True,
        )


STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")


def by_state(env: dict[str, str], port: int, rounds: int) -> None:
    """Median answer time of the subscribe API per state of the address, requests interleaved on one connection.

    Equal work, equal time: the answer must not tell a suppressed (bounced) address from any other.
    """
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        for state in STATES[1:]:
            conn.execute(
                "INSERT INTO subscribers (email, status, topics, link_version, created_at, updated_at) "
                "VALUES (%s, %s, 7, 1, now(), now())",
                (f"state-{state}@bench.example.org", state),
            )
    connection = http.client.HTTPConnection("127.0.0.1", port)
    times: dict[str, list[float]] = {state: [] for state in STATES}
    for n in range(rounds):
        for state in STATES:
            # A new address each time for "new"; the others are the same known address again and again.
            email = f"state-new-{n}@bench.example.org" if state == "new" else f"state-{state}@bench.example.org"
            body = json.dumps({"email": email})
            started = time.perf_counter()
            connection.request("POST", "/api/v1/subscriptions", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            times[state].append((time.perf_counter() - started) * 1000)
            assert response.status == 202, response.status
    medians = {state: statistics.median(values) for state, values in times.items()}
    print(f"answer time by address state ({rounds} interleaved requests each, one keep-alive connection):")
    for state, median in medians.items():
        print(f"  {state:<13} median {median:6.2f} ms   p90 {statistics.quantiles(times[state], n=10)[-1]:6.2f} ms")
    spread = max(medians.values()) - min(medians.values())
    print(f"  spread of the medians: {spread:.2f} ms ({spread / statistics.median(medians.values()):.0%})")


DRAIN = """\
import time
from wsgi import app
from mailer.subscriptions.inbox import process_inbox
with app.app_context():
    started = time.perf_counter()
    done = process_inbox()
    print(done, time.perf_counter() - started)
"""


def drain(env: dict[str, str], app_dir: Path) -> None:
    """Record what the subscribe runs left in the inbox, in one process as a worker does; print the rate."""
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-c", DRAIN], env=env, cwd=app_dir, check=True, capture_output=True, text=True
    ).stdout.split()
    done, seconds = int(out[0]), float(out[1])
    print(f"worker side: {done} subscribe requests recorded in {seconds:.1f} s by one process: {done / seconds:.0f}/s")


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median rate and the median p99 of several wrk runs."""
    return {key: statistics.median(run[key] for run in runs) for key in ("rate", "p99")}


def main() -> None:
    """Start the servers, measure, stop everything (also on error or Ctrl-C)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating hello/mailer runs per endpoint")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--state-rounds", type=int, default=300, help="requests per address state")
    parser.add_argument("--only", nargs="*", help="measure only endpoints whose name holds one of these words")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout to serve (default: this one)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    folder = Path(tempfile.mkdtemp(prefix="mailer-bench-http-"))
    log = folder / "bench.log"
    redis_server, database, procs = Redis(folder), Database(), []
    try:
        redis_server.start()
        port, hello_port = free_port(), free_port()
        env = {
            **os.environ,
            "MAILER_ENV": "production",
            "SECRET_KEY": "bench-" + "x" * 40,
            "BASE_URL": f"http://127.0.0.1:{port}",
            "DATABASE_URL": database.start(),
            "REDIS_URL": redis_server.url,
            "SMTP_URL": f"smtp://127.0.0.1:{free_port()}",
            "MAIL_FROM": "Bench News <news@bench.example.org>",
            "ORG_POSTAL_ADDRESS": "1 Example Street, Singapore",
            "RATELIMIT_SUBSCRIBE_IP": "10000000 per hour",
            "RATELIMIT_CONFIRM_ADDRESS": "10000000 per hour",
            "RATELIMIT_CONFIRM_DOMAIN": "10000000 per hour",
        }
        slug = prepare(env, args.app_dir, log)
        procs.append(start(procfile_web(port, "wsgi:app"), log, env=env, cwd=args.app_dir))
        procs.append(start(procfile_web(hello_port, "bench.hello:app"), log, cwd=ROOT))
        base, hello = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{hello_port}"
        wait_for_http(base + "/healthz")
        wait_for_http(hello + "/")
        print(
            f"mailer from {args.app_dir}, {args.connections} connections, {args.rounds} x {args.duration} s, log {log}"
        )
        measure(base, hello, slug, args, folder)
        if not args.only or any("POST" in word for word in args.only):
            by_state(env, port, args.state_rounds)
            drain(env, args.app_dir)
    finally:
        for proc in procs:
            stop(proc)
        redis_server.stop()
        database.stop()


if __name__ == "__main__":
    main()
