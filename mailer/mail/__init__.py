"""Rendering, message building, DKIM and SMTP transport.

This package knows nothing of subscribers or digests: it takes rendered parts and
recipient fields. The public surface:

- ``render_email(name, **context) -> RenderedEmail``: the ``templates/email/NAME.txt`` and
  ``NAME.html`` twins rendered once, HTML with its CSS inlined.
- ``MessageFactory(rendered, subject=..., sender=..., list_id=...)``: prepared once per
  variant; ``factory.build(to=..., message_id=..., personal=..., list_unsubscribe=...)``
  returns the bytes of one recipient's message.
- ``get_transport()``: this process's SMTP connection; ``send(envelope_from, to, data)``
  raises ``TransientSMTPError`` or ``PermanentSMTPError``.
"""

from .message import MessageFactory, make_message_id
from .render import RenderedEmail, personal_placeholder, render_email
from .transport import PermanentSMTPError, SMTPTransport, TransientSMTPError, get_transport

__all__ = [
    "MessageFactory",
    "PermanentSMTPError",
    "RenderedEmail",
    "SMTPTransport",
    "TransientSMTPError",
    "get_transport",
    "make_message_id",
    "personal_placeholder",
    "render_email",
]
