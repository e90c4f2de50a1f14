"""Sending a digest end to end: mailer's msg/s next to raw smtplib on the same machine, in one run.

Run as root: ``.venv/bin/python bench/send.py [--counts 10000,100000] [--quick] [--dkim]``.

It starts a private PostgreSQL (with pg_stat_statements), Redis and Postfix's smtp-sink, and
for each N: migrates a fresh database, imports the example content and N confirmed subscribers
through ``flask --app wsgi subscribers import``, starts the Procfile's ``worker`` and ``beat``,
runs ``flask --app wsgi digest send`` and follows the deliveries in the database until the last
one is final. Then two processes with one smtplib connection each send N copies of the message
mailer sent (captured beforehand from a one-subscriber digest) to the same sink. Everything it
started is stopped at the end, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import shlex
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psutil
import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from servers import ROOT, CaptureSink, Postgres, Redis, SmtpSink, start, stop, wait_until

VENV_BIN = ROOT / ".venv" / "bin"
CONTENT = Path("examples") / "smewg-content.json"
#: Every variable mailer reads: the benchmark sets its own and inherits none from the shell.
MAILER_VARIABLES = (
    "MAILER_ENV", "SECRET_KEY", "BASE_URL", "DATABASE_URL", "REDIS_URL", "SMTP_URL", "MAIL_FROM", "ORG_NAME",
    "BOUNCE_ADDRESS", "REPLY_TO", "LIST_ID", "UNSUBSCRIBE_MAILTO", "DKIM_DOMAIN", "DKIM_SELECTOR",
    "DKIM_PRIVATE_KEY", "SEND_RATE", "CORS_ORIGINS", "CONSENT_VERSION", "CHECK_DELIVERABILITY", "PROXY_FIX_HOPS",
    "SEND_BATCH_SIZE", "REDIS_PREFIX", "MAILER_INSTANCE", "WORKER_CONCURRENCY",
)  # fmt: skip
#: Delivery statuses that are not final yet (``sending`` is a claimed row of the new engine).
OPEN_STATUSES = ("queued", "sending")
#: The digest's status, and how many deliveries it has once none of them is open (else NULL).
POLL = """
    SELECT status, CASE WHEN EXISTS (SELECT 1 FROM deliveries WHERE digest_id = %(id)s AND status = ANY(%(open)s))
                   THEN NULL ELSE (SELECT count(*) FROM deliveries WHERE digest_id = %(id)s) END
    FROM digests WHERE id = %(id)s
"""
#: Who the subscribers are: mostly every topic, some one or two (so a digest has a few variants).
TOPIC_MIX = ["meetings projects news"] * 7 + ["meetings", "projects news", "news"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.jp", "apec.org", "sme.gov.pe", "kemenkopukm.go.id", "example.org"]
RAW_PROCESSES = 2
TARGET_MSG_S, TARGET_MSG_S_DKIM, TARGET_RATIO = 3000, 1000, 0.8
TARGET_SQL, TARGET_RSS_GROWTH, TARGET_RETURN_S, TARGET_IMPORT = 0.05, 1.2, 1.0, 20000


@dataclass
class Run:
    """The figures of one send of N messages."""

    count: int
    dkim: bool
    import_s: float = 0.0
    startup_s: float = 0.0
    send_return_s: float = 0.0
    first_sink_s: float | None = None
    first_db_s: float | None = None
    done_s: float = 0.0
    digest_sent_s: float | None = None
    sent: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    sink_received: int = 0
    worker_cpu_s: float = 0.0
    db_cpu_s: float = 0.0
    sql_calls: int = 0
    top_sql: list[tuple[int, str]] = field(default_factory=list)
    rss_peak: int = 0
    raw_msg_s: float = 0.0
    message_size: int = 0

    @property
    def label(self) -> str:
        """``plain`` or ``dkim``."""
        return "dkim" if self.dkim else "plain"

    @property
    def msg_s(self) -> float:
        """Messages sent per second, from the command to the last final delivery row."""
        return self.sent / self.done_s if self.done_s else 0.0

    @property
    def import_rows_s(self) -> float:
        """Rows imported per second, not counting the CLI's start-up."""
        return self.count / max(self.import_s - self.startup_s, 1e-3)


def main() -> int:
    """Parse options, run every send, print the table; stop everything on the way out."""
    args = parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    runs: list[Run] = []
    try:
        with Bench(args.app_dir.resolve(), args.worker_instances, args.timeout) as bench:
            modes = [False, True] if args.dkim else [False]
            for dkim in modes:
                message = bench.capture_message(dkim)
                for count in args.dkim_counts if dkim else args.counts:
                    run = bench.run(count, dkim, message)
                    runs.append(run)
                    print_run(run)
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        if runs:
            print_table(runs)
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the benchmark the way Ctrl-C does, through the cleanup."""
    raise KeyboardInterrupt


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="10000,100000", help="comma-separated N (default 10000,100000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: N = 2000 only")
    parser.add_argument("--dkim", action="store_true", help="also send with DKIM signing on (RSA-2048)")
    parser.add_argument("--dkim-counts", help="N for the DKIM sends (default: --counts)")
    parser.add_argument("--worker-instances", type=int, default=1, help="Procfile worker processes (default 1)")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the mailer checkout to run (default: this one)")
    parser.add_argument("--timeout", type=float, default=600, help="give up when nothing is sent for this long (s)")
    args = parser.parse_args()
    args.counts = [2000] if args.quick else [int(n) for n in args.counts.split(",")]
    args.dkim_counts = [int(n) for n in args.dkim_counts.split(",")] if args.dkim_counts else args.counts
    args.dkim = args.dkim or bool(args.dkim_counts != args.counts)
    return args


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the figures."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """The private servers, started once, and what each run needs from them."""

    def __init__(self, app: Path, worker_instances: int, timeout: float) -> None:
        self.app = app
        self.worker_instances = worker_instances
        self.timeout = timeout
        self.stack = contextlib.ExitStack()
        self.folder = Path(tempfile.mkdtemp(prefix="mailer-bench-"))
        self.pg = Postgres()
        self.redis = Redis(self.folder)
        self.sink = SmtpSink(self.folder)
        self.dkim_key = self.folder / "dkim.pem"

    def __enter__(self) -> Bench:
        """Start PostgreSQL, Redis and smtp-sink (each stopped on exit, whatever happens)."""
        try:
            for server in (self.pg, self.redis, self.sink):
                self.stack.callback(server.stop)
                server.start()
        except BaseException:
            self.stack.close()
            raise
        log(f"PostgreSQL :{self.pg.port}, Redis :{self.redis.port}, smtp-sink :{self.sink.port}, files {self.folder}")
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop everything, newest first, and remove the files."""
        self.stack.close()
        subprocess.run(["rm", "-rf", str(self.folder)], check=False)

    def env(self, database: str, dkim: bool, smtp_port: int | None = None) -> dict[str, str]:
        """Production-mode environment for one database."""
        env = {k: v for k, v in os.environ.items() if k not in MAILER_VARIABLES}
        env.update(
            PATH=f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            MAILER_ENV="production",
            SECRET_KEY="bench-secret-key-that-is-long-enough-0123456789",
            BASE_URL="https://news.example.org",
            DATABASE_URL=self.pg.url(database),
            REDIS_URL=self.redis.url,
            SMTP_URL=f"smtp://127.0.0.1:{smtp_port or self.sink.port}",
            MAIL_FROM="SMEWG News <news@example.org>",
            ORG_POSTAL_ADDRESS="1 Example Street, Singapore",
            REDIS_PREFIX="bench",
            MAILER_INSTANCE=str(self.folder / "instance"),
        )
        if dkim:
            self.make_dkim_key()
            env.update(DKIM_DOMAIN="example.org", DKIM_SELECTOR="bench", DKIM_PRIVATE_KEY=str(self.dkim_key))
        return env

    def make_dkim_key(self) -> None:
        """An RSA-2048 key for DKIM, made once."""
        if self.dkim_key.exists():
            return
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
        self.dkim_key.write_bytes(pem)

    def prepare(self, database: str, env: dict[str, str], count: int) -> float:
        """Create and migrate the database, import the content and ``count`` subscribers; return import seconds."""
        self.pg.create_database(database)
        flask(self.app, env, "db", "upgrade")
        flask(self.app, env, "content", "import", str(self.app / CONTENT))
        path = self.folder / f"{database}.csv"
        write_subscribers(path, count)
        began = time.perf_counter()
        flask(self.app, env, "subscribers", "import", str(path))
        took = time.perf_counter() - began
        path.unlink()
        return took

    def capture_message(self, dkim: bool) -> bytes:
        """What mailer sends: a one-subscriber digest through a capturing sink, as bytes."""
        database = "mailer_probe_dkim" if dkim else "mailer_probe"
        capture = CaptureSink()
        env = self.env(database, dkim, capture.port)
        self.prepare(database, env, 1)
        capture.start()
        self.redis.flush()
        try:
            with self.processes(env):
                flask(self.app, env, "digest", "send")
                message = capture.message()
        finally:
            capture.stop()
        log(f"mailer's message ({'DKIM' if dkim else 'no DKIM'}): {len(message)} bytes")
        return message

    @contextlib.contextmanager
    def processes(self, env: dict[str, str]) -> Iterator[list[psutil.Process]]:
        """The Procfile's worker and beat for ``env``; yield the worker processes once they are ready."""
        procs: list[subprocess.Popen] = []
        logs = []
        try:
            for n in range(self.worker_instances):
                logs.append(self.folder / f"worker-{n}-{time.monotonic_ns()}.log")
                argv = procfile(self.app, "worker", env) + ["--hostname", f"bench{n}@%h"]
                procs.append(start(argv, logs[-1], env, self.app))
            argv = procfile(self.app, "beat", env)
            argv[argv.index("--schedule") + 1] = str(self.folder / f"beat-schedule-{time.monotonic_ns()}")
            procs.append(start(argv, self.folder / "beat.log", env, self.app))
            for path in logs:
                wait_until(lambda p=path: " ready." in p.read_text(errors="replace"), f"the worker ({path})", 120)
            yield [psutil.Process(p.pid) for p in procs[: self.worker_instances]]
        except BaseException:
            for path in logs:
                tail = path.read_text(errors="replace").splitlines()[-30:] if path.exists() else []
                print(f"--- {path.name} (last lines)\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            for proc in reversed(procs):
                stop(proc, timeout=30)

    def run(self, count: int, dkim: bool, message: bytes) -> Run:
        """Send a digest to ``count`` subscribers, then the same number of raw smtplib messages."""
        run = Run(count=count, dkim=dkim, message_size=len(message))
        database = f"mailer_{count}{'_dkim' if dkim else ''}"
        env = self.env(database, dkim)
        log(f"{run.label} N={count}: preparing the database and importing {count} subscribers")
        run.import_s = self.prepare(database, env, count)
        self.redis.flush()
        with self.processes(env) as workers, psycopg.connect(self.pg.url(database, "postgres"), autocommit=True) as db:
            run.startup_s = min(_timed(lambda: flask(self.app, env, "digest", "--help")) for _ in range(2))
            log(f"{run.label} N={count}: imported in {run.import_s:.1f} s; sending")
            self.measure_send(run, env, workers, db)
        log(f"{run.label} N={count}: raw smtplib, {RAW_PROCESSES} processes")
        run.raw_msg_s = raw_smtplib(self.sink, count, message)
        return run

    def measure_send(
        self, run: Run, env: dict[str, str], workers: list[psutil.Process], db: psycopg.Connection
    ) -> None:
        """Run ``digest send`` and follow it to the last final delivery, sampling CPU, RSS and SQL."""
        expected = db.execute("SELECT count(*) FROM subscribers WHERE status = 'confirmed'").fetchone()[0]
        stats = psycopg.connect(self.pg.admin_url, autocommit=True)
        stats.execute("SELECT pg_stat_statements_reset()")
        postmaster = psutil.Process(self.pg.postmaster_pid())
        cpu_before, db_before = cpu_seconds(workers), cpu_seconds([postmaster])
        sink_before = self.sink.expect_from()
        with RssSampler(workers) as rss:
            began, began_wall = time.perf_counter(), datetime.now(UTC)
            out = flask(self.app, env, "digest", "send")
            run.send_return_s = time.perf_counter() - began
            digest_id = int(out.split()[0])
            self.follow(run, db, digest_id, expected, began)
            run.worker_cpu_s = cpu_seconds(workers) - cpu_before
            run.db_cpu_s = cpu_seconds([postmaster]) - db_before
            run.sql_calls, run.top_sql = sql_statements(stats, db.info.dbname)
        stats.close()
        run.rss_peak = rss.peak
        run.first_sink_s = self.sink.first_at - began if self.sink.first_at else None
        first_db = db.execute("SELECT min(sent_at) FROM deliveries WHERE digest_id = %s", [digest_id]).fetchone()[0]
        run.first_db_s = (first_db - began_wall).total_seconds() if first_db else None
        rows = db.execute("SELECT status, count(*) FROM deliveries WHERE digest_id = %s GROUP BY status", [digest_id])
        run.statuses = dict(rows.fetchall())
        run.sent = run.statuses.get("sent", 0)
        self.sink.wait_for(sink_before + run.sent)
        run.sink_received = self.sink.count - sink_before
        if run.digest_sent_s is None:
            deadline = time.monotonic() + 60
            while run.digest_sent_s is None and time.monotonic() < deadline:
                time.sleep(0.1)
                if _digest_status(db, digest_id) == "sent":
                    run.digest_sent_s = time.perf_counter() - began
        log(flask(self.app, env, "digest", "status", str(digest_id)).strip().replace("\n", ", "))

    def follow(self, run: Run, db: psycopg.Connection, digest_id: int, expected: int, began: float) -> None:
        """Poll the database until no delivery of the digest is open (and all ``expected`` exist)."""
        last_count, last_change, last_report = -1, time.monotonic(), time.monotonic()
        while True:
            # One statement, so one snapshot: deliveries written between two queries (a worker
            # snapshots them after ``digest send`` returned) cannot make an empty queue look done.
            status, total = db.execute(POLL, {"id": digest_id, "open": list(OPEN_STATUSES)}).fetchone()
            now = time.perf_counter()
            if status == "sent" and run.digest_sent_s is None:
                run.digest_sent_s = now - began
            if total is not None and (total >= expected or status == "sent"):
                run.done_s = now - began
                return
            if self.sink.count != last_count:
                last_count, last_change = self.sink.count, time.monotonic()
            elif time.monotonic() - last_change > self.timeout:
                raise RuntimeError(f"nothing reached the sink for {self.timeout:.0f} s (digest {digest_id}: {status})")
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log(f"  {now - began:.0f} s: {self.sink.received} at the sink")
            time.sleep(0.05)


def _digest_status(db: psycopg.Connection, digest_id: int) -> str | None:
    """The digest's status."""
    row = db.execute("SELECT status FROM digests WHERE id = %s", [digest_id]).fetchone()
    return row[0] if row else None


def _timed(call: object) -> float:
    """Seconds ``call()`` took."""
    began = time.perf_counter()
    call()  # type: ignore[operator]
    return time.perf_counter() - began


def flask(app: Path, env: dict[str, str], *args: str) -> str:
    """Run ``flask --app wsgi ARGS`` in checkout ``app``; return stdout, raise with stderr on failure."""
    done = subprocess.run([str(VENV_BIN / "flask"), "--app", "wsgi", *args], env=env, cwd=app,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def procfile(app: Path, name: str, env: dict[str, str]) -> list[str]:
    """The Procfile's command line for process ``name``, with ``${VAR:-default}`` expanded from ``env``."""
    line = next(ln for ln in (app / "Procfile").read_text().splitlines() if ln.startswith(f"{name}:"))
    command = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m[1], m[2]), line.split(":", 1)[1])
    return shlex.split(command)


def write_subscribers(path: Path, count: int) -> None:
    """An import CSV of ``count`` people who consented (so they come in confirmed)."""
    with path.open("w", encoding="utf-8") as out:
        out.write("email,name,topics,consent_at,consent_source,consent_version\n")
        for n in range(count):
            domain = DOMAINS[n % len(DOMAINS)]
            topics = TOPIC_MIX[n % len(TOPIC_MIX)]
            out.write(f"reader.{n}@{domain},Reader {n},{topics},2025-03-0{1 + n % 9}T09:30:00+00:00,bench form,v1\n")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """CPU seconds used by ``procs``, their live children and the children they have reaped."""
    total = 0.0
    for proc in procs:
        times = proc.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    return total


class RssSampler:
    """Samples the summed RSS of the worker processes and their children every 0.1 s; keeps the peak."""

    def __init__(self, procs: list[psutil.Process]) -> None:
        self.procs = procs
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        """Start sampling."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop sampling (one last sample first)."""
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        """Sum RSS over the process trees until stopped."""
        while True:
            total = 0
            for proc in self.procs:
                for member in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        total += member.memory_info().rss
            self.peak = max(self.peak, total)
            if self._stop.wait(0.1):
                return


def sql_statements(db: psycopg.Connection, database: str) -> tuple[int, list[tuple[int, str]]]:
    """Statements mailer (role ``mailer``) ran in ``database`` since the reset, and the most frequent ones."""
    rows = db.execute(
        "SELECT s.calls, regexp_replace(s.query, '\\s+', ' ', 'g') FROM pg_stat_statements s "
        "JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid "
        "WHERE d.datname = %s AND r.rolname = 'mailer' ORDER BY s.calls DESC",
        [database],
    ).fetchall()
    return sum(calls for calls, _ in rows), rows[:6]


def raw_smtplib(sink: SmtpSink, count: int, message: bytes) -> float:
    """Messages per second for RAW_PROCESSES processes, one smtplib connection each, ``count`` in all."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(RAW_PROCESSES + 1)
    finished = ctx.Queue()
    shares = [range(n, count, RAW_PROCESSES) for n in range(RAW_PROCESSES)]
    procs = [ctx.Process(target=_raw_sender, args=(sink.port, message, s, barrier, finished)) for s in shares]
    before = sink.count
    for proc in procs:
        proc.start()
    try:
        barrier.wait(60)
        began = time.perf_counter()
        ends = [finished.get(timeout=3600) for _ in procs]
        for proc in procs:
            proc.join(30)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join()
    if not sink.wait_for(before + count):
        raise RuntimeError(f"the sink got {sink.count - before} of {count} raw messages")
    return count / (max(ends) - began)


def _raw_sender(port: int, message: bytes, numbers: range, barrier: object, finished: object) -> None:
    """One raw sender: connect, wait for the others, send a copy of ``message`` to each number."""
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    barrier.wait(60)  # type: ignore[attr-defined]
    for n in numbers:
        smtp.sendmail("bounces@example.org", [f"raw.{n}@example.org"], message)
    finished.put(time.perf_counter())  # type: ignore[attr-defined]
    smtp.quit()


def print_run(run: Run) -> None:
    """The details of one run, as soon as it is done."""
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(run.statuses.items()))
    first_sink = f"{run.first_sink_s:.2f} s" if run.first_sink_s is not None else "-"
    first_db = f"{run.first_db_s:.2f} s" if run.first_db_s is not None else "-"
    digest_sent = f"{run.digest_sent_s:.2f} s" if run.digest_sent_s is not None else "not seen"
    print(f"\n{run.label} N={run.count}  (message {run.message_size} B)")
    print(f"  deliveries: {statuses}; the sink received {run.sink_received}")
    print(f"  digest send returned after {run.send_return_s:.2f} s (a no-op flask command: {run.startup_s:.2f} s)")
    print(f"  first message at the sink after {first_sink} (min(sent_at): {first_db})")
    print(f"  last delivery final after {run.done_s:.2f} s; digest status 'sent' after {digest_sent}")
    print(f"  mailer {run.msg_s:.0f} msg/s, raw smtplib {run.raw_msg_s:.0f} msg/s")
    workers, database = _per_msg(run.worker_cpu_s, run), _per_msg(run.db_cpu_s, run)
    print(f"  CPU per message: workers {workers} ms, PostgreSQL {database} ms")
    print(f"  SQL statements: {run.sql_calls} ({run.sql_calls / run.count:.3f} per delivery); most frequent:")
    for calls, query in run.top_sql:
        print(f"    {calls:>8}  {query[:100]}")
    print(f"  worker peak RSS {run.rss_peak / 2**20:.0f} MB; import {run.import_rows_s:.0f} rows/s "
          f"({run.import_s:.1f} s wall)", flush=True)  # fmt: skip


def _per_msg(seconds: float, run: Run) -> str:
    """Milliseconds per sent message."""
    return f"{seconds * 1000 / max(run.sent, 1):.2f}"


def print_table(runs: list[Run]) -> None:
    """The compact table, the targets next to it, and which targets each run meets."""
    head = ("run", "N", "msg/s", "raw msg/s", "mailer/raw", "1st msg s", "CPU ms/msg", "SQL/deliv",
            "RSS MB", "send s (net)", "import rows/s")  # fmt: skip
    widths = (6, 7, 7, 9, 10, 9, 10, 9, 7, 13, 13)
    print("\n" + "  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True)))
    for run in runs:
        cells = (run.label, run.count, f"{run.msg_s:.0f}", f"{run.raw_msg_s:.0f}", f"{run.msg_s / run.raw_msg_s:.2f}x",
                 f"{run.first_sink_s:.2f}" if run.first_sink_s is not None else "-",
                 _per_msg(run.worker_cpu_s, run), f"{run.sql_calls / run.count:.3f}", f"{run.rss_peak / 2**20:.0f}",
                 f"{run.send_return_s:.2f} ({run.send_return_s - run.startup_s:.2f})",
                 f"{run.import_rows_s:.0f}")  # fmt: skip
        print("  ".join(str(c).rjust(w) for c, w in zip(cells, widths, strict=True)))
    targets = ("target", "", f">={TARGET_MSG_S}*", "", f">={TARGET_RATIO}x", "", "", f"<={TARGET_SQL}",
               f"<={TARGET_RSS_GROWTH}x**", f"(<{TARGET_RETURN_S:.0f})", f">={TARGET_IMPORT}")  # fmt: skip
    print("  ".join(str(c).rjust(w) for c, w in zip(targets, widths, strict=True)))
    print(
        f"  * {TARGET_MSG_S_DKIM} msg/s with DKIM; ** peak RSS at the largest N over the smallest;"
        " send s (net) = wall time minus a no-op flask command's start-up"
    )
    print("\n".join(verdicts(runs)))


def verdicts(runs: list[Run]) -> list[str]:
    """One line per target and run: met or missed."""
    lines = []
    for run in runs:
        goal = TARGET_MSG_S_DKIM if run.dkim else TARGET_MSG_S
        checks = [
            (f"{run.msg_s:.0f} msg/s", run.msg_s >= goal, f">= {goal}"),
            (f"{run.msg_s / run.raw_msg_s:.2f}x raw", run.msg_s / run.raw_msg_s >= TARGET_RATIO, f">= {TARGET_RATIO}x"),
            (f"{run.sql_calls / run.count:.3f} SQL/delivery", run.sql_calls / run.count <= TARGET_SQL,
             f"<= {TARGET_SQL}"),
            (f"send returns in {run.send_return_s - run.startup_s:.2f} s net", run.send_return_s - run.startup_s
             < TARGET_RETURN_S, f"< {TARGET_RETURN_S:.0f} s"),
            (f"import {run.import_rows_s:.0f} rows/s", run.import_rows_s >= TARGET_IMPORT, f">= {TARGET_IMPORT}"),
        ]  # fmt: skip
        if run.sent != run.count or run.sink_received != run.sent:
            checks.append((f"{run.sent} sent, {run.sink_received} at the sink", False, f"== {run.count}"))
        for what, ok, want in checks:
            lines.append(f"  {'met   ' if ok else 'MISSED'} {run.label} N={run.count}: {what} ({want})")
    for dkim in (False, True):
        same = sorted((r for r in runs if r.dkim == dkim), key=lambda r: r.count)
        if len(same) > 1 and same[0].rss_peak:
            growth = same[-1].rss_peak / same[0].rss_peak
            label = "dkim" if dkim else "plain"
            ok = "met   " if growth <= TARGET_RSS_GROWTH else "MISSED"
            lines.append(f"  {ok} {label}: RSS at N={same[-1].count} is {growth:.2f}x N={same[0].count} "
                         f"(<= {TARGET_RSS_GROWTH}x)")  # fmt: skip
    return lines


if __name__ == "__main__":
    sys.exit(main())
