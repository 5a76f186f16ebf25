from __future__ import annotations

import logging

import pytest

from core.redact import RedactingFilter, redact_text, sanitize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/ch1", "rtsp://***@10.0.0.5:554/ch1"),
        ("rtsp://10.0.0.5/ch1", "rtsp://10.0.0.5/ch1"),
        ("rtsp://u:p@h/x?token=abc&ch=1", "rtsp://***@h/x?token=***&ch=1"),
        ("http://h/snap.jpg?user=a&password=b", "http://h/snap.jpg?user=a&password=***"),
        ("file:///data/v.mp4", "file:///data/v.mp4"),
        ("rtsp://admin:ab/cd@10.0.0.5:554/s", "rtsp://***@10.0.0.5:554/s"),
        ("rtsp://admin:a#b?c@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),
        ("rtsp://admin:p@ss@10.0.0.5/s", "rtsp://***@10.0.0.5/s"),
    ],
)
def test_sanitize_url(url: str, expected: str) -> None:
    assert sanitize_url(url) == expected


def test_redact_text_masks_urls_and_literal_secrets() -> None:
    text = "Connection to rtsp://admin:pw1@cam/x failed; pw1 was wrong"
    assert redact_text(text, ("pw1",)) == "Connection to rtsp://***@cam/x failed; *** was wrong"


def test_logging_filter_masks_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redact"):
            logger.info("opening %s", "rtsp://admin:hunter2@10.0.0.9/live")
            try:
                raise OSError("refused: rtsp://admin:hunter2@10.0.0.9/live")
            except OSError:
                logger.exception("visit failed")
    finally:
        logger.filters.clear()
    assert "hunter2" not in caplog.text
    assert "rtsp://***@10.0.0.9/live" in caplog.text


@pytest.mark.parametrize("password", ["ab/cd", "p@ss", "a#b", "x?y=1", "sp ace"])
def test_passwords_with_url_characters_never_survive_in_text(password: str) -> None:
    text = f"camera cam-1 (rtsp://admin:{password}@10.0.0.5:554/s): connection refused"
    assert password not in redact_text(text, (password,))
    assert "10.0.0.5:554/s" in redact_text(text, (password,))
