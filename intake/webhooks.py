"""Standard Webhooks, both ways: the settings of a delivery target, signing what the outbox sends, checking what
external producers post to the intake, and the backoff between attempts.

Signing and the signature check use the `standardwebhooks` package (`Webhook.sign`). Its `Webhook.verify` is not
called for inbound messages: it checks the timestamp against the machine's wall clock with a fixed 5-minute
tolerance, so a caller's `now` and `tolerance_s` would be ignored. `verify_inbound` checks the timestamp against
the `now` it is given and then compares every `v1,` signature of the header with the package's own signature of
the message, in constant time: the same scheme, with time passed in.
"""

from __future__ import annotations

import hmac
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from pydantic import SecretStr
from standardwebhooks import Webhook

from core.errors import GridwatchError
from core.settings import SECRET_PREFIX, TargetSettings, secret_key

DEFAULT_TOLERANCE_S = 300


class InboundSignatureError(GridwatchError):
    """An inbound webhook is refused: a header missing, a bad signature, or a timestamp too far from now.
    The message names what was wrong, never the secret."""


def retry_delay(attempt: int, target: TargetSettings, rng: random.Random) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): exponential, capped, with jitter.

    The delay lies in [cap * (1 - jitter), cap] with cap = min(max, base * 2**(attempt-1)), so with a jitter up to
    one half the ranges of successive attempts do not overlap until the cap: the waits grow.
    """
    if attempt < 1:
        raise ValueError(f"attempt {attempt}: expected at least 1")
    cap = min(target.backoff_max_s, target.backoff_base_s * 2.0 ** min(attempt - 1, 64))
    return cap * (1.0 - target.backoff_jitter * rng.random())


def retry_after_s(header: str | None, now: datetime) -> float | None:
    """The wait a receiver asked for in its `Retry-After` header (RFC 9110: delay-seconds or an HTTP-date), in
    seconds from `now`; None when there is no header or it cannot be read (the backoff alone then decides)."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (utc(moment) - utc(now)).total_seconds())


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


__all__ = ["SECRET_PREFIX", "InboundSignatureError", "TargetSettings", "retry_delay", "secret_key", "verify_inbound"]
