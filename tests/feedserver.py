"""A local HTTP server for feed tests: serves documents with ETag and Last-Modified and records each request."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Document:
    """What the server answers at one path."""

    body: bytes
    content_type: str
    status: int = 200
    #: Seconds to wait before answering (the server lets go early when the test ends).
    stall: float = 0.0
    #: False: no Content-Length, the body runs until the connection closes.
    length: bool = True
    etag: str = ""
    last_modified: str = ""
    #: Answer 302 to this address instead.
    location: str = ""


@dataclass
class FeedServer:
    """A ThreadingHTTPServer on 127.0.0.1 that serves documents with ETag and Last-Modified, honours
    If-None-Match, and records every request's path and headers."""

    documents: dict[str, Document] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    versions: int = 0

    def start(self) -> None:
        """Listen on a free port, serving from a thread."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            """Answers GETs from ``server.documents``."""

            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                """Serve the document at this path (304 when the client's ETag matches)."""
                server.requests.append((self.path, dict(self.headers.items())))
                doc = server.documents.get(self.path)
                if doc is None:
                    self.send_error(404)
                    return
                if doc.stall:
                    server.release.wait(doc.stall)
                if doc.location:
                    self.send_response(302)
                    self.send_header("Location", doc.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if doc.status != 200:
                    self.send_response(doc.status)
                    self.send_header("Content-Length", "5")
                    self.end_headers()
                    self.wfile.write(b"oops\n")
                    return
                validators = {"ETag": doc.etag, "Last-Modified": doc.last_modified}
                if self.headers.get("If-None-Match") == doc.etag:
                    self.send_response(304)
                    for name, value in validators.items():
                        self.send_header(name, value)
                    self.end_headers()
                    return
                self.send_response(200)
                for name, value in {**validators, "Content-Type": doc.content_type}.items():
                    self.send_header(name, value)
                if doc.length:
                    self.send_header("Content-Length", str(len(doc.body)))
                self.end_headers()
                self.wfile.write(doc.body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                """Quiet."""

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        """Let stalled answers go and stop listening."""
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body: str | bytes, content_type: str, **options: Any) -> str:
        """Serve ``body`` at ``path`` with a new ETag and Last-Modified; return its URL."""
        data = body.encode() if isinstance(body, str) else body
        self.versions += 1
        moment = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=self.versions)
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + f'-{self.versions}"'
        self.documents[path] = Document(data, content_type, etag=etag, last_modified=format_datetime(moment, True),
                                        **options)  # fmt: skip
        return self.url(path)

    def hits(self, path: str) -> list[dict[str, str]]:
        """The headers of every request for ``path``."""
        return [headers for seen, headers in self.requests if seen == path]
