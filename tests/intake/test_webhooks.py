"""Standard Webhooks: inbound checks (`verify_inbound`), what the package's own `verify` does, settings, backoff."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from intake.webhooks import (
    InboundSignatureError,
    TargetSettings,
    render_body,
    retry_delay,
    secret_key,
    signed_headers,
    verify_inbound,
)
from tests.intake.outbox_builders import make_secret, make_target

NOW = datetime.now(UTC).replace(microsecond=0)
BODY = render_body("case.created", NOW, {"case_id": "c-1", "title": "占道经营"})


def signed(secret: str, at: datetime = NOW, body: str = BODY) -> dict[str, str]:
    return signed_headers(make_target("http://127.0.0.1/", secret).secret, "01J0000000000000000000WHID", at, body)


def test_a_signed_message_is_accepted_with_any_header_case_and_its_json_returned() -> None:
    secret = make_secret()
    headers = {k.upper(): v for k, v in signed(secret).items()}
    parsed = verify_inbound(headers, BODY.encode(), secret, now=NOW)
    assert parsed == json.loads(BODY)
    assert parsed["data"] == {"case_id": "c-1", "title": "占道经营"}


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][:-6] + "AAAAA="}, b), "no matching v1"),
        (lambda h, b: ({**h, "webhook-signature": "v1"}, b), "no matching v1"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "no matching v1"),
        (lambda h, b: (h, b.replace(b"c-1", b"c-2")), "no matching v1"),
        (lambda h, b: ({**h, "webhook-id": "01J0000000000000000000OTHR"}, b), "no matching v1"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing header"),
        (lambda h, b: ({**h, "webhook-timestamp": "1e9"}, b), "whole seconds"),
        (lambda h, b: (h, b"\xff" + b), "not UTF-8"),
    ],
)
def test_a_tampered_message_is_refused(tamper: object, message: str) -> None:
    secret = make_secret()
    assert callable(tamper)
    headers, body = tamper(signed(secret), BODY.encode())
    with pytest.raises(InboundSignatureError, match=message):
        verify_inbound(headers, body, secret, now=NOW)


def test_a_signature_made_with_another_secret_is_refused() -> None:
    with pytest.raises(InboundSignatureError, match="no matching v1"):
        verify_inbound(signed(make_secret()), BODY.encode(), make_secret(), now=NOW)


def test_one_matching_signature_among_several_is_enough() -> None:
    # a sender rotating its secret signs with the old and the new one
    old, new = make_secret(), make_secret()
    headers = signed(new)
    headers["webhook-signature"] = signed(old)["webhook-signature"] + " " + headers["webhook-signature"]
    assert verify_inbound(headers, BODY.encode(), new, now=NOW)["type"] == "case.created"


@pytest.mark.parametrize(("offset_s", "ok"), [(-300, True), (300, True), (-301, False), (301, False), (-3600, False)])
def test_the_timestamp_must_be_within_five_minutes_of_now(offset_s: int, ok: bool) -> None:
    secret = make_secret()
    headers = signed(secret, at=NOW + timedelta(seconds=offset_s))
    if ok:
        verify_inbound(headers, BODY.encode(), secret, now=NOW)
    else:
        with pytest.raises(InboundSignatureError, match="old" if offset_s < 0 else "in the future"):
            verify_inbound(headers, BODY.encode(), secret, now=NOW)


def test_tolerance_is_configurable() -> None:
    secret = make_secret()
    headers = signed(secret, at=NOW - timedelta(seconds=61))
    with pytest.raises(InboundSignatureError, match="61 s old; tolerance 60 s"):
        verify_inbound(headers, BODY.encode(), secret, now=NOW, tolerance_s=60)


def test_the_package_verify_checks_the_wall_clock_and_agrees_on_signatures() -> None:
    """Why `verify_inbound` does its own timestamp check: `Webhook.verify` compares with `datetime.now()` and a
    fixed 5 minutes, so it cannot be given a time. On signatures the two agree."""
    secret = make_secret()
    package = Webhook(secret_key(secret))
    fresh = signed(secret, at=datetime.now(UTC))
    assert package.verify(BODY, fresh) == verify_inbound(fresh, BODY.encode(), secret, now=datetime.now(UTC))
    stale = signed(secret, at=datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        package.verify(BODY, stale)
    with pytest.raises(InboundSignatureError, match="old"):
        verify_inbound(stale, BODY.encode(), secret, now=datetime.now(UTC))
    then = datetime.fromtimestamp(int(stale["webhook-timestamp"]), UTC)
    assert verify_inbound(stale, BODY.encode(), secret, now=then)["type"] == "case.created"
    future = signed(secret, at=datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too new"):
        package.verify(BODY, future)


def test_signing_converts_other_zones_to_utc() -> None:
    # Webhook.sign replaces the zone of the time it is given; signed_headers converts first
    secret = make_secret()
    beijing = NOW.astimezone(timezone(timedelta(hours=8)))
    headers = signed(secret, at=beijing)
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    verify_inbound(headers, BODY.encode(), secret, now=NOW)


def test_a_body_that_is_not_an_object_is_refused() -> None:
    secret = make_secret()
    with pytest.raises(InboundSignatureError, match="JSON list"):
        verify_inbound(signed(secret, body="[1]"), b"[1]", secret, now=NOW)


@pytest.mark.parametrize(
    ("secret", "message"),
    [("abc", "starts with 'whsec_'"), ("whsec_!!!!", "base64"), ("whsec_c2hvcnQ=", "at least 24")],
)
def test_target_settings_refuse_bad_secrets_without_showing_them(secret: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        TargetSettings.model_validate({"url": "https://city.example/hook", "secret": secret})
    assert secret not in str(caught.value)


def test_target_settings_are_strict() -> None:
    secret = make_secret()
    with pytest.raises(ValidationError, match="extra"):
        TargetSettings.model_validate({"url": "https://city.example/", "secret": secret, "retries": 3})
    with pytest.raises(ValidationError, match="URL scheme") as caught:
        TargetSettings.model_validate({"url": "ftp://ops:hunter22@city.example/", "secret": secret})
    assert "hunter22" not in str(caught.value)
    with pytest.raises(ValidationError, match="backoff_max_s"):
        TargetSettings.model_validate(
            {"url": "https://city.example/", "secret": secret, "backoff_base_s": 10.0, "backoff_max_s": 5.0}
        )


def test_retry_delay_grows_exponentially_to_the_cap_with_jitter() -> None:
    target = make_target("https://city.example/", make_secret(), backoff_base_s=5.0, backoff_max_s=300.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        cap = min(300.0, 5.0 * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, target, rng) for _ in range(200)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert max(delays) - min(delays) > cap / 4  # spread over the jitter range
    assert retry_delay(10_000, target, rng) <= 300.0
    no_jitter = make_target("https://city.example/", make_secret(), backoff_jitter=0.0, backoff_base_s=2.0)
    assert [retry_delay(n, no_jitter, rng) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
