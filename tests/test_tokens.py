"""Signed tokens: the fast minter makes itsdangerous's exact tokens, and reading checks them."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from mailer import create_app
from mailer.tokens import PURPOSES, TokenExpired, TokenInvalid, make_token, read_token

SECRET = "k" * 48


@pytest.fixture(scope="module")
def token_app(redis_url: str) -> Flask:
    """An app with a fixed secret key (tokens need no database)."""
    return create_app({"TESTING": True, "SECRET_KEY": SECRET, "REDIS_URL": redis_url})


payloads = st.one_of(
    st.tuples(st.integers(1, 2**31 - 1), st.integers(1, 10**6)).map(list),
    st.tuples(st.integers(1, 2**31 - 1), st.text(max_size=40)).map(list),
    st.integers(0, 2**31 - 1),
)


@given(payload=payloads, purpose=st.sampled_from(PURPOSES))
def test_minted_tokens_are_itsdangerous_tokens(token_app: Flask, payload: object, purpose: str) -> None:
    """Byte for byte what itsdangerous makes in the same second, and read back to the same payload."""
    serializer = URLSafeTimedSerializer(SECRET, salt=f"mailer.{purpose}")
    with token_app.app_context():
        for _ in range(3):  # a second boundary may fall between the two; it cannot fall three times
            second = int(time.time())
            ours, theirs = make_token(purpose, payload), serializer.dumps(payload)
            if int(time.time()) == second:
                break
        assert ours == theirs
        assert read_token(purpose, ours) == payload


def test_tokens_are_bound_to_purpose_key_and_age(token_app: Flask, redis_url: str) -> None:
    """Another purpose, another key, a changed byte or old age: refused."""
    with token_app.app_context():
        token = make_token("unsubscribe", [7, 1])
        with pytest.raises(TokenInvalid):
            read_token("manage", token)
        with pytest.raises(TokenInvalid):
            read_token("unsubscribe", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
        with pytest.raises(ValueError):
            make_token("everything", [7, 1])
    other = create_app({"TESTING": True, "SECRET_KEY": "z" * 48, "REDIS_URL": redis_url})
    with other.app_context(), pytest.raises(TokenInvalid):
        read_token("unsubscribe", token)
    with token_app.app_context():
        old = make_token("confirm", [7, "nonce"])
        time.sleep(1.1)
        with pytest.raises(TokenExpired):
            read_token("confirm", old, max_age=0)
