"""Messages that come back, written the way real servers write them (for tests of mailer/bounces)."""

from __future__ import annotations

from email.utils import formatdate

REPORTER = "mx.example.net"


def postfix_dsn(bounce_to: str, recipient: str, message_id: str, status: str = "5.1.1", report_id: str = "") -> bytes:
    """A Postfix non-delivery report (RFC 3464), as Postfix's bounce daemon writes it."""
    action = "failed"
    words = "User unknown in virtual mailbox table" if status.startswith("5") else "Mailbox full, try again later"
    code = "550" if status.startswith("5") else "452"
    boundary = "8D2A11C0E4.1700000000/mx.example.net"
    return f"""\
Return-Path: <>
Delivered-To: {bounce_to}
Date: {formatdate()}
From: MAILER-DAEMON@{REPORTER} (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {bounce_to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Message-Id: <{report_id or "20261129120000.8D2A11C0E4"}@{REPORTER}>

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host {REPORTER}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host {REPORTER}[192.0.2.25] said: {code} {status} <{recipient}>:
    Recipient address rejected: {words} (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; {REPORTER}
X-Postfix-Queue-ID: 8D2A11C0E4
X-Postfix-Sender: rfc822; {bounce_to}
Arrival-Date: {formatdate()}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; {REPORTER}
Diagnostic-Code: smtp; {code} {status} <{recipient}>: Recipient address rejected:
    {words}

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{bounce_to}>
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}

--{boundary}--
""".replace("\n", "\r\n").encode()


def arf_complaint(sent_to: str, recipient: str, message_id: str, report_id: str = "") -> bytes:
    """An abuse report (RFC 5965) as a mailbox provider's feedback loop sends it."""
    boundary = "----=_ARF_Boundary_1"
    return f"""\
From: Feedback Loop <fbl@{REPORTER}>
To: {sent_to}
Date: {formatdate()}
Subject: FW: SMEWG digest
Message-ID: <{report_id or "arf-1"}@{REPORTER}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP 192.0.2.10.

--{boundary}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Original-Mail-From: <bounces@demo.mailer.invalid>
Original-Rcpt-To: <{recipient}>
Arrival-Date: {formatdate()}
Source-IP: 192.0.2.10

--{boundary}
Content-Type: message/rfc822
Content-Disposition: inline

From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}

The digest.

--{boundary}--
""".replace("\n", "\r\n").encode()


def out_of_office(sent_to: str, sender: str) -> bytes:
    """An Exchange-style automatic reply."""
    return f"""\
From: {sender}
To: {sent_to}
Date: {formatdate()}
Subject: Automatic reply: SMEWG digest
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Message-ID: <ooo-1@{REPORTER}>

I am out of the office until Monday.
""".replace("\n", "\r\n").encode()


def person_writes(sent_to: str, sender: str, subject: str = "unsubscribe") -> bytes:
    """A person's own email (to the mailto: unsubscribe address)."""
    return f"""\
From: Ann <{sender}>
To: {sent_to}
Date: {formatdate()}
Subject: {subject}
Message-ID: <person-1@{REPORTER}>

Please take me off the list.
""".replace("\n", "\r\n").encode()
