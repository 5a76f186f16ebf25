"""Remove credentials from camera addresses and from any text that may quote them."""

from __future__ import annotations

import logging
import re

# Up to the LAST "@" of the URL token: a password may hold "/", "?", "#" or "@" itself. Masking an "@" that
# belongs to a path hides a little too much, never too little.
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
_SECRET_PARAMS = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|auth|key|secret|signature|sig)=)[^&\s;#]*",
    re.IGNORECASE,
)
MASK = "***"
_ENV_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def sanitize_url(url: str) -> str:
    """`rtsp://admin:pw@10.0.0.5:554/s?token=x` -> `rtsp://***@10.0.0.5:554/s?token=***`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return redact_text(url)
    at = rest.rfind("@")
    if at != -1:
        rest = MASK + rest[at:]
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, f"{scheme}://{rest}")


def holds_secret(url: str) -> bool:
    """Whether `url` spells out a password or a secret query parameter. `${VAR}` references are not secrets:
    `rtsp://admin:${CAM_PW}@h/s` holds none, `rtsp://admin:pw@h/s` and `rtsp://h/s?token=x` do."""
    plain = _ENV_REF.sub("", url)
    _, sep, rest = plain.partition("://")
    at = rest.rfind("@") if sep else -1
    if at != -1 and rest[:at].partition(":")[2]:
        return True
    return any(match.end() > match.end("key") for match in _SECRET_PARAMS.finditer(plain))


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask each literal secret given, then userinfo in any URL inside `text` and secret query parameters."""
    out = text
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        out = out.replace(secret, MASK)
    out = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", out)
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, out)


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in every record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
