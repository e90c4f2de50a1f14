"""What the subscribe form, the widget and the JSON API share: who is asking, and the answer.

The client IP is ``request.remote_addr``: behind a reverse proxy it is the proxy's address
unless the app is wrapped in werkzeug's ProxyFix for the number of proxies in front of it.
Its budget is counted per IPv4 address and per IPv6 /64 (see ``limits.client_network``).
"""

from __future__ import annotations

from flask import request

from .limits import allow_subscribe_from
from .service import Consent, RateLimited, SubscriptionRequest, request_subscription


def client_consent(source: str) -> Consent:
    """The consent context of this request: ``source``, client IP and user agent."""
    return Consent(source=source, ip=request.remote_addr, user_agent=request.user_agent.string or None)


def allow_subscribe_request() -> bool:
    """Count this subscribe request against the client IP's budget; False when exhausted."""
    return allow_subscribe_from(request.remote_addr or "")


def accept_subscription(req: SubscriptionRequest | None, source: str) -> bool:
    """Act on a checked request (None for a bot caught by the honeypot); False when rate-limited."""
    if req is None:
        return True
    try:
        request_subscription(req, client_consent(source))
    except RateLimited:
        return False
    return True
