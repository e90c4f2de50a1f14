"""Celery wired the Flask way: one Celery app per Flask app, tasks run in an app context."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask

from .config import celery_broker_url

#: Every module that defines tasks; a package adds its own here.
TASK_MODULES = (
    "mailer.main.tasks",
    "mailer.subscriptions.tasks",
    "mailer.digests.tasks",
    "mailer.sending.tasks",
    "mailer.bounces.tasks",
    "mailer.staff.tasks",
    "mailer.feeds.tasks",
    "mailer.reminders.tasks",
)


def init_celery(app: Flask) -> Celery:
    """Create the Celery app bound to ``app`` and store it in ``app.extensions["celery"]``."""

    class FlaskTask(Task):
        """Runs every task inside the Flask app context."""

        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    broker = celery_broker_url(app.config["REDIS_URL"])
    settings = dict(
        broker_url=broker,
        result_backend=None,
        task_ignore_result=True,
        # The queue is named after REDIS_PREFIX, so installations sharing a Redis never swap tasks.
        task_default_queue=app.config["REDIS_PREFIX"],
        broker_connection_retry_on_startup=True,
        # A task that dies with its worker goes back to the queue; only idempotent tasks opt in
        # to acks_late, and a lost worker must not make them vanish either. (Send tasks need
        # neither: the database holds their work, and the sweep rings again for a lost one.)
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": 3600},
        timezone="UTC",
        beat_schedule={
            "heartbeat": {"task": "mailer.heartbeat", "schedule": 60.0},
            "release-scheduled-digests": {"task": "mailer.digests.release_scheduled", "schedule": 30.0},
            "sweep-sending": {"task": "mailer.sending.sweep", "schedule": float(app.config["SWEEP_INTERVAL"])},
            # Subscribe requests whose doorbell task was lost (normally the web rings at once).
            "drain-subscribe-inbox": {
                "task": "mailer.subscriptions.process_requests",
                "schedule": float(app.config["SWEEP_INTERVAL"]),
            },
            # The digest cadence, feeds and reminders keep their state in the database: a tick that
            # is missed (nothing running) is made up by the next one, so none is kept waiting in the queue.
            "digest-cadence": {"task": "mailer.digests.run_cadence", "schedule": 60.0, "options": {"expires": 60}},
            "fetch-feeds": {"task": "mailer.feeds.fetch_due", "schedule": 60.0, "options": {"expires": 60}},
            "meeting-reminders": {"task": "mailer.reminders.send_due", "schedule": 300.0, "options": {"expires": 300}},
        },
    )
    if app.config.get("BOUNCE_MAILBOX_URL"):
        # Bounces from a provider that only delivers them to a mailbox (mailer/bounces/mailbox.py).
        interval = float(app.config["BOUNCE_MAILBOX_INTERVAL"])
        settings["beat_schedule"]["poll-bounce-mailbox"] = {  # type: ignore[index]
            "task": "mailer.bounces.poll_mailbox",
            "schedule": interval,
            "options": {"expires": interval},  # polls missed while no worker ran are not piled up
        }
    settings.update(app.config.get("CELERY", {}))
    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(settings)
    celery.set_default()
    # Import the task modules so a worker started from worker.py knows every task.
    celery.conf.imports = TASK_MODULES
    app.extensions["celery"] = celery
    return celery
