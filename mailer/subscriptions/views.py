"""Public pages: subscribe, confirm, preferences, unsubscribe (button and RFC 8058 one-click), undo.

A GET on a link from an email never changes anything (link scanners follow links); the
page it shows has a button that POSTs. Forms read form-encoded fields only (Flask-WTF would
otherwise take a JSON body as form data, and a JSON array there is a crash, not an error).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for

from ..extensions import csrf
from ..models import Subscriber, Topic
from . import service
from .forms import PreferencesForm, RevokeLinksForm, SubscribeForm
from .limits import Verdict
from .links import preferences_url, unsubscribe_url
from .service import CONSENT_SENTENCE, LinkError
from .web import accept_subscription, client_consent

bp = Blueprint("subscriptions", __name__)

Page = str | tuple[str, int] | Response


@bp.errorhandler(LinkError)
def link_error(exc: LinkError) -> tuple[str, int]:
    """A friendly page for a tampered, expired, used or revoked link."""
    return render_template("subscriptions/link_error.html", reason=exc.reason), exc.status


def _subscribe_page(form: SubscribeForm, action: str, status: int = 200) -> tuple[str, int]:
    """The subscribe form (with its errors), posting to ``action``."""
    return render_template(
        "subscriptions/subscribe.html",
        form=form,
        action=action,
        consent_sentence=CONSENT_SENTENCE,
        consent_version=current_app.config["CONSENT_VERSION"],
    ), status


def _too_many() -> tuple[str, int]:
    """The friendly over-the-limit page."""
    return render_template("subscriptions/rate_limited.html"), 429


@bp.get("/subscribe")
def subscribe_form() -> tuple[str, int]:
    """The subscribe form, every topic ticked."""
    return _subscribe_page(SubscribeForm(), url_for(".subscribe"))


@bp.post("/subscribe")
def subscribe() -> Page:
    """Handle the subscribe form; the answer is the same whatever the address's state."""
    return _handle_subscribe(SubscribeForm(formdata=request.form), "form", url_for(".subscribe"))


@bp.post("/subscribe/widget")
@csrf.exempt
def subscribe_widget() -> Page:
    """Handle the widget form on the organisation's own site (it cannot carry our CSRF token)."""
    form = SubscribeForm(formdata=request.form, meta={"csrf": False})
    return _handle_subscribe(form, "widget", url_for(".subscribe_widget"))


def _handle_subscribe(form: SubscribeForm, source: str, action: str) -> Page:
    """Check, count, act, then send everyone to the same "check your inbox" page."""
    valid = form.validate()
    caught = bool(form.website.data)
    verdict = accept_subscription(form.subscription_request() if valid and not caught else None, source)
    if verdict is not Verdict.ACCEPTED:
        return _too_many()
    if not valid and not caught:
        return _subscribe_page(form, action, 400)
    return redirect(url_for(".check_inbox"), 303)


@bp.get("/subscribe/check-inbox")
def check_inbox() -> str:
    """The one answer to every accepted subscribe request."""
    return render_template("subscriptions/check_inbox.html", valid_days=_confirm_days())


def _confirm_days() -> int:
    """How many days a confirmation link works, for the pages that say so."""
    return max(1, int(current_app.config["CONFIRM_MAX_AGE"]) // 86400)


@bp.get("/subscriptions/confirm/<token>")
def confirm_page(token: str) -> str:
    """Show the address and topics with a button that confirms."""
    subscriber, _ = service.subscriber_to_confirm(token)
    return render_template("subscriptions/confirm.html", subscriber=subscriber, topics=_topics(subscriber))


@bp.post("/subscriptions/confirm/<token>")
def confirm(token: str) -> str:
    """Confirm the subscription (once)."""
    subscriber = service.confirm_subscription(token, client_consent("email"))
    manage = preferences_url(subscriber.id, subscriber.link_version)
    return render_template(
        "subscriptions/confirmed.html", subscriber=subscriber, topics=_topics(subscriber), preferences_url=manage
    )


def _topics(subscriber: Subscriber) -> list[str]:
    """The subscriber's topic names."""
    return Topic(subscriber.topics).to_names()


@bp.get("/subscriptions/manage/<token>")
def preferences(token: str) -> Page:
    """The preferences form: topics, name and meeting reminder, without an account."""
    subscriber = service.subscriber_from_link("manage", token)
    if not service.can_change_preferences(subscriber):
        return render_template("subscriptions/not_subscribed.html", subscriber=subscriber)
    reminder = "" if subscriber.reminder_days is None else str(subscriber.reminder_days)
    form = PreferencesForm(data={"name": subscriber.name, "topics": _topics(subscriber), "reminder_days": reminder})
    return _preferences_page(form, subscriber)


@bp.post("/subscriptions/manage/<token>")
def save_preferences(token: str) -> Page:
    """Save topics, name and reminder; no topic (unsubscribe is offered) or a reminder without meetings is refused."""
    subscriber = service.subscriber_from_link("manage", token)
    if not service.can_change_preferences(subscriber):
        return render_template("subscriptions/not_subscribed.html", subscriber=subscriber), 409
    form = PreferencesForm(formdata=request.form)
    if not form.validate():
        return _preferences_page(form, subscriber, 400)
    name, topics = service.clean_name(form.name.data), service.clean_topics(form.topics.data)
    consent = client_consent("email")
    changed = service.update_preferences(subscriber, name, topics, consent, reminder_days=form.reminder())
    flash("Your preferences are saved." if changed else "Nothing changed.", "success")
    return redirect(url_for(".preferences", token=token), 303)


@bp.post("/subscriptions/manage/<token>/revoke")
def revoke_links(token: str) -> tuple[str, int]:
    """Void every preferences and unsubscribe link this address was sent, this one included."""
    subscriber = service.subscriber_from_link("manage", token)
    if not RevokeLinksForm(formdata=request.form).validate():
        return render_template("subscriptions/link_error.html", reason="invalid"), 400
    service.revoke_links(subscriber, "subscriber", request.remote_addr)
    return render_template("subscriptions/links_revoked.html", subscriber=subscriber), 200


def _preferences_page(form: PreferencesForm, subscriber: Subscriber, status: int = 200) -> tuple[str, int]:
    """The preferences form for ``subscriber``, with the link to unsubscribe from everything."""
    leave_url = unsubscribe_url(subscriber.id, subscriber.link_version)
    page = render_template(
        "subscriptions/preferences.html", form=form, subscriber=subscriber, leave_url=leave_url,
        revoke_form=RevokeLinksForm(formdata=None),
    )  # fmt: skip
    return page, status


@bp.get("/subscriptions/unsubscribe/<token>")
def unsubscribe_page(token: str) -> str:
    """Show the address with a button that unsubscribes (or the undo, when already done)."""
    subscriber = service.subscriber_from_link("unsubscribe", token)
    return _unsubscribe_result(subscriber, token)


@bp.post("/subscriptions/unsubscribe/<token>")
@csrf.exempt
def unsubscribe(token: str) -> str:
    """Unsubscribe: the page's button, or RFC 8058 one-click (no cookies, no CSRF token, no redirect)."""
    subscriber = service.subscriber_from_link("unsubscribe", token)
    one_click = request.form.get("List-Unsubscribe") == "One-Click"
    service.unsubscribe(subscriber, client_consent("one-click" if one_click else "email"))
    return _unsubscribe_result(subscriber, token)


def _unsubscribe_result(subscriber: Subscriber, token: str) -> str:
    """The unsubscribe page for the subscriber's current state."""
    return render_template(
        "subscriptions/unsubscribe.html",
        subscriber=subscriber,
        token=token,
        can_undo=service.can_resubscribe(subscriber),
    )


@bp.post("/subscriptions/resubscribe/<token>")
def resubscribe(token: str) -> tuple[str, int]:
    """Undo an unsubscribe, from the button on the unsubscribe page."""
    subscriber = service.subscriber_from_link("unsubscribe", token)
    service.resubscribe(subscriber, client_consent("email"))
    status = 200 if subscriber.status == service.CONFIRMED else 409
    manage = preferences_url(subscriber.id, subscriber.link_version)
    return render_template("subscriptions/resubscribed.html", subscriber=subscriber, preferences_url=manage), status
