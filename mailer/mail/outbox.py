"""The one path from configuration to the wire: a factory for rendered parts, and sending one message.

Every email mailer sends (confirmations, digests, test copies) is built by a factory made here
from MAIL_FROM, LIST_ID, REPLY_TO and the DKIM settings, and goes out with BOUNCE_ADDRESS as
its envelope sender. It knows nothing of subscribers or digests: callers give rendered parts,
the recipient and the personal values.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from functools import lru_cache

from flask import current_app

from .message import ListMail, MessageFactory, make_message_id
from .render import RenderedEmail
from .signing import dkim_from_config
from .transport import SMTPTransport, get_transport


def message_factory(rendered: RenderedEmail, subject: str, list_mail: ListMail | None = None) -> MessageFactory:
    """The factory for one rendered email, with the configured sender, list headers and DKIM key.

    ``list_mail`` makes it list mail (a digest): Precedence: bulk, the archive, help and
    subscribe headers and Feedback-ID.
    """
    config = current_app.config
    return MessageFactory(
        rendered,
        subject=subject,
        sender=config["MAIL_FROM"],
        list_id=config.get("LIST_ID"),
        reply_to=config.get("REPLY_TO"),
        list_mail=list_mail,
        dkim=dkim_from_config(config),
    )


def envelope_sender() -> str:
    """The bare address of BOUNCE_ADDRESS, where bounces go."""
    return _bare(current_app.config["BOUNCE_ADDRESS"])


@lru_cache(maxsize=8)
def _bare(address: str) -> str:
    """``news@example.org`` from ``News <news@example.org>`` (parsed once, not per message)."""
    return parseaddr(address)[1]


def send_message(
    factory: MessageFactory,
    to: str,
    personal: Mapping[str, str],
    *,
    list_unsubscribe: str | None = None,
    transport: SMTPTransport | None = None,
    envelope_from: str | None = None,
) -> str:
    """Build one recipient's message and hand it to the SMTP server; return its Message-ID.

    ``envelope_from`` is this email's own bounce address (VERP, see mailer/bounces/verp.py);
    BOUNCE_ADDRESS itself when not given. Raises ValueError when no header can carry the
    address, and the transport's SMTP errors.
    """
    message_id = make_message_id(factory.domain)
    data = factory.build(to=to, message_id=message_id, personal=personal, list_unsubscribe=list_unsubscribe)
    (transport or get_transport()).send(envelope_from or envelope_sender(), [to], data)
    return message_id
