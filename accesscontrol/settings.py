"""Settings, all read from the environment through the small typed helpers below.

Every helper fails loudly (ImproperlyConfigured) on a value it cannot parse, so a typo in a
deployment is an error at start-up, not a silently different behaviour.
"""

import datetime
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_positive_int(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be 1 or more, got {value}")
    return value


def env_date(name: str, default: str) -> datetime.date:
    raw = os.environ.get(name, default)
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be an ISO date (YYYY-MM-DD), got {raw!r}"
        ) from None


def env_rate(name: str, default: str) -> tuple[int, int]:
    """A rate limit written `attempts/seconds`, e.g. `10/900`."""
    raw = os.environ.get(name, default)
    try:
        attempts, seconds = (int(part) for part in raw.split("/"))
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be attempts/seconds (e.g. 10/900), got {raw!r}"
        ) from None
    if attempts < 1 or seconds < 1:
        raise ImproperlyConfigured(f"{name} must be positive, got {raw!r}")
    return attempts, seconds


def env_scanners(name: str) -> dict[str, dict[str, str]]:
    """Trusted secret scanners' public keys, JSON {scanner: {key id: PEM}}: each an ECDSA
    P-256 public key (what GitHub's secret-scanning partner program signs reports with)."""
    import json

    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    raw = os.environ.get(name)
    if not raw:
        return {}
    try:
        scanners = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be JSON {{scanner: {{key id: PEM}}}}") from None
    if not isinstance(scanners, dict):
        raise ImproperlyConfigured(f"{name} must be a JSON object {{scanner: {{key id: PEM}}}}")
    for scanner, public_keys in scanners.items():
        if not isinstance(public_keys, dict) or not public_keys:
            raise ImproperlyConfigured(f"{name}: {scanner!r} must map key ids to PEM keys")
        for key_id, pem in public_keys.items():
            try:
                key = load_pem_public_key(str(pem).encode())
            except ValueError:
                key = None
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                raise ImproperlyConfigured(
                    f"{name}: key {key_id!r} of {scanner!r} is not a PEM ECDSA P-256 public key"
                )
    return scanners


def cache_from_url(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "locmem":
        return {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": parts.netloc or "accesscontrol",
        }
    if parts.scheme in {"redis", "rediss"}:
        return {
            "BACKEND": "accesscontrol.cache.RedisCache",
            "LOCATION": url,
            # A Redis that hangs (not one that refuses) is a 503 after this long, not a request
            # blocked for good (accesscontrol/unavailable.py).
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    if parts.scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    raise ImproperlyConfigured(
        f"CACHE_URL must start with locmem://, redis:// or rediss://, got {url!r}"
    )


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (production), "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # only ever with DEBUG=1

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # allauth's MFA pages use it
    "django_htmx",
    "ninja",
    "accesscontrol.accounts",
    "accesscontrol.organizations",
    "accesscontrol.workspaces",
    "accesscontrol.rbac",
    "accesscontrol.apikeys",
    "accesscontrol.audit",
    "accesscontrol.resources",
    "accesscontrol.reviews",
    "accesscontrol.access_requests",
    "accesscontrol.scim",
    "accesscontrol.api",
    "accesscontrol.sso",
    # Identity (ARCHITECTURE §12): sign-in, MFA and SSO from django-allauth; our gate, services
    # and audit stay the authority (every allauth URL is declared to the gate in urls.py).
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Unmatched paths under the API prefixes answer JSON 404, DEBUG or not (api/not_found.py).
    "accesscontrol.api.not_found.JsonNotFoundForApiPaths",
    "accesscontrol.audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accesscontrol.storable.RefuseNulInQuery",
    "accesscontrol.accounts.middleware.MfaEnrolmentMiddleware",
    "accesscontrol.rbac.gate.PermissionGateMiddleware",
]

ROOT_URLCONF = "accesscontrol.urls"
WSGI_APPLICATION = "accesscontrol.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accesscontrol.rbac.context_processors.access",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        # A kept connection is checked before a request reuses it, so after a PostgreSQL
        # restart or failover the next request opens a new one instead of failing.
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": cache_from_url(env_str("CACHE_URL", "locmem://"))}
# Several deployments (or test runs) can share one Redis.
CACHES["default"]["KEY_PREFIX"] = env_str("CACHE_KEY_PREFIX", "accesscontrol")
SHARED_CACHE = CACHES["default"]["BACKEND"].endswith("RedisCache")

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Django's ModelBackend, refusing a password for members of organizations that require SSO.
    "accesscontrol.sso.backends.PasswordBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# allauth: people sign in with their email; nobody signs up on their own (an invitation or the
# organization's SSO with just-in-time provisioning makes an account).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
# Changing one's own email, password or connections asks for a fresh sign-in first (MFA
# changes always do): a stolen session cookie must not be able to take the account over.
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_SESSION_REMEMBER = None
# Our adapter: sign-up closed, password sign-in throttled by throttle.py (accounts/adapter.py).
ACCOUNT_ADAPTER = "accesscontrol.accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {"login": "accesscontrol.accounts.adapter.EmailLoginForm"}
# Our throttle counts wrong passwords (the adapter replaces allauth's password count) and no
# limit applies to sign-ins that succeed; allauth's "login_failed" limit still counts wrong MFA
# codes (per account, keyed by the user), its other limits guard its other forms.
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": "10/m/ip,5/300s/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "accesscontrol"
# A code of the 30-second step before or after is accepted too (RFC 6238 §5.2): a code typed as
# its step ends, or a phone's clock a few seconds off, must not fail. Each code still works once.
MFA_TOTP_TOLERANCE = 1
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
# Organizations' own identity providers (sso/): which organization a sign-in lands in, just-in-time
# provisioning, the refusals. Providers live in SocialApp rows derived from sso.OrganizationSso.
SOCIALACCOUNT_ADAPTER = "accesscontrol.sso.adapter.SsoAdapter"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Hashed, compressed file names (served by whitenoise with far-future caching) once
# collectstatic has run; `make serve` does that.
if env_bool("STATIC_MANIFEST", False):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Production is served over HTTPS (TLS usually ends at the load balancer): secure cookies, HSTS
# and a redirect from plain HTTP. HTTPS=0 only for local development and loopback benchmarks.
HTTPS = env_bool("HTTPS", not DEBUG)
# Passkeys need a secure context; plain-HTTP loopback is one only in development and tests.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG or not HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# No inline script or style anywhere: htmx is loaded from our static files and told not to
# inject its indicator <style> (see templates/base.html).
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}

# Failed sign-ins and failed key authentications, counted per client IP and per account or key
# in the shared cache (see accesscontrol/throttle.py). Beyond a limit: 429 with Retry-After.
THROTTLES = {
    "login-ip": env_rate("THROTTLE_LOGIN_IP", "50/900"),
    "login-account": env_rate("THROTTLE_LOGIN_ACCOUNT", "10/900"),
    "key-ip": env_rate("THROTTLE_KEY_IP", "60/60"),
    "key": env_rate("THROTTLE_KEY", "20/60"),
    # Every leaked-key report counts, per client IP (apikeys/leaks.py).
    "secret-scanning": env_rate("THROTTLE_SECRET_SCANNING", "60/60"),
}
# Cache authenticated API principals per process, each trusted while its organization's
# authorization version is unchanged; Redis pushes every version change to each process
# (rbac/versions.py), so a warm request asks the network nothing. On by default only with Redis:
# with a per-process cache, other processes would not see a version move (rbac.W001 says so if
# it is forced on).
AUTHZ_CACHE = env_bool("AUTHZ_CACHE", SHARED_CACHE)

# Sudo mode: creating keys, changing roles in bulk and deleting a workspace ask for the
# password again when it was last given (sign-in or confirmation) longer ago than this.
SUDO_MODE_SECONDS = env_int("SUDO_MODE_SECONDS", 15 * 60)
# allauth's own re-authentication (before a change to MFA) lasts as long.
ACCOUNT_REAUTHENTICATION_TIMEOUT = SUDO_MODE_SECONDS

# How many reverse proxies (load balancers) sit in front of the app and append to
# X-Forwarded-For; 0 means the peer address is the client.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT:
    # Only a proxy we trust may tell us the original request was HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Secret scanners whose leaked-key reports we act on (POST /api/v1/secret-scanning/reports,
# docs/key-patterns.md): JSON {scanner name: {public key id: PEM}}. Deployments add GitHub's
# published keys (https://api.github.com/meta/public_keys/secret_scanning) under "github".
SECRET_SCANNERS = env_scanners("SECRET_SCANNERS")
# The largest report body read (bytes), and the most keys one report may name.
SECRET_SCANNING_MAX_BODY = env_int("SECRET_SCANNING_MAX_BODY", 256 * 1024)
SECRET_SCANNING_MAX_TOKENS = env_int("SECRET_SCANNING_MAX_TOKENS", 1000)

# The date LangSmith announced for refusing legacy ls__ keys.
LEGACY_API_KEY_SUNSET = env_date("LEGACY_API_KEY_SUNSET", "2024-07-01")

# Every handler redacts keys: a key sent in a URL (refused) is in the request line that
# runserver's `django.server` logger writes, and in what `django.request` reports. Django's own
# defaults (django.utils.log.DEFAULT_LOGGING) attach handlers without the filter to `django` and
# `django.server`; both loggers are given filtered handlers here instead. gunicorn's access and
# error logs get the filter from its logger class (deploy/gunicorn.conf.py).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_keys": {"()": "accesscontrol.apikeys.redaction.RedactKeysFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
    },
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_keys"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["require_debug_true", "redact_keys"],
        },
        "mail_admins": {
            "level": "ERROR",
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "redact_keys"],
        },
    },
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": "INFO"},  # and the root's console
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Error reports (500 emails, the debug page) hide keys found in any frame's variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "accesscontrol.apikeys.redaction.KeyScrubbingReporterFilter"

# Invitation links go out by email; in development the console backend prints them.
_email_backend = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends." + ("console.EmailBackend" if DEBUG else "smtp.EmailBackend"),
)
MAILERS = {"default": {"BACKEND": _email_backend}}
if _email_backend.endswith("smtp.EmailBackend"):
    MAILERS["default"]["OPTIONS"] = {
        "host": env_str("EMAIL_HOST", "localhost"),
        "port": env_int("EMAIL_PORT", 587),
        "username": env_str("EMAIL_HOST_USER", ""),
        "password": env_str("EMAIL_HOST_PASSWORD", ""),
        "use_tls": env_bool("EMAIL_USE_TLS", True),
    }
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "accesscontrol@localhost")
# Where the console lives, for links in emails (services have no request to build them from).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
INVITATION_LIFETIME_DAYS = env_int("INVITATION_LIFETIME_DAYS", 7)
# The largest SCIM request body accepted (413 beyond): a User or Group PATCH is a few KB.
SCIM_MAX_BODY_BYTES = env_int("SCIM_MAX_BODY_BYTES", 1024 * 1024)
# Audit rows on PostgreSQL live in monthly partitions (docs/audit.md): `manage.py
# audit_partitions` (after every migrate, and daily) makes this many months ahead and drops
# whole months older than the retention.
AUDIT_RETENTION_MONTHS = env_positive_int("AUDIT_RETENTION_MONTHS", 24)
AUDIT_PARTITIONS_AHEAD = env_positive_int("AUDIT_PARTITIONS_AHEAD", 3)
