"""Build RFC 5322 messages for many recipients from one rendered variant."""

from __future__ import annotations

import secrets
import time
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Mapping

from .render import RenderedEmail, personal_placeholder


def make_message_id(domain: str) -> str:
    """A globally unique Message-ID in our own domain."""
    return f"<{int(time.time() * 1000)}.{secrets.token_hex(10)}@{domain}>"


class MessageFactory:
    """Prepared once per variant; ``build`` fills in one recipient's headers and links."""

    def __init__(
        self,
        rendered: RenderedEmail,
        *,
        subject: str,
        sender: str,
        list_id: str | None = None,
        reply_to: str | None = None,
        dkim: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self.rendered = rendered
        self.subject = subject
        self.sender = sender
        self.list_id = list_id
        self.reply_to = reply_to
        self.dkim = dkim

    @property
    def domain(self) -> str:
        """The sender's domain, used for Message-IDs."""
        return parseaddr(self.sender)[1].rpartition("@")[2]

    def build(
        self,
        *,
        to: str,
        message_id: str,
        personal: Mapping[str, str] | None = None,
        list_unsubscribe: str | None = None,
        one_click: bool = True,
    ) -> bytes:
        """Return the bytes of the message for one recipient."""
        text, html = self.rendered.text, self.rendered.html
        for name, value in (personal or {}).items():
            text = text.replace(personal_placeholder(name), value)
            html = html.replace(personal_placeholder(name), value)
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = self.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = message_id
        if self.reply_to:
            msg["Reply-To"] = self.reply_to
        if self.list_id:
            msg["List-Id"] = self.list_id
        if list_unsubscribe:
            msg["List-Unsubscribe"] = list_unsubscribe
            if one_click:
                msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        return msg.as_bytes()
