"""Password hashes for operator accounts: scrypt from the standard library, with a per-password random salt.

A hash reads `scrypt$n=16384,r=8,p=5$<base64 salt>$<base64 key>`: the parameters travel with it, so a stronger
setting later leaves older hashes verifiable. The default cost is one of OWASP's equivalent scrypt settings
(N=2^14, r=8, p=5: 16 MiB of memory, about 0.17 s on one Zen 4 core). Pure: no I/O, no secrets kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SCHEME = "scrypt"
DEFAULT_N, DEFAULT_R, DEFAULT_P = 2**14, 8, 5
SALT_BYTES, KEY_BYTES = 16, 32
MAX_PASSWORD_BYTES = 1024  # longer ones are refused before hashing (scrypt cost does not grow, but be plain)
MIN_PASSWORD_CHARS = 10
# bounds on what a stored hash may ask for, so a typo in a setting cannot make every sign-in take minutes
MAX_N, MAX_R, MAX_P = 2**20, 32, 16
HASH_PATTERN = r"^scrypt\$n=[0-9]{1,8},r=[0-9]{1,2},p=[0-9]{1,2}\$[A-Za-z0-9+/]{16,}={0,2}\$[A-Za-z0-9+/]{16,}={0,2}$"
_PARSE = re.compile(r"^scrypt\$n=([0-9]+),r=([0-9]+),p=([0-9]+)\$([^$]+)\$([^$]+)$")


@dataclass(frozen=True, slots=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def text(self) -> str:
        salt, key = base64.b64encode(self.salt).decode(), base64.b64encode(self.key).decode()
        return f"{SCHEME}$n={self.n},r={self.r},p={self.p}${salt}${key}"


def _derive(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * r * n * 2 + 1024 * 1024  # scrypt needs 128*r*N bytes; OpenSSL's default cap is 32 MiB
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)


def parse_hash(text: str) -> ScryptHash:
    """The parts of a stored hash; ValueError naming what is wrong (never the hash itself)."""
    found = _PARSE.match(text)
    if found is None:
        raise ValueError("expected scrypt$n=N,r=R,p=P$<salt>$<key>: make one with `gridwatch accounts hash`")
    n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    if n < 2 or n & (n - 1) or n > MAX_N or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        raise ValueError(f"scrypt parameters n={n}, r={r}, p={p}: n a power of 2 up to {MAX_N}, r 1..{MAX_R}, p 1..")
    try:
        salt, key = base64.b64decode(found.group(4), validate=True), base64.b64decode(found.group(5), validate=True)
    except binascii.Error:
        raise ValueError("the salt and key of a scrypt hash are base64") from None
    if len(salt) < 8 or len(key) < 16:
        raise ValueError("a scrypt hash has at least 8 bytes of salt and 16 of key")
    return ScryptHash(n, r, p, salt, key)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """A new hash of `password` with a fresh random salt."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"a password has at most {MAX_PASSWORD_BYTES} bytes")
    salt = os.urandom(SALT_BYTES)
    return ScryptHash(n, r, p, salt, _derive(password, salt, n, r, p, KEY_BYTES)).text()


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` is the one `stored` was made from; compared in constant time."""
    if not password or len(password.encode()) > MAX_PASSWORD_BYTES:
        return False
    try:
        parsed = parse_hash(stored)
    except ValueError:
        return False
    derived = _derive(password, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(derived, parsed.key)
