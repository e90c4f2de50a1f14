"""Celery tasks for feeds: they take plain ids, and the service does the work."""
