"""Celery entry point: ``celery -A worker:celery worker`` and ``celery -A worker:celery beat``."""

from mailer import create_app

app = create_app()
celery = app.extensions["celery"]
