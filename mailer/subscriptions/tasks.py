"""Celery tasks of the subscription lifecycle: draining the subscribe inbox and the emails that answer it.

They take ids and re-read the subscriber, so an email goes only to an address still in the
state it answers.
"""

from __future__ import annotations

from collections.abc import Callable

from celery import shared_task
from flask import current_app

from ..extensions import db
from ..mail import PermanentSMTPError, TransientSMTPError
from ..models import Subscriber, SubscriberStatus
from . import emails, inbox, service

RETRY = {"autoretry_for": (TransientSMTPError,), "retry_backoff": 30, "retry_backoff_max": 1800, "max_retries": 8}
#: A first retry of one email from a batch that hit a transient error, in seconds.
RETRY_AFTER = 30


@shared_task(name=inbox.PROCESS_TASK)
def process_requests() -> int:
    """Record the subscribe requests waiting in the inbox (rung by the web, and run by beat)."""
    return inbox.process_inbox()


@shared_task(name=service.ANSWER_TASK)
def send_answers(pairs: list[list[object]]) -> None:
    """Send each [subscriber id, kind] its email; one that fails for now is retried on its own."""
    single = {service.CONFIRMATION: send_confirmation_email, service.ALREADY_SUBSCRIBED: send_already_subscribed_email}
    for subscriber_id, kind in pairs:
        try:
            single[str(kind)].run(subscriber_id)
        except TransientSMTPError as exc:
            current_app.logger.warning("subscription email to subscriber %s will be retried: %s", subscriber_id, exc)
            single[str(kind)].apply_async(args=[subscriber_id], countdown=RETRY_AFTER)


@shared_task(name="mailer.subscriptions.send_confirmation", **RETRY)
def send_confirmation_email(subscriber_id: int) -> None:
    """Send the confirmation email with the current link, if the address is still pending."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.PENDING.value or not subscriber.confirm_nonce:
        return
    _deliver(subscriber, emails.send_confirmation)


@shared_task(name="mailer.subscriptions.send_already_subscribed", **RETRY)
def send_already_subscribed_email(subscriber_id: int) -> None:
    """Send the "already subscribed" email, if the address is still confirmed."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status != SubscriberStatus.CONFIRMED.value:
        return
    _deliver(subscriber, emails.send_already_subscribed)


def _deliver(subscriber: Subscriber, send: Callable[[Subscriber], None]) -> None:
    """Call ``send(subscriber)``; transient errors retry, a refused recipient is suppressed."""
    try:
        send(subscriber)
    except PermanentSMTPError as exc:
        current_app.logger.warning("subscription email to subscriber %s failed: %s", subscriber.id, exc)
        if exc.recipient_refused:
            service.record_hard_bounce(subscriber.id, str(exc))
