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


def _domain(address: str) -> str:
    """The domain of an address."""
    return address.rpartition("@")[2]


def exim_bounce(bounce_to: str, recipient: str, message_id: str, report_id: str = "") -> bytes:
    """Exim's classic text bounce (before 4.83's multipart/report DSNs, and still what many hosts send).

    Imitates Exim 4's ``bounce_message_text`` layout: From ``Mail Delivery System <Mailer-Daemon@host>``,
    Subject "Mail delivery failed: returning message to sender", ``X-Failed-Recipients`` naming the
    failed address, a plain-text body (no MIME at all) with the address indented and the remote SMTP
    error under it, then the original message after "------ This is a copy of the message, including
    all the headers. ------".
    """
    exim_id = report_id or "1rAbCd-000Q2x-3Z"
    return f"""\
Return-path: <>
Envelope-to: {bounce_to}
Delivery-date: {formatdate()}
Received: from mail by {REPORTER} with local (Exim 4.96)
\tid {exim_id}
\tfor {bounce_to}; {formatdate()}
X-Failed-Recipients: {recipient}
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@{REPORTER}>
To: {bounce_to}
Subject: Mail delivery failed: returning message to sender
Message-Id: <E{exim_id}@{REPORTER}>
Date: {formatdate()}

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {recipient}
    host mx1.{_domain(recipient)} [192.0.2.25]
    SMTP error from remote mail server after RCPT TO:<{recipient}>:
    550 5.1.1 <{recipient}>: Recipient address rejected: User unknown in local recipient table

------ This is a copy of the message, including all the headers. ------

Return-path: <{bounce_to}>
Received: from [192.0.2.10] (helo=demo.mailer.invalid)
\tby {REPORTER} with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384
\t(Exim 4.96)
\t(envelope-from <{bounce_to}>)
\tid 1rAbCc-000Q2w-2Y
\tfor {recipient}; {formatdate()}
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

The digest.
""".replace("\n", "\r\n").encode()


def exchange_ndr(bounce_to: str, recipient: str, message_id: str, report_id: str = "") -> bytes:
    """A Microsoft Exchange / Office 365 non-delivery report for an address the directory does not know.

    Imitates Exchange Online's NDR: From ``Microsoft Outlook <MicrosoftExchange…@tenant.onmicrosoft.com>``
    (not a mailer-daemon address), Subject "Undeliverable: …", Thread-Topic/Content-Language and
    X-MS-Exchange-* headers; a multipart/report (delivery-status) holding a multipart/alternative
    "Delivery has failed to these recipients or groups" text and HTML explanation, the
    message/delivery-status with Status 5.1.10 and the RESOLVER.ADR.RecipientNotFound diagnostic, and
    the original's headers as text/rfc822-headers.
    """
    server = "AM0PR01MB6120.eurprd01.prod.exchangelabs.com"
    tenant = "example.onmicrosoft.com"
    outer = "_000_d4c8f2a1b3e54f6a9c0e7b2d5a8f1c3eAM0PR01MB6120eurp_"
    inner = "_002_d4c8f2a1b3e54f6a9c0e7b2d5a8f1c3eAM0PR01MB6120eurp_"
    words = "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    return f"""\
Return-Path: <>
Received: from {server} (2603:10a6:20b:1::1) by
 AM0PR01MB6121.eurprd01.prod.exchangelabs.com with Microsoft SMTP Server
 (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7002.20;
 {formatdate()}
From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@{tenant}>
To: <{bounce_to}>
Date: {formatdate()}
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{outer}"
Content-Language: en-US
Message-ID: <{report_id or "d4c8f2a1-b3e5-4f6a-9c0e-7b2d5a8f1c3e"}@{server}>
In-Reply-To: {message_id}
References: {message_id}
Thread-Topic: SMEWG digest
Thread-Index: AQHaIbq2c2VzcGVuZGVkIGJ5IGV4Y2hhbmdl
Subject: Undeliverable: SMEWG digest
Auto-Submitted: auto-replied
X-MS-Has-Attach:
X-MS-Exchange-Message-Is-Ndr:
X-MS-TNEF-Correlator:
X-MS-Exchange-Organization-SCL: -1
X-MS-Exchange-Organization-MessageDirectionality: Originating
X-MS-Exchange-Organization-AuthSource: {server}
X-MS-Exchange-Organization-AuthAs: Internal
X-MS-Exchange-Organization-Network-Message-Id: 5b3e0f7c-1d2a-4c8e-9f6b-0a7d3e2c1b4f
X-MS-Exchange-CrossTenant-Network-Message-Id: 5b3e0f7c-1d2a-4c8e-9f6b-0a7d3e2c1b4f
X-MS-Exchange-Transport-CrossTenantHeadersStamped: AM0PR01MB6121
X-MS-PublicTrafficType: Email
MIME-Version: 1.0

--{outer}
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="{inner}"

--{inner}
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Delivery has failed to these recipients or groups:

{recipient}<mailto:{recipient}>
The email address you entered couldn't be found. Please check the recipien=
t's email address and try to resend the message. If the problem continues,=
 please contact your helpdesk.


Diagnostic information for administrators:

Generating server: {server}

{recipient}
Remote Server returned '{words}'

Original message headers:

Received: from demo.mailer.invalid (192.0.2.10) by {server}
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}

--{inner}
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html>
<head>
<meta http-equiv=3D"Content-Type" content=3D"text/html; charset=3Dus-ascii">
</head>
<body>
<p><b><font color=3D"#000066" size=3D"3" face=3D"Arial">Delivery has failed=
 to these recipients or groups:</font></b></p>
<font color=3D"#000000" size=3D"2" face=3D"Tahoma"><p><a href=3D"mailto:{recipient}">{recipient}</a><br>
</font>
<font color=3D"#000000" size=3D"3" face=3D"Arial">The email address you en=
tered couldn't be found. Please check the recipient's email address and tr=
y to resend the message. If the problem continues, please contact your hel=
pdesk.<br>
</font>
<br>
<font color=3D"#808080" size=3D"2" face=3D"Tahoma"><p><b>Diagnostic informa=
tion for administrators:</b></p>
<p>Generating server: {server}<br>
</p>
<p>{recipient}<br>
Remote Server returned '{words}'<br>
</p>
</font>
</body>
</html>

--{inner}--

--{outer}
Content-Type: message/delivery-status

Reporting-MTA: dns;{server}
Received-From-MTA: dns;demo.mailer.invalid
Arrival-Date: {formatdate()}

Original-Recipient: rfc822;{recipient}
Final-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;{words}

--{outer}
Content-Type: text/rfc822-headers

Received: from demo.mailer.invalid (192.0.2.10) by {server}
 with Microsoft SMTP Server id 15.20.7002.20; {formatdate()}
Return-Path: {bounce_to}
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

--{outer}--
""".replace("\n", "\r\n").encode()


def gmail_dsn(bounce_to: str, recipient: str, message_id: str, delayed: bool = False, report_id: str = "") -> bytes:
    """A Gmail / Google Workspace delivery status notification: a failure, or (``delayed``) a delay warning.

    Imitates what ``mailer-daemon@googlemail.com`` sends: From ``Mail Delivery Subsystem``, Subject
    "Delivery Status Notification (Failure)" (or "(Delay)"), ``X-Failed-Recipients`` on a failure only,
    a multipart/report (delivery-status) whose first part is multipart/related > multipart/alternative
    with the "** Address not found **" / "** Message not delivered yet **" text and HTML, the
    message/delivery-status (Action: failed, 5.1.1 and the multi-line 550-5.1.1 "The email account that
    you tried to reach does not exist" diagnostic; or Action: delayed, 4.4.1 and Will-Retry-Until), then
    the original message as message/rfc822.
    """
    outer = "000000000000a1b2c3060b9f0d2e"
    related = "000000000000a8d4c3060b9f0d3a"
    alternative = "000000000000a8e7c3060b9f0d3b"
    if delayed:
        subject = "Delivery Status Notification (Delay)"
        failed_header = ""
        text = f"""\
** Message not delivered yet **

There was a temporary problem delivering your message to {recipient}. Gmail will retry for 46 more hours. \
You'll be notified if the delivery fails permanently.

The response was:

The recipient server did not accept our requests to connect. Learn more at \
https://support.google.com/mail/answer/7720 [mx1.{_domain(recipient)}. 192.0.2.25: timed out]"""
        fields = f"""\
Final-Recipient: rfc822; {recipient}
Action: delayed
Status: 4.4.1
Diagnostic-Code: smtp; The recipient server did not accept our requests to connect. Learn more at
 https://support.google.com/mail/answer/7720
 [mx1.{_domain(recipient)}. 192.0.2.25: timed out]
Last-Attempt-Date: {formatdate()}
Will-Retry-Until: {formatdate()}"""
    else:
        subject = "Delivery Status Notification (Failure)"
        failed_header = f"X-Failed-Recipients: {recipient}\n"
        text = f"""\
** Address not found **

Your message wasn't delivered to {recipient} because the address couldn't be found, or is unable to receive \
mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

The response was:

The email account that you tried to reach does not exist. Please try double-checking the recipient's email \
address for typos or unnecessary spaces. Learn more at https://support.google.com/mail/?p=NoSuchUser"""
        fields = f"""\
Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx1.{_domain(recipient)}. (192.0.2.25, the server for the domain {_domain(recipient)}.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. Learn more at
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser a640c23a62f3a-a9a0f2b3c4dsi123456766b.12 - gsmtp
Last-Attempt-Date: {formatdate()}"""
    html = text.replace("\n\n", "</p>\n<p>")
    return f"""\
Delivered-To: {bounce_to}
Return-Path: <>
Received: by 2002:a05:6a10:8e0b:b0:4f2:1c3a:7d9e with SMTP id d11csp1234567pxb;
        {formatdate()}
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {bounce_to}
Auto-Submitted: auto-replied
Subject: {subject}
References: {message_id}
In-Reply-To: {message_id}
{failed_header}Message-ID: <{report_id or "6751a2b3.050a0220.1c2d3e.4f5a.GMR"}@mx.google.com>
Date: {formatdate()}
MIME-Version: 1.0
Content-Type: multipart/report; boundary="{outer}"; report-type=delivery-status

--{outer}
Content-Type: multipart/related; boundary="{related}"

--{related}
Content-Type: multipart/alternative; boundary="{alternative}"

--{alternative}
Content-Type: text/plain; charset="UTF-8"


{text}

--{alternative}
Content-Type: text/html; charset="UTF-8"


<html>
<head></head>
<body>
<div style="font-family: Google Sans, Roboto, sans-serif">
<p>{html}</p>
</div>
</body>
</html>

--{alternative}--
--{related}--
--{outer}
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; news@demo.mailer.invalid
Arrival-Date: {formatdate()}
X-Original-Message-ID: {message_id}

{fields}

--{outer}
Content-Type: message/rfc822

Return-Path: <{bounce_to}>
Received: from demo.mailer.invalid ([192.0.2.10])
        by smtp-relay.gmail.com with ESMTPS id a1-20020a05;
        {formatdate()}
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

The digest.

--{outer}--
""".replace("\n", "\r\n").encode()


def ses_dsn(bounce_to: str, recipient: str, message_id: str, expired: bool = False, report_id: str = "") -> bytes:
    """An Amazon SES bounce to the envelope sender: a hard 5.1.1, or (``expired``) a soft 4.4.7 "Message expired".

    Imitates the DSN ``MAILER-DAEMON@amazonses.com`` sends when a feedback-forwarding address is the
    MAIL FROM: Subject "Delivery Status Notification (Failure)", multipart/report (delivery-status)
    with SES's one-line text part "An error occurred while trying to deliver the mail to the following
    recipients:", a message/delivery-status from ``Reporting-MTA: dns; a8-30.smtp-out.amazonses.com``
    whose recipient block lists Action before Final-Recipient (as SES writes it), and the original
    message as message/rfc822. SES says "failed" for an expired message too: its 4.4.7 is the soft kind.
    """
    boundary = "=_AmazonSES_a3b1c9e2d4f6_1700000000"
    if expired:
        status = "4.4.7"
        diagnostic = (
            "smtp; 554 4.4.7 Message expired: unable to deliver in 840 minutes."
            f"<421 4.4.0 Unable to lookup DNS for {_domain(recipient)}>"
        )
    else:
        status = "5.1.1"
        diagnostic = f"smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown"
    ses_id = report_id or "0100018c2f4a7b3e-6d1e2f3a-4b5c-4d6e-8f9a-0b1c2d3e4f5a-000000"
    return f"""\
Return-Path: <>
Received: from a8-30.smtp-out.amazonses.com (a8-30.smtp-out.amazonses.com [54.240.8.30])
 by {REPORTER} with ESMTPS id 4Yx2Kq0Zk1z9rwb for <{bounce_to}>; {formatdate()}
From: MAILER-DAEMON@amazonses.com
To: {bounce_to}
Subject: Delivery Status Notification (Failure)
Message-ID: <{ses_id}@email.amazonses.com>
Date: {formatdate()}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
X-SES-Outgoing: 2026.11.29-54.240.8.30
Feedback-ID: 1.us-east-1.Lv7Dz5xPq0sT3nR2bK8mY6jH4cW9aE1fG0iU5oZ3xN8=:AmazonSES

--{boundary}
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

An error occurred while trying to deliver the mail to the following recipients:
{recipient}
--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; a8-30.smtp-out.amazonses.com

Action: failed
Final-Recipient: rfc822; {recipient}
Diagnostic-Code: {diagnostic}
Status: {status}

--{boundary}
Content-Type: message/rfc822

Return-Path: <{bounce_to}>
From: SMEWG News <news@demo.mailer.invalid>
To: {recipient}
Subject: SMEWG digest
Message-ID: {message_id}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

The digest.

--{boundary}--
""".replace("\n", "\r\n").encode()
