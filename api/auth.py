"""Who is calling: bearer tokens checked against `api.tokens`, operators' names and passwords against
`api.accounts`, and the signed session cookie of the alert wall.

Pure functions over an `AuthConfig`; the FastAPI side (headers, cookies, 401/403) is in `api.deps`.
A token is known by the SHA-256 of its secret only; secrets are never stored, logged or answered.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.passwords import DEFAULT_N, DEFAULT_P, DEFAULT_R, hash_password, verify_password
from core.settings import ROLES as ROLES  # re-exported: the roles and their order live in core.settings
from core.settings import ApiRole, ApiSettings, ApiToken
from core.settings import role_at_least as role_at_least

logger = logging.getLogger(__name__)

SESSION_COOKIE = "gridwatch_session"
SESSION_VERSION = "v1"
MAX_CREDENTIAL_LEN = 2048  # longer header or cookie values are refused before any hashing or parsing
DEFAULT_SESSION_TTL_S = 12 * 3600
FINGERPRINT_LEN = 16
DEFAULT_MAX_FAILURES = 10  # failed credential checks per client address within the window, then 429
DEFAULT_FAILURE_WINDOW_S = 60.0
CSRF_BYTES = 16

Via = Literal["token", "session", "anonymous"]


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `via` says how: a bearer token, the session cookie, or auth being off."""

    name: str
    role: ApiRole
    via: Via
    expires_at: int | None = None  # unix seconds, sessions only
    csrf: str = ""  # sessions only: the value a state-changing request with the cookie sends in `X-CSRF-Token`


ANONYMOUS = Principal(name="anonymous", role="admin", via="anonymous")


class SessionClaims(BaseModel):
    """The signed content of the session cookie."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sub: str = Field(max_length=64)
    role: ApiRole
    exp: int
    fp: str = Field(default="", pattern=r"^[0-9a-f]{0,16}$")  # the token's or password's fingerprint; "" matches none
    csrf: str = Field(default="", pattern=r"^[A-Za-z0-9_-]{0,43}$")  # "": a cookie that may only read


class FailureLimiter:
    """Failed credential checks per client address: after `max_failures` within `window_s`, that client is
    refused until its oldest failure leaves the window. Thread-safe; at most `max_clients` addresses are
    tracked (the least recently failing is forgotten first), so a flood of addresses cannot exhaust memory."""

    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_s: float = DEFAULT_FAILURE_WINDOW_S,
        max_clients: int = 10_000,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window_s, self.max_clients, self._now = max_failures, window_s, max_clients, now
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        with self._lock:
            times = self._recent(client)
            if len(times) < self.max_failures:
                return 0.0
            return max(times[0] + self.window_s - self._now(), 0.001)

    def failed(self, client: str) -> None:
        """Record one failed check by `client`."""
        with self._lock:
            times = self._recent(client)
            times.append(self._now())
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def _recent(self, client: str) -> deque[float]:
        times = self._failures.get(client, deque())
        horizon = self._now() - self.window_s
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            self._failures.pop(client, None)
        return times


@dataclass(frozen=True, slots=True)
class Account:
    """An operator's account: name, role and the scrypt hash of the password."""

    name: str
    role: ApiRole
    password_hash: str = field(repr=False)


@functools.cache
def _dummy_hash() -> str:
    """Verified when the name is unknown, so a wrong name costs what a wrong password does (no probing names)."""
    return hash_password(secrets.token_urlsafe(16), n=DEFAULT_N, r=DEFAULT_R, p=DEFAULT_P)


# scrypt holds 16 MiB per verification: at most this many at once, so a burst of sign-ins cannot exhaust memory
_VERIFYING = threading.BoundedSemaphore(4)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The configured tokens and accounts and the session key. Neither tokens nor accounts: authentication is
    off, every caller is `ANONYMOUS`. `limiter` counts wrong bearer tokens per client address; `signin_limiter`
    wrong passwords, per client address (`addr:<ip>`) and per account name (`name:<name>`, across addresses), apart,
    so an operator's typos never hold back the machine tokens behind the same address."""

    tokens: tuple[ApiToken, ...] = ()
    session_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    session_ttl_s: int = DEFAULT_SESSION_TTL_S
    now: Callable[[], float] = time.time
    limiter: FailureLimiter = field(default_factory=FailureLimiter, repr=False)
    accounts: tuple[Account, ...] = ()
    signin_limiter: FailureLimiter = field(default_factory=FailureLimiter, repr=False)

    @classmethod
    def from_settings(cls, api: ApiSettings) -> AuthConfig:
        key = api.session_secret.get_secret_value().encode() if api.session_secret else secrets.token_bytes(32)
        accounts = tuple(
            Account(name, a.role, a.password_hash.get_secret_value()) for name, a in sorted(api.accounts.items())
        )
        if not api.tokens and not accounts and api.loopback:
            logger.info("API authentication off: no api.tokens or api.accounts, serving %s only", api.host)
        elif not api.tokens and not accounts:
            logger.warning("API authentication OFF on %s (api.allow_anonymous): anyone may read all", api.host)
        else:
            logger.info("API authentication on: %d tokens, %d accounts", len(api.tokens), len(accounts))
        limiter = FailureLimiter(api.max_failed_auth, api.failed_auth_window_s)
        signins = FailureLimiter(api.max_failed_auth, api.failed_auth_window_s, max_clients=20_000)
        return cls(
            tokens=tuple(api.tokens),
            session_key=key,
            session_ttl_s=api.session_ttl_s,
            limiter=limiter,
            accounts=accounts,
            signin_limiter=signins,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.tokens or self.accounts)

    def check_token(self, secret: str) -> Principal | None:
        """The token whose sha256 matches; every configured hash is compared, in constant time each."""
        if not secret or len(secret) > MAX_CREDENTIAL_LEN:
            return None
        digest = hashlib.sha256(secret.encode()).hexdigest()
        found: ApiToken | None = None
        for token in self.tokens:
            if hmac.compare_digest(digest, token.sha256):
                found = token
        return Principal(found.name, found.role, via="token") if found else None

    def check_password(self, name: str, password: str) -> Principal | None:
        """The account `name` if `password` is its password. An unknown name is verified against a dummy hash,
        so it takes as long as a wrong password."""
        account = next((a for a in self.accounts if a.name == name), None)
        with _VERIFYING:
            good = verify_password(password, account.password_hash if account else _dummy_hash())
        return Principal(account.name, account.role, via="session") if account is not None and good else None

    def fingerprint(self, credential: ApiToken | Account) -> str:
        """Names the credential in a session: a keyed hash of the token's sha256 or of the password's hash, so the
        cookie reveals nothing of either and ends when the secret or the password changes."""
        if isinstance(credential, ApiToken):
            data = b"token:" + credential.sha256.encode("ascii")
        else:
            data = b"account:" + credential.password_hash.encode("ascii")
        return hmac.new(self.session_key, data, hashlib.sha256).hexdigest()[:FINGERPRINT_LEN]

    def _credential(self, name: str, role: ApiRole) -> ApiToken | Account | None:
        credentials: list[ApiToken | Account] = [*self.tokens, *self.accounts]
        return next((c for c in credentials if c.name == name and c.role == role), None)

    def issue_session(self, principal: Principal) -> tuple[str, SessionClaims]:
        """A cookie value for `principal` (a configured token's or account's caller), valid `session_ttl_s`."""
        credential = self._credential(principal.name, principal.role)
        if credential is None:
            raise ValueError(f"session for {principal.name!r} ({principal.role}): no such token or account")
        claims = SessionClaims(
            sub=principal.name,
            role=principal.role,
            exp=int(self.now()) + self.session_ttl_s,
            fp=self.fingerprint(credential),
            csrf=secrets.token_urlsafe(CSRF_BYTES),
        )
        return encode_session(self.session_key, claims), claims

    def check_session(self, value: str) -> Principal | None:
        """The caller of a well-signed, unexpired session whose token or account is still configured: same name,
        role and secret (or password)."""
        claims = decode_session(self.session_key, value)
        if claims is None or claims.exp <= self.now():
            return None
        credential = self._credential(claims.sub, claims.role)
        if credential is None or not hmac.compare_digest(self.fingerprint(credential), claims.fp):
            return None  # removed, or its role, secret or password changed since the sign-in
        return Principal(claims.sub, claims.role, via="session", expires_at=claims.exp, csrf=claims.csrf)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def encode_session(key: bytes, claims: SessionClaims) -> str:
    """`v1.<base64url JSON claims>.<base64url HMAC-SHA256 of the two parts before it>`."""
    body = SESSION_VERSION + "." + _b64(claims.model_dump_json().encode())
    return body + "." + _sign(key, body)


def decode_session(key: bytes, value: str) -> SessionClaims | None:
    """The claims of a cookie value signed with `key`; None for anything else (expiry is not checked here)."""
    if len(value) > MAX_CREDENTIAL_LEN:
        return None
    version, _, rest = value.partition(".")
    payload, _, signature = rest.partition(".")
    if version != SESSION_VERSION or not payload or not signature:
        return None
    try:
        expected = _sign(key, version + "." + payload)
        if not hmac.compare_digest(expected, signature):
            return None
        return SessionClaims.model_validate_json(_unb64(payload))
    except (TypeError, binascii.Error, ValueError, ValidationError):
        return None
