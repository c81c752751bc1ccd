"""Leaked-key reports from secret scanners (GitHub's secret-scanning partner program shape).

A scanner that finds one of our keys in public (docs/key-patterns.md publishes their shape)
POSTs a JSON list of `{token, type, url, source}`, signed: `Github-Public-Key-Identifier` names
its public key, `Github-Public-Key-Signature` is the base64 DER ECDSA P-256 / SHA-256
signature of the raw body. Only scanners configured in settings.SECRET_SCANNERS are trusted.

For each live key named, the key is revoked at once (saving it moves its organization's
authorization version, so every process refuses it on its next request), the scanner, the URL
and the source are kept on the key and in the audit log (actor: `system: secret scanner
<name>`), and its owners are told by email and on the key's row in the console. The answer says
per token whether it was a live key (`true_positive`) or not (`false_positive`: unknown, already
dead, or not a key of ours at all; nothing is written for those). A token that fails the
checksum never reaches the database (keys.parse). Tokens are never logged.
"""

import base64
import binascii
import functools
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse

from accesscontrol import storable
from accesscontrol.apikeys import keys
from accesscontrol.apikeys.models import PersonalAccessToken, ServiceKey
from accesscontrol.apikeys.services import revoke_leaked_key
from accesscontrol.rbac.who_has_access import Review, admins_of

KEY_ID_HEADER = "Github-Public-Key-Identifier"
SIGNATURE_HEADER = "Github-Public-Key-Signature"
TRUE_POSITIVE, FALSE_POSITIVE = "true_positive", "false_positive"


class ReportRefused(Exception):
    """The report is not acted on at all: `status`, a stable `error` code, a `detail`.

    Signature refusals are 403s, never 401s: a 401 from this API means a bad API key, and this
    endpoint takes none."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class Finding:
    token: str
    type: str = ""
    url: str = ""
    source: str = ""


# Receiving a report


def verify_signature(body: bytes, key_id: str | None, signature: str | None) -> str:
    """The name of the trusted scanner whose key signed `body`, or ReportRefused."""
    if not key_id or not signature:
        raise ReportRefused(
            403,
            "signature_required",
            f"Sign the report: {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers.",
        )
    candidates = [
        (scanner, public_keys[key_id])
        for scanner, public_keys in settings.SECRET_SCANNERS.items()
        if key_id in public_keys
    ]
    if not candidates:
        raise ReportRefused(
            403, "unknown_signing_key", "No trusted secret scanner signs with that key id."
        )
    try:
        der = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        der = b""
    for scanner, pem in candidates:
        try:
            _public_key(pem).verify(der, body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return scanner
    raise ReportRefused(
        403, "invalid_signature", "The signature does not match this report for that key id."
    )


@functools.lru_cache(maxsize=64)
def _public_key(pem: str):
    return load_pem_public_key(pem.encode())  # checked at start-up (settings.env_scanners)


def parse_report(body: bytes) -> list[Finding]:
    """The findings of a (verified) report body, or ReportRefused (422, or 413 for too many)."""
    shape = "A report is a JSON list of {token, type, url, source} objects."
    try:
        items = storable.load_json(body)
    except storable.JsonUnstorable as exc:  # text the database refuses: as the API says it
        raise ReportRefused(422, "invalid", str(exc)) from None
    except ValueError as exc:  # not JSON, or nested too deep
        raise ReportRefused(422, "invalid_json", str(exc) or shape) from None
    if not isinstance(items, list):
        raise ReportRefused(422, "invalid", shape)
    if len(items) > settings.SECRET_SCANNING_MAX_TOKENS:
        raise ReportRefused(
            413,
            "too_large",
            f"A report names at most {settings.SECRET_SCANNING_MAX_TOKENS} tokens.",
        )
    findings = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise ReportRefused(422, "invalid", shape)
        fields = {name: item.get(name) or "" for name in ("type", "url", "source")}
        if not all(isinstance(value, str) for value in fields.values()):
            raise ReportRefused(422, "invalid", shape)
        findings.append(
            Finding(
                item["token"],
                fields["type"][:100],
                fields["url"][: ServiceKey._meta.get_field("leak_url").max_length],
                fields["source"][: ServiceKey._meta.get_field("leak_source").max_length],
            )
        )
    return findings


def act_on_report(scanner: str, findings: list[Finding]) -> list[dict]:
    """Revoke every live key the report names; one verdict per finding, in its order."""
    live = {}
    for finding in findings:
        if finding.token not in live:  # named twice: answered the same both times
            live[finding.token] = _act_on(scanner, finding)
    return [
        {
            "token_raw": finding.token,
            "token_type": finding.type,
            "label": TRUE_POSITIVE if live[finding.token] else FALSE_POSITIVE,
        }
        for finding in findings
    ]


def _act_on(scanner, finding) -> bool:
    parsed = keys.parse(finding.token)
    if parsed is None:  # not shaped like our keys, or a wrong checksum: no query at all
        return False
    if parsed.kind == keys.PERSONAL:
        found = PersonalAccessToken.objects.filter(digest=parsed.digest)
    else:
        found = ServiceKey.objects.filter(digest=parsed.digest, legacy=parsed.kind == keys.LEGACY)
    key = found.active().first()
    if key is None:
        return False
    return _revoke_and_tell(scanner, key, finding)


def _revoke_and_tell(scanner, key, finding) -> bool:
    with transaction.atomic():
        key = revoke_leaked_key(scanner=scanner, key=key, url=finding.url, source=finding.source)
        if key is None:
            return False
        recipients = owners_of(key)
        # robust: a mail server that fails is logged; the revocation stands and is answered.
        transaction.on_commit(lambda: _tell_owners(key, recipients), robust=True)
    return True


# Telling the owners


def owners_of(key) -> list[str]:
    """Who answers for a key: a token's user; a workspace key's admins (workspaces:manage
    there, organization admins included); an organization-wide key's organization admins."""
    if isinstance(key, PersonalAccessToken):
        user = key.org_membership.user
        return [user.email] if user.is_active else []
    if key.workspace is not None:
        people = Review(key.workspace, code="workspaces:manage")
        return sorted({p.label for p in people if p.user_id is not None})
    admins = admins_of(key.organization).filter(user__is_active=True)
    return sorted(admins.values_list("user__email", flat=True))


def _tell_owners(key, recipients) -> None:
    if not recipients:
        return
    if isinstance(key, PersonalAccessToken):
        organization = key.org_membership.organization
        page = reverse("personal-tokens", args=[organization.slug])
    else:
        organization, workspace = key.organization, key.workspace
        page = (
            reverse("service-keys", args=[organization.slug, workspace.slug]) if workspace else ""
        )
    send_mail(
        subject=f"{key.name} ({key.hint}) was found in public and revoked",
        message=(
            f"{key.leak_reported_by} reported that the {key.audit_label} ({key.hint}) of "
            f"{organization.name} was published at:\n\n  {key.leak_url or '(no URL given)'}"
            f"\n\nWe revoked it at {key.revoked_at:%Y-%m-%d %H:%M} UTC: requests with it are "
            "refused. Make a new key for whatever used it, remove the old one from where it "
            "was found, and check the audit log for what it did before."
            + (f"\n\nYour keys: {settings.SITE_URL}{page}" if page else "")
        ),
        from_email=None,
        recipient_list=recipients,
    )
