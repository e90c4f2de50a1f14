"""The emails the subscription lifecycle sends: the confirmation and "already subscribed".

Each one is a ``templates/email/NAME.{txt,html}`` pair rendered and built by ``mailer.mail``
with the list headers every email carries (List-Id, List-Unsubscribe, List-Unsubscribe-Post)
and ``Auto-Submitted: auto-generated``, DKIM-signed when DKIM is configured, sent with their
own variant of BOUNCE_ADDRESS (VERP, naming the subscriber) as the envelope sender. They are
not list mail: no ``Precedence: bulk`` and none of a digest's archive headers, since each is
one message the recipient's own request caused.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from .. import mail
from ..bounces.verp import SUBSCRIBER, verp_address
from ..digests.links import archive_index_url
from ..models import Subscriber, Topic
from .links import confirm_url, list_unsubscribe_header, personal_links


def _send(subscriber: Subscriber, template: str, subject: str, context: dict[str, Any]) -> None:
    """Render ``template`` for ``subscriber`` and send it; raise the transport's SMTP errors."""
    config = current_app.config
    rendered = mail.render_email(
        template, org_name=config["ORG_NAME"], archive_url=archive_index_url(config["BASE_URL"]), **context
    )
    links = personal_links(subscriber.id, subscriber.link_version)
    mail.send_message(
        mail.message_factory(rendered, subject),
        subscriber.email,
        links,
        list_unsubscribe=list_unsubscribe_header(links["unsubscribe_url"]),
        envelope_from=verp_address(SUBSCRIBER, subscriber.id),
    )


def send_confirmation(subscriber: Subscriber) -> None:
    """Email a pending subscriber the link that confirms the subscription."""
    days = max(1, int(current_app.config["CONFIRM_MAX_AGE"]) // 86400)
    context = {
        "confirm_url": confirm_url(subscriber.id, subscriber.confirm_nonce or ""),
        "topics": Topic(subscriber.topics).to_names(),
        "valid_for": f"{days} day{'s' if days != 1 else ''}",
        "recipient_name": subscriber.name,
    }
    _send(subscriber, "confirm", "Please confirm your subscription to " + current_app.config["ORG_NAME"], context)


def send_already_subscribed(subscriber: Subscriber) -> None:
    """Tell a confirmed subscriber who subscribed again that nothing needed doing."""
    context = {"topics": Topic(subscriber.topics).to_names(), "recipient_name": subscriber.name}
    _send(subscriber, "already_subscribed", "You are already subscribed to " + current_app.config["ORG_NAME"], context)
