"""The README's run command: the embedded stack starts, serves, catches mail and stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


def _get(url: str) -> str | None:
    """The body at ``url``, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()
    except OSError:
        return None


@pytest.mark.slow
def test_embedded_stack_serves_and_stops_cleanly(tmp_path: Path) -> None:
    """Web, worker, beat, Redis and the dev SMTP server start; Ctrl-C leaves no process behind; a rerun reuses it."""
    port, smtp_port = free_port(), free_port()
    ours = ("MAILER_", "DATABASE_URL", "REDIS_URL", "SMTP_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(MAILER_INSTANCE=str(tmp_path / "instance"), PORT=str(port), MAILER_DEV_SMTP_PORT=str(smtp_port))
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.embedded"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        home = wait_until(lambda: _get(base + "/"), timeout=60)
        assert "29th APEC SME Ministerial Meeting" in home
        assert "demo" in home
        assert "Caught mail" in (_get(base + "/dev/mail/") or "")
        # The worker process took a task off the embedded Redis and ran it.
        wait_until(lambda: json.loads(_get(base + "/healthz") or "{}").get("worker_heartbeat_age_seconds") is not None)
        family = psutil.Process(process.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in family)
        for part in ("gunicorn", "celery -A worker:celery worker", "celery -A worker:celery beat", "redis-server"):
            assert part in names
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "staff login:  admin@example.org  /  " in output
    assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert _get(base + "/") is None
    _second_run_reuses_the_instance(env, base, _login_line(output))


def _login_line(output: str) -> str:
    """The staff login line the runner printed."""
    return next(line for line in output.splitlines() if "staff login:" in line)


def _second_run_reuses_the_instance(env: dict[str, str], base: str, login: str) -> None:
    """Started again on the same instance folder: same login, same data, and it stops again."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mailer.embedded"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        home = wait_until(lambda: _get(base + "/"), timeout=60)
        assert home.count("29th APEC SME Ministerial Meeting") == 1
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert _login_line(output) == login
