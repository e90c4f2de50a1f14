"""Private servers for the benchmarks: PostgreSQL, Redis and Postfix's smtp-sink, each on a free port.

Every server runs in its own session (so a Ctrl-C in the terminal reaches only the benchmark,
which then stops them in order) and is stopped by the process id it was started with.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
SINK_ROOT = CACHE / "postfix"
SINK = SINK_ROOT / "usr" / "sbin" / "smtp-sink"


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.Popen:
    """Start ``argv`` in its own session with stdout and stderr appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Stop a process started by ``start`` (its whole session), killing it after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def wait_until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Call ``check`` until it returns true; raise RuntimeError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # a server that is still starting refuses connections
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


class Postgres:
    """A throwaway PostgreSQL 15 cluster with pg_stat_statements, run as the postgres user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="mailer-bench-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"
        self.proc: subprocess.Popen | None = None

    @property
    def admin_url(self) -> str:
        """A superuser URL for the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str, user: str = "mailer") -> str:
        """A URL for ``database`` as ``user``."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """initdb, start the server, create the ``mailer`` role and the pg_stat_statements extension."""
        as_postgres = ["runuser", "-u", "postgres", "--"]
        initdb = [str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        subprocess.run([*as_postgres, *initdb, "--no-sync"], check=True, capture_output=True, cwd=self.folder)
        settings = {
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": self.folder,
            "shared_preload_libraries": "pg_stat_statements",
            "max_connections": 200,
        }
        flags = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
        server = [*as_postgres, str(PG_BIN / "postgres"), "-D", str(self.data), *flags]
        self.proc = start(server, self.log, cwd=self.folder)
        wait_until(lambda: psycopg.connect(self.admin_url).close() is None, "PostgreSQL")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("CREATE ROLE mailer LOGIN")
            conn.execute("CREATE EXTENSION pg_stat_statements")

    def create_database(self, name: str) -> str:
        """Create an empty database owned by ``mailer``; return the app's URL for it."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" OWNER mailer')
        return self.url(name)

    def postmaster_pid(self) -> int:
        """The server's own process id (runuser sits between us and it)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster), then remove the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.postmaster_pid(), signal.SIGINT)
                self.proc.wait(30)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                stop(self.proc, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)


class Redis:
    """A throwaway redis-server that keeps nothing on disk."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait for PING."""
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = start([*argv, "--dir", str(self.folder)], self.folder / "redis.log")
        wait_until(lambda: redis.Redis.from_url(self.url).ping(), "Redis")

    def flush(self) -> None:
        """Forget every key (queues, locks, progress) between runs."""
        redis.Redis.from_url(self.url).flushall()

    def stop(self) -> None:
        """Stop the server."""
        if self.proc is not None:
            stop(self.proc)


def ensure_smtp_sink() -> Path:
    """Postfix's smtp-sink unpacked into bench/.cache (``apt-get download postfix``, no install)."""
    if SINK.exists():
        return SINK
    CACHE.mkdir(parents=True, exist_ok=True)
    download = ["apt-get", "download", "postfix"]
    if subprocess.run(download, cwd=CACHE, capture_output=True).returncode != 0:
        # A stale package list names a version the mirror no longer has.
        subprocess.run(["apt-get", "update"], check=True, capture_output=True)
        subprocess.run(download, cwd=CACHE, check=True, capture_output=True)
    package = max(CACHE.glob("postfix_*.deb"), key=lambda p: p.stat().st_mtime)
    subprocess.run(["dpkg", "-x", str(package), str(SINK_ROOT)], check=True)
    package.unlink()
    return SINK


def _sink_argv(options: list[str], port: int) -> list[str]:
    """smtp-sink's command line; as root it must be told which user to become."""
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    return [str(ensure_smtp_sink()), *options, *user, f"127.0.0.1:{port}", "1024"]


def _sink_env() -> dict[str, str]:
    """The environment that finds smtp-sink's shared libraries next to it."""
    return {**os.environ, "LD_LIBRARY_PATH": str(SINK_ROOT / "usr" / "lib" / "postfix")}


class SmtpSink:
    """smtp-sink on a free port; its ``-c`` counters (one line per message received) are read live.

    ``first_at`` is when the first message after ``expect_from`` was received, by the sink's own
    counter, so "time to first message" is measured where the mail arrives.
    """

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.count = 0
        self.first_at: float | None = None
        self._base = 0
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the sink and a thread that follows its counters."""
        self.proc = subprocess.Popen(
            _sink_argv(["-c"], self.port), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=_sink_env(), start_new_session=True,
        )  # fmt: skip
        threading.Thread(target=self._follow, daemon=True).start()
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() is None, "smtp-sink")

    def _follow(self) -> None:
        """Read ``sess=N quit=N mesg=N`` updates (CR-separated) and keep the latest message count."""
        assert self.proc is not None and self.proc.stdout is not None
        pending = b""
        while chunk := os.read(self.proc.stdout.fileno(), 65536):
            now = time.perf_counter()
            pending += chunk
            counts = re.findall(rb"mesg=(\d+)", pending)
            pending = pending[pending.rfind(b"\r") + 1 :]
            if counts:
                with self._lock:
                    self.count = int(counts[-1])
                    if self.first_at is None and self.count > self._base:
                        self.first_at = now

    def expect_from(self) -> int:
        """Start watching for the next message; return the count so far."""
        with self._lock:
            self._base, self.first_at = self.count, None
            return self.count

    @property
    def received(self) -> int:
        """Messages received since ``expect_from``."""
        return self.count - self._base

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until the sink has received ``count`` messages in all; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.count >= count

    def stop(self) -> None:
        """Stop the sink."""
        if self.proc is not None:
            stop(self.proc)


class CaptureSink:
    """smtp-sink that writes each message it receives to a file, to learn what mailer really sends."""

    def __init__(self) -> None:
        self.port = free_port()
        # Its own folder, outside the benchmark's private one: as root, smtp-sink writes as nobody.
        self.folder = Path(tempfile.mkdtemp(prefix="mailer-bench-capture-"))
        self.folder.chmod(0o777)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the capturing sink."""
        argv = _sink_argv(["-d", str(self.folder / "message.")], self.port)
        self.proc = subprocess.Popen(argv, env=_sink_env(), start_new_session=True, stderr=subprocess.DEVNULL)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), 1).close() is None, "smtp-sink -d")

    def message(self, timeout: float = 60.0) -> bytes:
        """The first captured message as sent (CRLF line ends), without smtp-sink's own headers."""
        wait_until(lambda: any(p.stat().st_size for p in self.folder.iterdir()), "a captured message", timeout)
        time.sleep(0.5)  # the file is complete once the client has finished the transaction
        dump = next(p for p in self.folder.iterdir() if p.stat().st_size).read_bytes()
        lines = dump.split(b"\n")
        # smtp-sink prepends X-* records and a three-line Received header, and appends an empty line.
        start = next(i for i, line in enumerate(lines) if line.startswith(b"Received: ")) + 1
        while lines[start][:1] in (b" ", b"\t"):
            start += 1
        body = lines[start:]
        while body and body[-1] == b"":
            body.pop()
        return b"\r\n".join(body) + b"\r\n"

    def stop(self) -> None:
        """Stop the sink and remove what it captured."""
        if self.proc is not None:
            stop(self.proc)
        shutil.rmtree(self.folder, ignore_errors=True)
