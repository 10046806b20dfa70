"""Swapping a secret in Secrets Manager (moto server): honoured within the cache period, and after a 401."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import rtc_app
import sip_app
from shared import deps
from tests import tally
from tests.conftest import FakeContext, RecordingLauncher, incoming_call_body, load_event, sign, with_body
from tests.fake_openai import FakeOpenAI
from tests.moto_aws import boto3_client
from tests.output_audit import AUDIT

OLD_KEY = "sk-rotation-old-0123456789"
NEW_KEY = "sk-rotation-new-9876543210"
OLD_SIGNING = "whsec_" + base64.b64encode(b"rotation-old-signing-secret-0001").decode()
NEW_SIGNING = "whsec_" + base64.b64encode(b"rotation-new-signing-secret-0002").decode()
CACHE_SECONDS = 1


@pytest.fixture
def secrets(env: pytest.MonkeyPatch, fake: FakeOpenAI, moto_endpoint: str) -> Iterator[dict[str, Any]]:
    AUDIT.plant(OLD_KEY, "OpenAI API key (rotated out)")
    AUDIT.plant(NEW_KEY, "OpenAI API key (rotated in)")
    AUDIT.plant_signing_secret(OLD_SIGNING, "signing secret (rotated out)")
    AUDIT.plant_signing_secret(NEW_SIGNING, "signing secret (rotated in)")
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "SECRETS_CACHE_SECONDS": str(CACHE_SECONDS),
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,  # what the functions read secrets from
    }.items():
        env.setenv(name, value)
    env.delenv("OPENAI_API_KEY")
    env.delenv("OPENAI_SIGNING_SECRET")
    original_key = fake.api_key
    client = boto3_client("secretsmanager", moto_endpoint)  # the operator's side: create, rotate
    suffix = uuid.uuid4().hex[:8]
    key_arn = client.create_secret(Name=f"openai-key-{suffix}", SecretString=OLD_KEY)["ARN"]
    signing_arn = client.create_secret(Name=f"signing-{suffix}", SecretString=OLD_SIGNING)["ARN"]
    env.setenv("OPENAI_API_KEY_SECRET_ARN", key_arn)
    env.setenv("OPENAI_SIGNING_SECRET_ARN", signing_arn)
    deps.reset()
    fake.api_key = OLD_KEY
    try:
        yield {"client": client, "key": key_arn, "signing": signing_arn}
    finally:
        fake.api_key = original_key


def rotate_key(secrets: dict[str, Any], fake: FakeOpenAI) -> None:
    secrets["client"].put_secret_value(SecretId=secrets["key"], SecretString=NEW_KEY)
    fake.api_key = NEW_KEY  # OpenAI now accepts only the new key


def authorizations(fake: FakeOpenAI) -> list[str]:
    return [r.headers.get("authorization", "") for r in fake.requests_to("/realtime/calls")]


def test_new_api_key_is_used_at_once_after_a_401(
    secrets: dict[str, Any], fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    rotate_key(secrets, fake)
    # Still within the cache period: the cached old key gets a 401, the key is re-read, one retry.
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    assert authorizations(fake) == [f"Bearer {OLD_KEY}", f"Bearer {OLD_KEY}", f"Bearer {NEW_KEY}"]
    # And the fresh key is now the cached one: no more 401s.
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    assert authorizations(fake)[-1] == f"Bearer {NEW_KEY}"
    assert len(fake.requests) == 4
    tally.record("secret rotation", tried=3, upstream_requests=len(fake.requests))


def test_new_api_key_is_read_once_the_cache_period_ends(
    secrets: dict[str, Any], fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    secrets["client"].put_secret_value(SecretId=secrets["key"], SecretString=NEW_KEY)
    # OpenAI accepts both for the moment (old key not yet revoked): the cached key is still used...
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    assert authorizations(fake)[-1] == f"Bearer {OLD_KEY}"
    time.sleep(CACHE_SECONDS + 0.2)
    fake.api_key = NEW_KEY
    # ...and after the cache period the new one, with no 401 on the way.
    assert rtc_app.handler(load_event("rtc"), FakeContext())["statusCode"] == 200
    assert authorizations(fake) == [f"Bearer {OLD_KEY}", f"Bearer {OLD_KEY}", f"Bearer {NEW_KEY}"]
    tally.record("secret rotation", tried=3, upstream_requests=len(fake.requests))


def webhook(secret: str, call_id: str) -> dict[str, Any]:
    return sign(with_body(load_event("sip"), incoming_call_body(call_id)), secret)


def test_new_signing_secret_is_honoured_within_the_cache_period(
    secrets: dict[str, Any], fake: FakeOpenAI, launcher: RecordingLauncher
) -> None:
    for call_id in ("rtc_rotation01", "rtc_rotation02", "rtc_rotation03"):
        fake.register_call(call_id)
    assert sip_app.handler(webhook(OLD_SIGNING, "rtc_rotation01"), FakeContext())["statusCode"] == 200
    secrets["client"].put_secret_value(SecretId=secrets["signing"], SecretString=NEW_SIGNING)
    # Within the cache period a webhook signed with the new secret is refused (401: OpenAI redelivers)...
    assert sip_app.handler(webhook(NEW_SIGNING, "rtc_rotation02"), FakeContext())["statusCode"] == 401
    time.sleep(CACHE_SECONDS + 0.2)
    # ...and once it has passed, the new secret verifies and the old one no longer does.
    assert sip_app.handler(webhook(NEW_SIGNING, "rtc_rotation02"), FakeContext())["statusCode"] == 200
    assert sip_app.handler(webhook(OLD_SIGNING, "rtc_rotation03"), FakeContext())["statusCode"] == 401
    assert [r.path.split("/")[-2] for r in fake.requests_to("/accept")] == [
        "rtc_rotation01",
        "rtc_rotation02",
    ]
    tally.record("secret rotation", tried=4, upstream_requests=len(fake.requests))
