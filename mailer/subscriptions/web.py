"""What the subscribe form, the widget and the JSON API share: who is asking, and the answer.

The client IP is ``request.remote_addr``: behind a reverse proxy it is the proxy's address
unless the app is wrapped in werkzeug's ProxyFix for the number of proxies in front of it.
Its budget is counted per IPv4 address and per IPv6 /64 (see ``limits.client_network``).
Every request is counted against it, bad input included; a request with good input is also
counted against its mailbox and domain and handed to the worker (``inbox.submit``).
"""

from __future__ import annotations

from flask import request

from .inbox import check_client, submit
from .limits import Verdict
from .service import Consent, SubscriptionRequest


def client_consent(source: str) -> Consent:
    """The consent context of this request: ``source``, client IP and user agent."""
    return Consent(source=source, ip=request.remote_addr, user_agent=request.user_agent.string or None)


def accept_subscription(req: SubscriptionRequest | None, source: str) -> Verdict:
    """Count the request and pass a checked one on (None: bad input, or a bot caught by the honeypot)."""
    if req is None:
        return check_client(request.remote_addr or "")
    return submit(req, client_consent(source))
