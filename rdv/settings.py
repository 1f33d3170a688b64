"""RDV Santé settings: one module, configured from the environment only."""

from __future__ import annotations

import base64
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from rdv.core.env import env_bool, env_int, env_list, env_str, load_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RDV_VAR_DIR", str(BASE_DIR / "var")))

# `make run` writes generated local secrets here (mode 0600, git-ignored). Real
# environment variables always win over the file.
load_env_file(Path(env_str("RDV_LOCAL_ENV", str(VAR_DIR / "local.env"))))

# "production" turns on every transport-security setting and refuses unsafe configuration.
RDV_ENV = env_str("RDV_ENV", "development")
if RDV_ENV not in ("development", "production"):
    raise ImproperlyConfigured("RDV_ENV must be 'development' or 'production'.")
PRODUCTION = RDV_ENV == "production"

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")

# Field-level encryption of health data (rdv.core.crypto): "key_id:base64url(32 bytes)",
# comma-separated, the first one encrypts, all of them decrypt. The blind-index key
# (HMAC-SHA256) is separate: rotating encryption keys must not change lookups.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")
BLIND_INDEX_KEY = env_str("BLIND_INDEX_KEY", "")
# Bearer token the operator's Prometheus sends to GET /metrics; empty: no /metrics at all.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "django_tasks",
    "django_tasks_db",
    "csp",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "rdv.core",
    "rdv.accounts",
    "rdv.clinics",
    "rdv.patients",
    "rdv.scheduling",
    "rdv.audit",
    "rdv.notifications",
    "rdv.walkin",
    "rdv.billing",
    "rdv.finder",
    "rdv.continuity",
    "rdv.web",
]

MIDDLEWARE = [
    # First: times every request and counts every answer, including refusals below.
    "rdv.core.metrics.request_metrics",
    # A database restarting or failing over: 503 + Retry-After, never a 500.
    "rdv.core.middleware.database_unavailable",
    "django.middleware.security.SecurityMiddleware",
    "rdv.core.middleware.permissions_policy",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks a session as verified by a second factor (the admin site requires it).
    "django_otp.middleware.OTPMiddleware",
    "rdv.audit.context.middleware",
    # Read-only mode: refuses writes (503) and makes the request's database session
    # read-only (rdv.continuity.readonly).
    "rdv.continuity.readonly.middleware",
    "rdv.core.middleware.staff_idle_timeout",
    "rdv.web.portal.no_store_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "rdv.urls"
WSGI_APPLICATION = "rdv.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
                "rdv.continuity.readonly.context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'rdv.sqlite3'}")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work during a write; IMMEDIATE takes the write lock at BEGIN so
    # two booking transactions queue on busy_timeout instead of failing to upgrade a
    # read lock (SQLite's "database is locked" under contention).
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not Django's shared in-memory database: concurrency tests need real
    # connections from several threads.
    # Named after the main database, so runs with different DATABASE_URLs never share one.
    _db["TEST"] = {"NAME": str(Path(_db["NAME"]).with_suffix(".test.sqlite3"))}
else:
    _db["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Accounts -------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    # NIST SP 800-63B: length (10, or 12 for staff; at most 256), no composition rules.
    {"NAME": "rdv.accounts.validators.PasswordLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]
LOGIN_URL = "sign_in"
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 30, minimum=1)
# A password-reset link works once, for this long (seconds), and stops working as soon as
# the password changes (rdv.accounts.password_reset).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3600, minimum=300)

# --- Two factors ---------------------------------------------------------------------
# Staff sign in with a password and a code from an authenticator app (TOTP), a recovery
# code, or with a passkey (rdv.accounts.mfa, rdv.accounts.passkeys).
OTP_TOTP_ISSUER = "RDV Santé"
# WebAuthn: the site's domain, and the exact origin the browser reports (scheme, host, port).
WEBAUTHN_RP_ID = env_str("WEBAUTHN_RP_ID", "localhost")
WEBAUTHN_RP_NAME = "RDV Santé"
WEBAUTHN_ORIGIN = env_str("WEBAUTHN_ORIGIN", "http://localhost:8000")
WEBAUTHN_CHALLENGE_SECONDS = env_int("WEBAUTHN_CHALLENGE_SECONDS", 300, minimum=30)
# An administrator's enrolment code, then the enrolment-only token it buys.
MFA_ENROLMENT_CODE_HOURS = env_int("MFA_ENROLMENT_CODE_HOURS", 72, minimum=1)
MFA_ENROLMENT_TOKEN_MINUTES = env_int("MFA_ENROLMENT_TOKEN_MINUTES", 15, minimum=1)
if PRODUCTION and not WEBAUTHN_ORIGIN.startswith("https://"):
    raise ImproperlyConfigured("WEBAUTHN_ORIGIN must be an https:// origin in production.")
# The site's public address, for links in emails: never taken from a request's Host
# header, which a client chooses. Passkeys are bound to the same origin, hence the default.
SITE_URL = env_str("SITE_URL", WEBAUTHN_ORIGIN).rstrip("/")
if PRODUCTION and not SITE_URL.startswith("https://"):
    raise ImproperlyConfigured("SITE_URL must be an https:// address in production.")

# --- Languages and time ---------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "America/Toronto"

# --- Static files ---------------------------------------------------------------------
STATIC_URL = "static/"
# Overridable so that test runs side by side do not collect into one folder.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Email --------------------------------------------------------------------------
# Local runs print mail on the console (the sign-up code appears in `make run`'s output);
# production sends through an SMTP relay. Tests point the SMTP backend at a real server.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=PRODUCTION)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "RDV Santé <ne-pas-repondre@rdvsante.example>")

# --- Background work ------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

# --- Booking rules --------------------------------------------------------------------
SLOT_HORIZON_DAYS = env_int("SLOT_HORIZON_DAYS", 60, minimum=1)
HOLD_MINUTES = env_int("HOLD_MINUTES", 5, minimum=1)
# Notifications (rdv.notifications): tries before a message is marked failed, the first
# retry's delay (doubling each time), and how long a worker owns a message it claimed.
NOTIFICATION_MAX_ATTEMPTS = env_int("NOTIFICATION_MAX_ATTEMPTS", 6, minimum=1)
NOTIFICATION_RETRY_SECONDS = env_int("NOTIFICATION_RETRY_SECONDS", 60, minimum=1)
NOTIFICATION_LEASE_SECONDS = env_int("NOTIFICATION_LEASE_SECONDS", 120, minimum=10)
NOTIFICATION_SWEEP_SECONDS = env_int("NOTIFICATION_SWEEP_SECONDS", 10, minimum=1)
# Text messages: "console" (the log), "file" (JSON lines in SMS_FILE_PATH) or "twilio".
SMS_BACKEND = env_str("SMS_BACKEND", "console")
if SMS_BACKEND not in ("console", "file", "twilio"):
    raise ImproperlyConfigured("SMS_BACKEND must be console, file or twilio.")
SMS_FILE_PATH = env_str("SMS_FILE_PATH", str(VAR_DIR / "sms.jsonl"))
TWILIO_API_BASE = env_str("TWILIO_API_BASE", "https://api.twilio.com").rstrip("/")
TWILIO_ACCOUNT_SID = env_str("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = env_str("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = env_str("TWILIO_FROM_NUMBER", "")
TWILIO_STATUS_CALLBACK = env_str("TWILIO_STATUS_CALLBACK", "")
if SMS_BACKEND == "twilio" and not (
    TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER
):
    raise ImproperlyConfigured(
        "SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER."
    )
# The console and file backends write phone numbers and texts where logs go.
if PRODUCTION and SMS_BACKEND != "twilio":
    raise ImproperlyConfigured("Production sends text messages through Twilio (SMS_BACKEND).")
if PRODUCTION and SMS_BACKEND == "twilio" and not TWILIO_API_BASE.startswith("https://"):
    raise ImproperlyConfigured("TWILIO_API_BASE must be an https:// address in production.")
# One-click links in messages (view, confirm, cancel) stop working after this many days.
APPOINTMENT_LINK_DAYS = env_int("APPOINTMENT_LINK_DAYS", 30, minimum=1)
# Finished task results are pruned nightly after this many days (failed ones later).
TASK_RESULT_DAYS = env_int("TASK_RESULT_DAYS", 2, minimum=1)
TASK_RESULT_FAILED_DAYS = env_int("TASK_RESULT_FAILED_DAYS", 30, minimum=1)
# A family visit books this many people at most in one step.
FAMILY_VISIT_MAX = 6
CANCELLATION_GRACE_MINUTES = env_int("CANCELLATION_GRACE_MINUTES", 15, minimum=0)
SEARCH_MAX_RADIUS_KM = env_int("SEARCH_MAX_RADIUS_KM", 200, minimum=1)
SEARCH_MAX_DAYS = env_int("SEARCH_MAX_DAYS", 90, minimum=1)
SEARCH_MAX_AHEAD_DAYS = env_int("SEARCH_MAX_AHEAD_DAYS", 730, minimum=1)

# --- Appointment finder and payments (rdv.finder, rdv.billing) -------------------------
# The finder's price before taxes, in cents; GST 5 % and QST 9.975 % are added on it.
FINDER_PRICE_CENTS = env_int("FINDER_PRICE_CENTS", 1895, minimum=0)
# Registration numbers printed on receipts (the demo's are fictitious).
GST_REGISTRATION_NUMBER = env_str("GST_REGISTRATION_NUMBER", "123456789 RT0001")
QST_REGISTRATION_NUMBER = env_str("QST_REGISTRATION_NUMBER", "1234567890 TQ0001")
BILLING_LEGAL_NAME = env_str("BILLING_LEGAL_NAME", "RDV Santé")
# "Offer it to me first": the slot is held for the request this many minutes.
FINDER_OFFER_MINUTES = env_int("FINDER_OFFER_MINUTES", 15, minimum=1)
# A request's deadline is at most this many days after it is made.
FINDER_MAX_DEADLINE_DAYS = env_int("FINDER_MAX_DEADLINE_DAYS", 60, minimum=1)
# An alert sends at most one message in this many minutes.
FINDER_ALERT_QUIET_MINUTES = env_int("FINDER_ALERT_QUIET_MINUTES", 60, minimum=0)
# How often the worker looks for expired offers, passed deadlines and time-based slot
# events (expired holds, released reservations).
FINDER_SWEEP_SECONDS = env_int("FINDER_SWEEP_SECONDS", 30, minimum=1)
# "test" (built in: our own page stands in for the card form) or "stripe".
PAYMENT_PROVIDER = env_str("PAYMENT_PROVIDER", "test")
if PAYMENT_PROVIDER not in ("test", "stripe"):
    raise ImproperlyConfigured("PAYMENT_PROVIDER must be test or stripe.")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
# Stripe's own default tolerance for a webhook's signed timestamp.
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, minimum=1)
if PAYMENT_PROVIDER == "stripe" and not (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET."
    )
if PRODUCTION and PAYMENT_PROVIDER == "test":
    raise ImproperlyConfigured("The test payment provider cannot run in production.")
if PRODUCTION and not STRIPE_API_BASE.startswith("https://"):
    raise ImproperlyConfigured("STRIPE_API_BASE must be an https:// address in production.")
REFUND_MAX_ATTEMPTS = env_int("REFUND_MAX_ATTEMPTS", 8, minimum=1)
# Appointment types of which one health card may hold only one upcoming appointment
# (anti-hoarding; empty turns the rule off).
ONE_UPCOMING_PER_CARD = env_list(
    "ONE_UPCOMING_PER_CARD", "urgent,priority,follow_up,periodic,pregnancy,child_0_5"
)

# --- Cache and abuse limits ---------------------------------------------------------
# Redis when configured (shared by every app server); otherwise each process counts on
# its own, which is enough for the embedded mode.
REDIS_URL = env_str("REDIS_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# scope=rate, rate as count/period with period s, m, h or d (django-ratelimit syntax).
RATE_LIMITS = dict(
    item.split("=", 1)
    for item in env_list(
        "RATE_LIMITS",
        "signin=10/m,token=10/m,signup=5/h,hold=30/m,book=20/m,search=120/m,password_reset=5/h,"
        "caller_lookup=60/h",
    )
)
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", default=True)
RATELIMIT_FAIL_OPEN = True  # see rdv/api/limits.py

# --- Audit log ------------------------------------------------------------------------
# Only a benchmark may turn auditing off, and never in production (checked below).
AUDIT_ENABLED = env_bool("AUDIT_ENABLED", default=True)
# Chain heads are written here, outside the database; in production, a path on storage
# the database host cannot rewrite (docs/security.md).
AUDIT_ANCHOR_PATH = env_str("AUDIT_ANCHOR_PATH", str(VAR_DIR / "audit-anchors.log"))
AUDIT_ANCHOR_MINUTES = env_int("AUDIT_ANCHOR_MINUTES", 10, minimum=1)
# Entries are sealed into the chain right after their commit; the worker also sweeps
# every AUDIT_SEAL_SECONDS, and verify_audit fails if one waits longer than the grace.
AUDIT_SEAL_SECONDS = env_int("AUDIT_SEAL_SECONDS", 15, minimum=1)
AUDIT_SEAL_GRACE_SECONDS = env_int("AUDIT_SEAL_GRACE_SECONDS", 300, minimum=30)

# --- Privacy (Quebec Law 25) ----------------------------------------------------------
# The person in charge of the protection of personal information, named on the privacy
# page with a way to reach them. The defaults are a fictional role and address for the
# demo; a real deployment sets the real person.
PRIVACY_OFFICER_NAME = env_str(
    "PRIVACY_OFFICER_NAME", "Équipe de la protection des renseignements personnels"
)
PRIVACY_OFFICER_TITLE = env_str(
    "PRIVACY_OFFICER_TITLE", "Responsable de la protection des renseignements personnels"
)
PRIVACY_OFFICER_EMAIL = env_str("PRIVACY_OFFICER_EMAIL", "privacy@rdvsante.example")
# How long the appointments of a deleted account are kept after the last one, before
# `manage.py purge_expired_records` destroys them: three years (with a leap day), the
# Civil Code's prescription for personal actions (docs/privacy.md).
PRIVACY_RETENTION_DAYS = env_int("PRIVACY_RETENTION_DAYS", 3 * 365 + 1, minimum=1)

# --- HTTP hardening -------------------------------------------------------------------
# No inline script or style anywhere: what a page needs comes from our own static files,
# or carries the per-request nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), payment=(), usb=(), interest-cohort=(), "
    "geolocation=(self), publickey-credentials-get=(self), publickey-credentials-create=(self)"
)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Database sessions that are still saved in read-only mode (rdv.continuity.sessions).
SESSION_ENGINE = "rdv.continuity.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=PRODUCTION)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=PRODUCTION)
# Load balancers probe the app servers directly over http: no redirect for their checks.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 63_072_000 if PRODUCTION else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = PRODUCTION
SECURE_HSTS_PRELOAD = PRODUCTION
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Staff sessions end after this much inactivity (rdv.accounts.middleware).
STAFF_IDLE_TIMEOUT_SECONDS = env_int("STAFF_IDLE_TIMEOUT_SECONDS", 30 * 60, minimum=60)

# --- Continuity (rdv.continuity; docs/backups.md and docs/operations.md) --------------
# Read-only mode: on here, whatever the admin switch says (e.g. while serving from a replica).
READ_ONLY = env_bool("READ_ONLY", default=False)
# What a refused write's Retry-After says (seconds).
READ_ONLY_RETRY_AFTER_SECONDS = env_int("READ_ONLY_RETRY_AFTER_SECONDS", 300, minimum=1)
# How long a process trusts its last reading of the admin switch (seconds).
READ_ONLY_CHECK_SECONDS = env_int("READ_ONLY_CHECK_SECONDS", 2, minimum=0)
# Backups: encrypted with their own keys ("key_id:base64url(32 bytes)", the first encrypts,
# all decrypt), never the field-encryption keys. Kept in BACKUP_DIR and copied to
# BACKUP_COPY_DIR (another disk or host mount); retention below.
BACKUP_ENCRYPTION_KEYS = env_list("BACKUP_ENCRYPTION_KEYS", "")
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(VAR_DIR / "backups")))
BACKUP_COPY_DIR = env_str("BACKUP_COPY_DIR", "")
BACKUP_KEEP_LAST = env_int("BACKUP_KEEP_LAST", 24, minimum=1)
BACKUP_KEEP_DAILY = env_int("BACKUP_KEEP_DAILY", 14, minimum=0)
BACKUP_KEEP_MONTHLY = env_int("BACKUP_KEEP_MONTHLY", 12, minimum=0)
# A last successful backup older than this is reported (metric, /readyz detail).
BACKUP_MAX_AGE_MINUTES = env_int("BACKUP_MAX_AGE_MINUTES", 26 * 60, minimum=1)
# Who is emailed when a backup fails (the log and the metric always say it).
OPERATOR_EMAILS = env_list("OPERATOR_EMAILS", "")
# /readyz: a task due this long ago and not yet taken means the worker is not working.
WORKER_STALE_SECONDS = env_int("WORKER_STALE_SECONDS", 120, minimum=10)
# "json" (one object per line, for the log collector) or "text" (a terminal).
LOG_FORMAT = env_str("LOG_FORMAT", "json" if PRODUCTION else "text")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or text.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "rdv.core.logs.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "rdv.core.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}


def _key_bytes(keys: list[str]) -> list[bytes]:
    """The keys' bytes, however their base64 is written (padding, alphabet)."""
    decoded = []
    for key in keys:
        text = key.partition(":")[2].strip().replace("+", "-").replace("/", "_").rstrip("=")
        try:
            decoded.append(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except ValueError:
            continue  # malformed: refused where the key is parsed
    return decoded


def _refuse_unsafe_production() -> None:
    """Production must not start with settings that are only fit for a laptop."""
    placeholders = ("change", "secret", "insecure", "example", "placeholder", "xxx")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production.")
    if len(SECRET_KEY) < 50 or any(p in SECRET_KEY.lower() for p in placeholders):
        raise ImproperlyConfigured("SECRET_KEY is missing, too short or a placeholder.")
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env_bool(
        "ALLOW_SQLITE_IN_PRODUCTION", default=False
    ):
        raise ImproperlyConfigured(
            "Production runs on PostgreSQL; set ALLOW_SQLITE_IN_PRODUCTION=true to override."
        )
    if not AUDIT_ENABLED:
        raise ImproperlyConfigured("The audit log cannot be disabled in production.")
    if not FIELD_ENCRYPTION_KEYS or len(BLIND_INDEX_KEY) < 40:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY are required.")
    if set(_key_bytes(BACKUP_ENCRYPTION_KEYS)) & set(_key_bytes(FIELD_ENCRYPTION_KEYS)):
        raise ImproperlyConfigured("BACKUP_ENCRYPTION_KEYS must not reuse a field-encryption key.")
    if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
        raise ImproperlyConfigured("METRICS_TOKEN is too short (at least 32 characters).")


if PRODUCTION:
    _refuse_unsafe_production()
