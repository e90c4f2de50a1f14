"""Hello-world Flask app: the baseline bench/web.py serves with the same gunicorn flags as mailer."""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    """The smallest page Flask can serve."""
    return "Hello, World!"


@app.post("/api/v1/subscriptions")
def accept() -> tuple[dict[str, str], int]:
    """Parse the JSON body as mailer's subscribe endpoint would, and accept it."""
    return {"status": "accepted", "email": request.get_json()["email"]}, 202
