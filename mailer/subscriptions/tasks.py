"""Celery tasks that send the subscription emails; they take ids and re-read the subscriber."""

from __future__ import annotations

from collections.abc import Callable

from celery import shared_task
from flask import current_app

from ..extensions import db
from ..mail import PermanentSMTPError, TransientSMTPError
from ..models import Subscriber, SubscriberStatus
from . import emails, service

RETRY = {"autoretry_for": (TransientSMTPError,), "retry_backoff": 30, "retry_backoff_max": 1800, "max_retries": 8}


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
