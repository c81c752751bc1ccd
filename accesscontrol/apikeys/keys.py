"""The key format: `lsv2_pt_<secret>_<checksum>` and `lsv2_sk_<secret>_<checksum>`.

The secret is 128 bits from `secrets`; the checksum is CRC32 of everything before it, so a
mistyped or made-up key is refused without touching the database, and secret scanners can tell
a real key from noise. Only the SHA-256 digest is stored: keys have 128 bits of entropy, so a fast
hash is the right tool (a password hasher would cost ~100 ms per request for nothing).
"""

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass

PERSONAL, SERVICE, LEGACY = "pt", "sk", "legacy"

_MODERN_FORM = r"lsv2_(pt|sk)_([0-9a-f]{32})_([0-9a-f]{8})"
_LEGACY_FORM = r"ls__[0-9A-Za-z]{16,64}"
_MODERN = re.compile(f"^{_MODERN_FORM}$")
_LEGACY = re.compile(f"^{_LEGACY_FORM}$")
# Anything shaped like a key, anywhere in a text: what redaction (apikeys/redaction.py) hides.
IN_TEXT = re.compile(f"{_MODERN_FORM}|{_LEGACY_FORM}")


@dataclass(frozen=True)
class ParsedKey:
    kind: str  # pt | sk | legacy
    digest: str


def _checksum(body: str) -> str:
    return f"{zlib.crc32(body.encode()):08x}"


def generate(kind: str) -> str:
    return compose(kind, secrets.token_hex(16))


def compose(kind: str, secret_hex: str) -> str:
    """A well-formed key around a given secret (the demo seed derives its keys this way)."""
    if kind not in (PERSONAL, SERVICE):
        raise ValueError(f"unknown key kind {kind!r}")
    if not re.fullmatch(r"[0-9a-f]{32}", secret_hex):
        raise ValueError("the secret must be 32 lowercase hex digits")
    body = f"lsv2_{kind}_{secret_hex}"
    return f"{body}_{_checksum(body)}"


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def parse(raw: str) -> ParsedKey | None:
    """The key's kind and digest, or None if it cannot be a key of ours."""
    raw = (raw or "").strip()
    match = _MODERN.match(raw)
    if match:
        body = raw.rsplit("_", 1)[0]
        if not hmac.compare_digest(_checksum(body), match.group(3)):
            return None
        return ParsedKey(match.group(1), digest(raw))
    if _LEGACY.match(raw):
        return ParsedKey(LEGACY, digest(raw))
    return None


def display_hint(raw: str) -> str:
    """What lists show: the kind prefix and the last four characters, never the secret."""
    if raw.startswith("ls__"):
        return f"ls__…{raw[-4:]}"
    return f"{raw[:8]}…{raw[-4:]}"


def stored(raw: str) -> dict:
    """What a key's row keeps of it: the digest it is found by, and the hint lists show."""
    return {"digest": digest(raw), "hint": display_hint(raw)}


def same_digest(stored: str, presented: str) -> bool:
    return hmac.compare_digest(stored, presented)
