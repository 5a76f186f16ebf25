"""Remove credentials from camera addresses and from any text that may quote them."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")
_SECRET_PARAMS = re.compile(
    r"(?P<key>[?&;](?:password|passwd|pwd|pass|token|auth|key|secret|signature|sig)=)[^&\s;#]*",
    re.IGNORECASE,
)
MASK = "***"


def sanitize_url(url: str) -> str:
    """`rtsp://admin:pw@10.0.0.5:554/s?token=x` -> `rtsp://***@10.0.0.5:554/s?token=***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, clean)


def redact_text(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Mask userinfo in any URL inside `text`, secret query parameters, and each literal secret given."""
    out = _USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)
    out = _SECRET_PARAMS.sub(lambda m: m.group("key") + MASK, out)
    for secret in secrets:
        if secret:
            out = out.replace(secret, MASK)
    return out


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
