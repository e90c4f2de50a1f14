"""Flask-Login wiring for staff accounts, and the budgets of failed sign-ins and reset requests.

A session names its account as "id:session_version" (``StaffUser.get_id``): when the account's
version moves on (sign-out, a new password, switched off) every older session stops working.

The budgets are fixed-window counters in Redis, like the subscribe limits (mailer/subscriptions/limits.py),
under keyed hashes of the address or network, so the keyspace names no one. A sign-in attempt is
counted as failed before the password is checked (so parallel guesses cannot overrun the budget) and
given back when it succeeds.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from flask import Blueprint, current_app
from flask_login import login_required
from redis.commands.core import Script

from ..extensions import db, login
from ..models import StaffUser
from ..redis_client import get_redis, redis_key
from ..subscriptions.limits import HASH_SIZE, client_network


@dataclass(frozen=True)
class Budget:
    """How many hits one address or network may make in a window of seconds."""

    scope: str
    amount: int
    window: int


#: Failed sign-ins (password or code) per account, from anywhere, and per client network.
SIGN_IN_ACCOUNT = Budget("signin-account", 10, 15 * 60)
SIGN_IN_NETWORK = Budget("signin-network", 30, 15 * 60)
#: Password-reset requests per address, and per client network.
RESET_ADDRESS = Budget("reset-address", 3, 3600)
RESET_NETWORK = Budget("reset-network", 10, 3600)

# Give one hit back to each counter that still exists (an expired window has nothing to give back).
_REFUND = """
for _, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count > 0 then redis.call('DECR', key) end
end
"""
_refund_scripts: dict[int, Script] = {}


@login.user_loader
def load_staff(session_id: str) -> StaffUser | None:
    """The active staff account a session refers to, if the session is of its current version; or None."""
    user_id, _, version = session_id.partition(":")
    if len(session_id) > 40 or not (user_id.isdigit() and version.isdigit()) or int(user_id) >= 2**31:
        return None
    user = db.session.get(StaffUser, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def _key(budget: Budget, value: str) -> str:
    """The Redis key of ``value``'s counter in ``budget``: a keyed hash, never the value itself."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    bucket = hmac.new(secret, f"{budget.scope}\0{value}".encode(), hashlib.sha256).hexdigest()[:HASH_SIZE]
    return redis_key(f"limit:{budget.scope}:{bucket}:{budget.amount}/{budget.window}")


def _pairs(email: str, ip: str | None, account: Budget, network: Budget) -> list[tuple[Budget, str]]:
    """The account's (lower-case address) and the client network's counters."""
    return [(account, email.strip().lower()), (network, client_network(ip or ""))]


def spend(email: str, ip: str | None, account: Budget = SIGN_IN_ACCOUNT, network: Budget = SIGN_IN_NETWORK) -> bool:
    """Count one hit for the address and the network; False when either was over its budget."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return True
    pipe = get_redis().pipeline()
    pairs = _pairs(email, ip, account, network)
    for budget, value in pairs:
        pipe.set(_key(budget, value), 0, ex=budget.window, nx=True)
        pipe.incr(_key(budget, value))
    counts = pipe.execute()[1::2]
    return all(count <= budget.amount for count, (budget, _) in zip(counts, pairs, strict=True))


def refund(email: str, ip: str | None, account: Budget = SIGN_IN_ACCOUNT, network: Budget = SIGN_IN_NETWORK) -> None:
    """Give back the hit ``spend`` counted: the sign-in it was for succeeded."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    client = get_redis()
    script = _refund_scripts.get(id(client))
    if script is None:
        script = _refund_scripts[id(client)] = client.register_script(_REFUND)
    script(keys=[_key(budget, value) for budget, value in _pairs(email, ip, account, network)])


login.login_view = "staff.login"
login.login_message = "Please sign in to use the console."


def staff_only(bp: Blueprint) -> Blueprint:
    """Make every page of ``bp`` need a signed-in staff member (visitors are sent to sign in)."""

    @bp.before_request
    @login_required
    def signed_in() -> None:
        """Nothing more to check: login_required has let the request through."""

    return bp
