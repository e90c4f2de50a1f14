"""Celery tasks of staff accounts: the password-reset email, so the web never waits on SMTP."""

from __future__ import annotations

from celery import shared_task

from ..mail import TransientSMTPError
from . import service

PASSWORD_RESET_TASK = "mailer.staff.send_password_reset"


@shared_task(name=PASSWORD_RESET_TASK, autoretry_for=(TransientSMTPError,), retry_backoff=30, max_retries=5)
def send_password_reset_email(address: str) -> None:
    """Email a reset link to the active account at ``address``; nothing when there is none.

    The web queues this for every well-formed request, so its answer and its work never tell
    whether an account exists. A retry arms a new link (an unsent one is worth nothing).
    """
    armed = service.begin_password_reset(address)
    if armed is not None:
        service.send_password_reset(*armed)
