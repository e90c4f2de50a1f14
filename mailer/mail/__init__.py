"""Rendering, message building, DKIM and SMTP transport.

This package knows nothing of subscribers or digests: it takes rendered parts and
recipient fields. The public surface:

- ``render_email(name, **context) -> RenderedEmail``: the ``templates/email/NAME.txt`` and
  ``NAME.html`` twins rendered once, HTML with its CSS inlined.
- ``MessageFactory(rendered, subject=..., sender=..., list_id=..., dkim=...)``: prepared once
  per variant; ``factory.build(to=..., message_id=..., personal=..., list_unsubscribe=...)``
  returns the bytes of one recipient's message (DKIM-signed when ``dkim`` is given; see
  ``dkim_from_config``). The envelope sender is the caller's: BOUNCE_ADDRESS.
- ``message_factory(rendered, subject)`` and ``send_message(factory, to, personal, ...)``: the one
  path from configuration (MAIL_FROM, LIST_ID, REPLY_TO, DKIM, BOUNCE_ADDRESS) to the wire.
- ``get_transport()``: this process's SMTP connection; ``send(envelope_from, to, data)``
  raises ``TransientSMTPError`` or ``PermanentSMTPError`` (both ``SMTPError``: ``code``,
  ``reply``, ``phase``; only ``PermanentSMTPError.recipient_refused`` is a hard bounce).
"""

from .message import ListMail, MessageFactory, make_message_id
from .outbox import envelope_sender, message_factory, send_message
from .render import RenderedEmail, personal_placeholder, render_email
from .signing import dkim_from_config
from .transport import (
    PermanentSMTPError,
    SMTPError,
    SMTPSettings,
    SMTPTransport,
    TransientSMTPError,
    get_transport,
)

__all__ = [
    "ListMail",
    "MessageFactory",
    "PermanentSMTPError",
    "RenderedEmail",
    "SMTPError",
    "SMTPSettings",
    "SMTPTransport",
    "TransientSMTPError",
    "dkim_from_config",
    "envelope_sender",
    "get_transport",
    "make_message_id",
    "message_factory",
    "personal_placeholder",
    "render_email",
    "send_message",
]
