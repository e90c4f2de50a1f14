"""Celery tasks for meeting reminders: the service does the work, the send engine delivers."""
