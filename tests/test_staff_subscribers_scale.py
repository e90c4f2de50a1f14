"""The console's subscribers at scale: the filtered, paged list; CSV import after a dry run; one added by hand."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, ConsentEvent, Subscriber, SubscriberStatus
from mailer.staff import subscribers as views
from mailer.subscriptions.erasure import erase_subscriber
from tests.conftest import AuthActions, CaughtMail, csrf_token
from tests.subscribing import add_subscriber, events, subscriber

HEADER = "email,name,topics,consent_at,consent_source,consent_version,status\n"
ROW = re.compile(r'href="/staff/subscribers/(\d+)"')


def _listed(client: FlaskClient, query: str = "") -> list[int]:
    """The subscriber ids on one page of the list, in order."""
    response = client.get("/staff/subscribers/?" + query)
    assert response.status_code == 200
    return [int(i) for i in ROW.findall(response.get_data(as_text=True))]


def _event(app: Flask, subscriber_id: int, source: str) -> None:
    """Log a consent event with ``source`` for the subscriber."""
    with app.app_context():
        db.session.add(ConsentEvent(subscriber_id=subscriber_id, event="subscribe", source=source))
        db.session.commit()


def _created(app: Flask, subscriber_id: int, when: datetime) -> None:
    """Set the subscriber's created_at."""
    with app.app_context():
        db.session.get(Subscriber, subscriber_id).created_at = when
        db.session.commit()


def _everyone(app: Flask) -> dict[str, str]:
    """Every subscriber as address -> status."""
    with app.app_context():
        return dict(db.session.execute(db.select(Subscriber.email, Subscriber.status)).all())


def _audits(app: Flask, action: str) -> list[AuditEntry]:
    """The audit entries of ``action``."""
    with app.app_context():
        return list(db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_each_filter_narrows_the_list(app: Flask, auth: AuthActions) -> None:
    """Status, any of the topics, first consent source, joined dates and address text each select the right rows."""
    ana = add_subscriber(app, "ana@example.org", SubscriberStatus.CONFIRMED, topics=1)
    ben = add_subscriber(app, "ben@example.org", SubscriberStatus.PENDING, topics=2)
    cy = add_subscriber(app, "cy@example.net", SubscriberStatus.UNSUBSCRIBED, topics=4)
    dee = add_subscriber(app, "dee@example.net", SubscriberStatus.CONFIRMED, topics=6)
    _event(app, ana, "widget")
    _event(app, ana, "form")  # a later event does not change how ana joined
    _event(app, ben, "form")
    _event(app, cy, "import")
    _created(app, ana, datetime(2024, 1, 10, 12, tzinfo=UTC))
    _created(app, ben, datetime(2024, 2, 10, 12, tzinfo=UTC))
    client = auth.login()
    assert _listed(client) == [dee, cy, ben, ana]
    assert _listed(client, "status=confirmed") == [dee, ana]
    assert _listed(client, "topic=projects") == [dee, ben]
    assert _listed(client, "topic=meetings&topic=news") == [dee, cy, ana]
    assert _listed(client, "source=widget") == [ana]
    assert _listed(client, "source=FORM") == [ben]
    assert _listed(client, "from=2024-01-01&to=2024-01-31") == [ana]
    assert _listed(client, "to=2024-02-10") == [ben, ana]
    assert _listed(client, "from=2024-02-11") == [dee, cy]
    assert _listed(client, "q=EXAMPLE.NET&status=confirmed") == [dee]
    assert _listed(client, "q=example.org&topic=news") == []


#: Filter values the subscriber list cannot read.
MALFORMED = [
    "status=bogus", "topic=parties", "from=2024-13-01", "to=yesterday", "before=abc", "before=-1", "before=0",
    "before=" + "9" * 5000, "from=0001-01-01&to=9999-12-31", "source=" + "x" * 500, "q=%00%25", "before=2147483648",
    "status=confirmed&status=pending", "topic=", "from=%00",
]  # fmt: skip


def test_malformed_filters_are_ignored(app: Flask, auth: AuthActions) -> None:
    """A filter value that cannot be read answers 200, never 500."""
    add_subscriber(app, "ana@example.org", SubscriberStatus.CONFIRMED)
    client = auth.login()
    for query in MALFORMED:
        assert client.get("/staff/subscribers/?" + query).status_code == 200, query


def test_pages_have_no_gaps_or_duplicates(app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    """Following "Older" with a filter visits every matching row once, newest first."""
    monkeypatch.setattr(views, "SHOWN", 3)
    ids = [add_subscriber(app, f"p{n}@example.org", SubscriberStatus.CONFIRMED if n % 2 else SubscriberStatus.PENDING)
           for n in range(14)]  # fmt: skip
    client = auth.login()
    for query, expected in (("", ids[::-1]), ("status=confirmed", ids[1::2][::-1])):
        seen: list[int] = []
        path = "/staff/subscribers/?" + query
        while path:
            page = client.get(path).get_data(as_text=True)
            shown = [int(i) for i in ROW.findall(page)]
            assert 0 < len(shown) <= 3
            seen += shown
            more = re.search(r'href="([^"]+)">Older', page)
            path = more.group(1).replace("&amp;", "&") if more else ""
        assert seen == expected


def _upload(client: FlaskClient, content: bytes, token: str | None = None, **fields: str) -> object:
    """Post ``content`` as the import's file, with the page's CSRF token unless one is given."""
    if token is None:
        token = csrf_token(client.get("/staff/subscribers/import").get_data(as_text=True))
    data = {"csrf_token": token, "file": (io.BytesIO(content), "list.csv"), **fields}
    return client.post("/staff/subscribers/import", data=data, content_type="multipart/form-data")


def _commit(client: FlaskClient, page: str) -> object:
    """Press "Import these N rows" on a dry run's page."""
    upload = re.search(r'name="upload" type="hidden" value="([^"]+)"', page)
    send = re.search(r'name="send_confirmations" type="hidden" value="([^"]*)"', page)
    assert upload and send, "no import button on the page"
    data = {"csrf_token": csrf_token(page), "upload": upload.group(1), "send_confirmations": send.group(1)}
    return client.post("/staff/subscribers/import/commit", data=data)


def test_dry_run_changes_nothing_and_the_import_does_what_it_said(app: Flask, auth: AuthActions) -> None:
    """The dry run counts each kind and writes nothing; importing then commits exactly that, audited by name."""
    add_subscriber(app, "known@example.org", SubscriberStatus.UNSUBSCRIBED)
    client = auth.login()
    body = HEADER + (
        "ana@example.org,Ana,meetings,2023-08-21T10:00:00+00:00,paper form,2023-08,\n"
        "ben@example.org,,projects,,,,\n"
        "cy@example.org,,,,,,suppressed\n"
        "KNOWN@example.org,,,,,,\n"
    )  # fmt: skip
    response = _upload(client, body.encode())
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for count in ("1 new confirmed", "1 new pending", "1 new unsubscribed or suppressed", "1 already known",
                  "0 erased", "Import these 3 rows"):  # fmt: skip
        assert count in page
    assert _everyone(app) == {"known@example.org": "unsubscribed"}
    assert _audits(app, "subscribers.import") == []
    done = _commit(client, page)
    assert done.status_code == 303
    assert _everyone(app) == {"known@example.org": "unsubscribed", "ana@example.org": "confirmed",
                              "ben@example.org": "pending", "cy@example.org": "suppressed"}  # fmt: skip
    [entry] = _audits(app, "subscribers.import")
    assert (entry.actor, entry.detail["confirmed"], entry.detail["pending"]) == ("editor@example.org", 1, 1)
    assert "1 confirmed, 1 pending" in client.get(done.headers["Location"]).get_data(as_text=True)
    again = _commit(client, page)  # a second press finds the file gone: nothing more happens
    assert again.status_code == 303
    assert len(_audits(app, "subscribers.import")) == 1


def test_a_file_with_problems_lists_them_by_line_and_changes_nothing(app: Flask, auth: AuthActions) -> None:
    """Bad rows: their line numbers and why, no import button, nothing written."""
    client = auth.login()
    body = HEADER + "ok@example.org,,,,,,\nnot-an-address,,,,,,\nana@example.org,,,,,,confirmed\n"
    response = _upload(client, body.encode())
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "line 3: email: This is not a valid email address" in page
    assert "line 4: status: a confirmed row needs consent_at" in page
    assert "Import these" not in page
    assert _everyone(app) == {}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"email\n\xff\xfe@example.org\n", "not UTF-8 text"),
        ((HEADER + 'ana@example.org,"=HYPERLINK(""http://x"")",,,,,\n').encode(), "line 2: name: starts like a"),
        ((HEADER + "ana@example.org,,,2020-01-01T00:00:00,@SUM(1),,\n").encode(), "line 2: consent_source: starts"),
        (b"name\nAna\n", "the header must have an &#39;email&#39; column"),
    ],
)
def test_bad_files_are_refused_clearly(app: Flask, auth: AuthActions, content: bytes, problem: str) -> None:
    """Not UTF-8, a formula in a cell or no email column: a 400 that says why, and no change."""
    client = auth.login()
    response = _upload(client, content)
    assert response.status_code == 400
    assert problem in response.get_data(as_text=True)
    assert _everyone(app) == {}


def test_upload_needs_csrf_and_a_size_limit(app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    """No or a forged token: 400; a file over the limit: 413 with a message; nothing written either way."""
    client = auth.login()
    body = (HEADER + "ana@example.org,,,,,,\n").encode()
    assert _upload(client, body, token="").status_code == 400
    assert _upload(client, body, token="forged").status_code == 400
    assert client.post("/staff/subscribers/import/commit", data={"upload": "x" * 32}).status_code == 400
    monkeypatch.setattr(views, "MAX_UPLOAD", 2 * 1024 * 1024)
    big = body + b"b@example.org,,,,,,\n" * 130_000  # 2.6 MB: over this limit and over the app's 1 MB
    response = _upload(client, big)
    assert response.status_code == 413
    assert "larger than 2 MB" in response.get_data(as_text=True)
    many = b"".join(f"c{n}@example.org,,,,,,\n".encode() for n in range(60_000))
    ok = _upload(client, body + b"b@example.org,,,,,,\n" * 2 + many)
    assert ok.status_code == 400  # 1.4 MB passes the size limit; the repeated b@ line is the problem
    assert "is already on line 3" in ok.get_data(as_text=True)
    assert _everyone(app) == {}


def test_another_staff_member_cannot_import_my_upload(app: Flask, auth: AuthActions) -> None:
    """The kept file is bound to the staff member who checked it."""
    client = auth.login()
    page = _upload(client, (HEADER + "ana@example.org,,,,,,\n").encode()).get_data(as_text=True)
    client.post("/staff/logout", data={"csrf_token": csrf_token(page)})
    auth.login("other@example.org")
    mine = page.replace(csrf_token(page), csrf_token(client.get("/staff/").get_data(as_text=True)))
    response = _commit(client, mine)
    assert response.status_code == 303
    assert "no longer kept" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert _everyone(app) == {}


def _add(auth: AuthActions, **fields: str | list[str]) -> object:
    """Post the add form with ``fields``."""
    token = csrf_token(auth.client.get("/staff/subscribers/add").get_data(as_text=True))
    return auth.client.post("/staff/subscribers/add", data={"csrf_token": token, **fields})


def test_add_with_evidence_is_confirmed_and_audited(app: Flask, auth: AuthActions) -> None:
    """They agreed on a date by some means: confirmed, a "staff" consent event holding that, an audit entry."""
    auth.login()
    response = _add(auth, email="Ana@Example.org", name="Ana", topics=["meetings", "news"], consent="evidence",
                    agreed_on="2024-03-01", how="paper form at SMEWG 57")  # fmt: skip
    assert response.status_code == 303
    added = subscriber(app, "Ana@example.org")
    assert (added.status, added.topics, added.name) == ("confirmed", 5, "Ana")
    [event] = events(app, "Ana@example.org")
    assert (event.event, event.source) == ("confirm", "staff")
    assert event.detail["consent_at"] == "2024-03-01"
    assert event.detail["consent_source"] == "paper form at SMEWG 57"
    [entry] = _audits(app, "subscriber.add")
    assert (entry.actor, entry.target) == ("editor@example.org", "Ana@example.org")


def test_add_without_evidence_sends_a_confirmation(
    app: Flask, auth: AuthActions, mailbox: CaughtMail, celery_worker: object
) -> None:
    """No evidence: pending, and the normal confirmation email goes out."""
    auth.login()
    assert _add(auth, email="ben@example.org", topics=["projects"], consent="email").status_code == 303
    assert subscriber(app, "ben@example.org").status == "pending"
    [message] = mailbox.wait_for(1)
    assert message["To"] == "ben@example.org"
    assert "confirm" in message["Subject"].lower()
    assert [(e.event, e.source) for e in events(app, "ben@example.org")] == [("subscribe", "staff")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "ana@example.org", "topics": ["news"]}, "already a subscriber"),
        ({"email": "ANA@example.org", "topics": ["news"], "consent": "evidence", "agreed_on": "2024-01-01",
          "how": "call"}, "already a subscriber"),
        ({"email": "new@example.org", "topics": ["news"], "consent": "evidence", "how": "call"}, "Give the day"),
        ({"email": "new@example.org", "topics": ["news"], "consent": "evidence", "agreed_on": "2024-01-01"},
         "how the person agreed"),
        ({"email": "new@example.org", "topics": ["news"], "consent": "evidence", "agreed_on": "2999-01-01",
          "how": "call"}, "in the future"),
        ({"email": "not-an-address", "topics": ["news"]}, "not a valid email address"),
        ({"email": "new@example.org"}, "required"),
    ],
)  # fmt: skip
def test_add_refusals_change_nothing(app: Flask, auth: AuthActions, fields: dict[str, object], message: str) -> None:
    """A known address, missing or future evidence, a bad address: 400 saying why, nothing added."""
    add_subscriber(app, "ana@example.org", SubscriberStatus.UNSUBSCRIBED)
    auth.login()
    response = _add(auth, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _everyone(app) == {"ana@example.org": "unsubscribed"}
    assert _audits(app, "subscriber.add") == []


def test_add_needs_csrf(app: Flask, auth: AuthActions) -> None:
    """Without the token: 400 and nothing added."""
    client = auth.login()
    assert client.post("/staff/subscribers/add", data={"email": "x@example.org", "topics": "news"}).status_code == 400
    assert _everyone(app) == {}


def test_dates_filter_in_the_organisation_zone(app: Flask, auth: AuthActions) -> None:
    """A day is the organisation's day: in Asia/Singapore, 23:00 UTC is already the next day."""
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    late = add_subscriber(app, "late@example.org", SubscriberStatus.CONFIRMED)
    _created(app, late, datetime(2024, 5, 1, 23, tzinfo=UTC))
    client = auth.login()
    assert _listed(client, "from=2024-05-02&to=2024-05-02") == [late]
    assert _listed(client, "to=2024-05-01") == []


def test_checking_another_file_drops_the_first(app: Flask, auth: AuthActions) -> None:
    """One kept file a staff member: the older dry run's button finds its file gone."""
    client = auth.login()
    first = _upload(client, (HEADER + "ana@example.org,,,,,,\n").encode()).get_data(as_text=True)
    second = _upload(client, (HEADER + "ben@example.org,,,,,,\n").encode()).get_data(as_text=True)
    assert _commit(client, first).status_code == 303
    assert _everyone(app) == {}
    assert _commit(client, second).status_code == 303
    assert _everyone(app) == {"ben@example.org": "pending"}


def test_an_erased_address_cannot_be_added_back(app: Flask, auth: AuthActions) -> None:
    """An address erased on its owner's request is refused, with or without evidence."""
    add_subscriber(app, "gone@example.org", SubscriberStatus.CONFIRMED)
    with app.app_context():
        erase_subscriber(db.session.get(Subscriber, subscriber(app, "gone@example.org").id), "cli", None)
    auth.login()
    response = _add(auth, email="gone@example.org", topics=["news"], consent="evidence", agreed_on="2024-01-01",
                    how="call")  # fmt: skip
    assert response.status_code == 400
    assert "erased on its owner" in response.get_data(as_text=True)
    assert _everyone(app) == {}
