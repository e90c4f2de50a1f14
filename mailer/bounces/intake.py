"""Mail in: a message from the MTA's pipe or the SMTP listener becomes a task; the task reads and handles it.

Receiving only checks the size and queues; a worker parses and decides, so the MTA (or relay)
is answered in milliseconds. The message travels base64-encoded in the task, cut to
``parse.MAX_MESSAGE`` (the original's body is not needed).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from flask import current_app

from ..models import BounceKind
from .parse import MAX_MESSAGE, Kind, read_message
from .service import Notice, handle
from .verp import read_verp

#: The task that reads one message, by name (receivers never import tasks).
PROCESS_TASK = "mailer.bounces.process_message"
_KINDS = {
    Kind.HARD: BounceKind.HARD,
    Kind.SOFT: BounceKind.SOFT,
    Kind.COMPLAINT: BounceKind.COMPLAINT,
    Kind.UNSUBSCRIBE: BounceKind.UNSUBSCRIBE,
}


def queue_message(raw: bytes, sent_to: Sequence[str] = ()) -> None:
    """Hand one received message to a worker; raise the broker's error when it cannot be queued."""
    payload = base64.b64encode(raw[:MAX_MESSAGE]).decode("ascii")
    current_app.extensions["celery"].send_task(PROCESS_TASK, args=[payload, list(sent_to)])


def process_message(payload: str, sent_to: Sequence[str]) -> str:
    """Read a queued message and act on it; return what happened."""
    report = read_message(base64.b64decode(payload), sent_to, current_app.config.get("UNSUBSCRIBE_MAILTO"))
    kind = _KINDS.get(report.kind)
    if kind is None:
        return f"ignored ({report.kind.value})"  # an auto-reply, or nothing we understand
    tag = next((t for t in map(read_verp, report.sent_to) if t is not None), None)
    source = {BounceKind.COMPLAINT: "arf", BounceKind.UNSUBSCRIBE: "mailto"}.get(kind, "dsn")
    address = report.sender if kind is BounceKind.UNSUBSCRIBE else next(iter(report.recipients), None)
    notice = Notice(
        kind=kind,
        source=source,
        event_key=report.message_id and f"mail:{report.message_id}",
        tag=tag,
        message_id=report.original_message_id,
        address=address,
        status=report.status,
        diagnostic=report.diagnostic,
    )
    return handle(notice)
