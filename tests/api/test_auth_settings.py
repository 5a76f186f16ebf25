"""`api.*` auth settings: a non-loopback bind without tokens is refused before anything starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.auth import AuthConfig
from core.errors import ConfigError
from core.settings import ApiSettings
from gridwatch.runtime import load_settings

HASH = hashlib.sha256(b"s3cret-token").hexdigest()
TOKENS = f"  tokens:\n    - {{name: wall, role: viewer, sha256: {HASH}}}\n"


def write_settings(tmp_path: Path, api: str) -> Path:
    (tmp_path / "settings.yaml").write_text("api:\n" + api, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_without_tokens_runs_with_auth_off(tmp_path: Path, host: str) -> None:
    settings = load_settings(write_settings(tmp_path, f'  host: "{host}"\n'))
    assert settings.api.tokens == []
    assert not AuthConfig.from_settings(settings.api).enabled


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "wall.example.org"])
def test_a_non_loopback_bind_without_tokens_is_refused_at_the_file(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write_settings(tmp_path, f'  host: "{host}"\n'))
    [problem] = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'settings.yaml'}:2:3: api: ")
    assert "api.tokens is empty" in problem
    assert "api.allow_anonymous" in problem


def test_a_non_loopback_host_flag_without_tokens_is_refused_at_the_flag() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, host="0.0.0.0")
    [problem] = caught.value.problems
    assert problem.startswith("--host: ")
    assert "api.tokens is empty" in problem


@pytest.mark.parametrize("api", [TOKENS, "  allow_anonymous: true\n"])
def test_tokens_or_an_explicit_allow_anonymous_permit_a_non_loopback_bind(tmp_path: Path, api: str) -> None:
    settings = load_settings(write_settings(tmp_path, api), host="0.0.0.0", port=8001)
    assert (settings.api.host, settings.api.port) == ("0.0.0.0", 8001)


def test_tokens_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDWATCH_API__TOKENS", f'[{{"name": "wall", "role": "viewer", "sha256": "{HASH.upper()}"}}]')
    monkeypatch.setenv("GRIDWATCH_API__SESSION_SECRET", "x" * 40)
    settings = load_settings(tmp_path, host="0.0.0.0")
    [token] = settings.api.tokens
    assert (token.name, token.role, token.sha256) == ("wall", "viewer", HASH)
    assert "x" * 40 not in repr(settings)
    assert AuthConfig.from_settings(settings.api).check_token("s3cret-token") is not None


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ({"tokens": [{"name": "a", "role": "viewer", "sha256": "abc"}]}, "should match pattern"),
        ({"tokens": [{"name": "a", "role": "boss", "sha256": HASH}]}, "'viewer', 'operator', 'rule_author' or 'admin'"),
        ({"tokens": [{"name": "a", "role": "viewer", "sha256": HASH, "secret": "x"}]}, "Extra inputs"),
        ({"tokens": [{"name": "a", "role": "viewer", "sha256": HASH}] * 2}, "names must be unique"),
        (
            {
                "tokens": [
                    {"name": "a", "role": "viewer", "sha256": HASH},
                    {"name": "b", "role": "admin", "sha256": HASH},
                ]
            },
            "same sha256",
        ),
        ({"session_secret": "short"}, "at least 32 characters: make one"),
        ({"session_ttl_s": 10}, "greater than or equal to 60"),
    ],
)
def test_bad_auth_settings_say_what_is_wrong(api: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        ApiSettings.model_validate(api)


def test_a_configured_session_secret_keeps_sessions_across_restarts() -> None:
    # given: two starts with the same settings
    api = ApiSettings.model_validate(
        {"tokens": [{"name": "wall", "role": "viewer", "sha256": HASH}], "session_secret": "y" * 32}
    )
    first, second = AuthConfig.from_settings(api), AuthConfig.from_settings(api)
    principal = first.check_token("s3cret-token")
    assert principal is not None
    cookie, _ = first.issue_session(principal)
    # then: the second accepts the first one's session; without a secret, each start has its own key
    assert second.check_session(cookie) is not None
    keyless = api.model_copy(update={"session_secret": None})
    assert (
        AuthConfig.from_settings(keyless).check_session(AuthConfig.from_settings(keyless).issue_session(principal)[0])
        is None
    )
