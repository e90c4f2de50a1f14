"""What comes back after sending: bounces, complaints and unsubscribes by mail, read from mail or webhooks.

``verp`` makes and reads the per-email envelope senders; ``parse`` understands a message that
came back; ``service`` holds the rules (suppress, count, unsubscribe); ``intake`` takes mail in
(from a pipe, the SMTP listener) and hands it to a Celery task so receiving stays fast.
"""
