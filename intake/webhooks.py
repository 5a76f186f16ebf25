"""Standard Webhooks, both ways: the settings of a delivery target, signing what the outbox sends, checking what
external producers post to the intake, and the backoff between attempts.

Signing and the signature check use the `standardwebhooks` package (`Webhook.sign`). Its `Webhook.verify` is not
called for inbound messages: it checks the timestamp against the machine's wall clock with a fixed 5-minute
tolerance, so a caller's `now` and `tolerance_s` would be ignored. `verify_inbound` checks the timestamp against
the `now` it is given and then compares every `v1,` signature of the header with the package's own signature of
the message, in constant time: the same scheme, with time passed in.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr, field_validator, model_validator
from standardwebhooks import Webhook

from core.errors import GridwatchError
from core.redact import sanitize_url

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24  # the Standard Webhooks spec: a random key of 24 to 64 bytes
DEFAULT_TOLERANCE_S = 300


class InboundSignatureError(GridwatchError):
    """An inbound webhook is refused: a header missing, a bad signature, or a timestamp too far from now.
    The message names what was wrong, never the secret."""


def secret_key(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret; ValueError (without the secret) when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX!r}")
    text = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise ValueError(f"a webhook secret is {SECRET_PREFIX!r} and base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds at least {MIN_SECRET_BYTES} random bytes, this one {len(key)}")
    return key


class TargetSettings(BaseModel):
    """One receiver of the outbox: where, with which secret, and how hard to try.

    Attempt n (1-based) that fails is retried after min(backoff_max_s, backoff_base_s * 2**(n-1)) seconds, less a
    random part of up to `backoff_jitter` of it; after `max_attempts` failed attempts the delivery is a dead letter.
    """

    # hide_input_in_errors: a refused secret or a URL with credentials is never quoted back in the error
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)

    url: HttpUrl = Field(repr=False, description="http(s) URL the deliveries are POSTed to")
    secret: SecretStr = Field(description="Standard Webhooks secret, `whsec_` + base64 of 24+ random bytes")
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=30, ge=1, le=1000)
    backoff_base_s: float = Field(default=5.0, gt=0)
    backoff_max_s: float = Field(default=1800.0, gt=0)
    backoff_jitter: float = Field(default=0.5, ge=0, le=1)

    @field_validator("secret")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        secret_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _check_backoff(self) -> TargetSettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError(f"backoff_max_s {self.backoff_max_s} is below backoff_base_s {self.backoff_base_s}")
        return self

    @property
    def safe_url(self) -> str:
        """The URL without userinfo or secret query parameters: the only form that is logged or shown."""
        return sanitize_url(str(self.url))


def retry_delay(attempt: int, target: TargetSettings, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, with jitter.

    The delay lies in [cap * (1 - jitter), cap] with cap = min(max, base * 2**(attempt-1)), so with a jitter up to
    one half the ranges of successive attempts do not overlap until the cap: the waits grow.
    """
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: expected at least 1")
    cap = min(target.backoff_max_s, target.backoff_base_s * 2.0 ** min(attempt - 1, 64))
    return cap * (1.0 - target.backoff_jitter * rng.random())


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are taken as UTC. (`Webhook.sign` replaces the zone instead of
    converting, so an aware time in another zone must be converted before it is signed.)"""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def render_body(event_type: str, occurred_at: datetime, payload: Mapping[str, object]) -> str:
    """The JSON body of a delivery: `{"type", "timestamp", "data"}` (Standard Webhooks' payload structure)."""
    stamp = utc(occurred_at).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body = {"type": event_type, "timestamp": stamp, "data": dict(payload)}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def signed_headers(secret: SecretStr, webhook_id: str, sent_at: datetime, body: str) -> dict[str, str]:
    """The headers of one attempt: `webhook-id`, `webhook-timestamp` (whole seconds) and `webhook-signature`."""
    moment = utc(sent_at)
    signature = Webhook(secret_key(secret.get_secret_value())).sign(webhook_id, moment, body)
    return {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


def _timestamp(headers: Mapping[str, str], now: datetime, tolerance_s: float) -> datetime:
    text = headers["webhook-timestamp"]
    if not text.isascii() or not text.isdigit():
        raise InboundSignatureError(f"webhook-timestamp {text[:20]!r}: expected whole seconds since 1970")
    try:
        stamp = datetime.fromtimestamp(int(text), tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise InboundSignatureError(f"webhook-timestamp {text[:20]!r}: not a time") from None
    offset = (stamp - utc(now)).total_seconds()
    if abs(offset) > tolerance_s:
        when = "in the future" if offset > 0 else "old"
        raise InboundSignatureError(f"webhook-timestamp is {abs(offset):.0f} s {when}; tolerance {tolerance_s:g} s")
    return stamp


def verify_inbound(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: datetime,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> dict[str, object]:
    """The JSON object of a signed inbound webhook, or InboundSignatureError: a missing header, a timestamp more
    than `tolerance_s` from `now`, no `v1` signature that matches, a body that is not UTF-8 JSON of an object.
    Header names are matched without regard to case.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    missing = [n for n in ("webhook-id", "webhook-timestamp", "webhook-signature") if not lower.get(n)]
    if missing:
        raise InboundSignatureError(f"missing header(s): {', '.join(missing)}")
    stamp = _timestamp(lower, now, tolerance_s)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InboundSignatureError("body is not UTF-8") from None
    expected = Webhook(secret_key(secret)).sign(lower["webhook-id"], stamp, text).partition(",")[2]
    offered = [
        sig for version, _, sig in (s.partition(",") for s in lower["webhook-signature"].split()) if version == "v1"
    ]
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in offered):
        raise InboundSignatureError(f"webhook {lower['webhook-id'][:64]!r}: no matching v1 signature")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InboundSignatureError(f"signed body is not JSON: {exc.msg} at {exc.pos}") from None
    if not isinstance(parsed, dict):
        raise InboundSignatureError(f"signed body is a JSON {type(parsed).__name__}, expected an object")
    return parsed
