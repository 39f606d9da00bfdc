"""Rampart settings. Every deployment knob comes from the environment (see README)."""
from pathlib import Path

from governance.envconfig import (database_from_url, embedded_secret_key, env, env_file, env_positive, env_secret,
                                   parse_sla)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("RAMPART_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env("DEBUG", False, cast=bool)
SECRET_KEY = env("SECRET_KEY", "") or embedded_secret_key(VAR_DIR)
ALLOWED_HOSTS = env("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"], cast=list)
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS", [], cast=list)
BASE_URL = env("RAMPART_BASE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: the API docs work offline
    "django_otp",  # two-factor sign-in (governance/accounts/twofactor.py): authenticator app + recovery codes
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "governance.accounts",
    "governance.audit",
    "governance.rmf",
    "governance.inventory",
    "governance.findings",
    "governance.risks",
    "governance.lineage",
    "governance.tabletop",
    "governance.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "governance.middleware.ContentSecurityPolicyMiddleware",  # script only from our static files
    "governance.middleware.RequestSizeLimitMiddleware",  # before anything reads (and spools) the body
    "governance.middleware.HostileInputMiddleware",  # NUL, lone surrogates, deep JSON: 400 before any view
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "governance.middleware.ApiSlashMiddleware",  # /api/… with or without the trailing slash: the same endpoint
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): this session passed the second factor
    "governance.accounts.middleware.AccountStepMiddleware",  # admin-chosen password changed, required 2FA enrolled
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"

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
                "governance.accounts.context_processors.roles",
                "governance.risks.context_processors.signoffs",
                "governance.dashboard.definitions.definitions",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

DATABASES = {"default": database_from_url(env("DATABASE_URL", "sqlite:///var/rampart.sqlite3"), BASE_DIR)}
DATABASES["default"]["TEST"] = {"NAME": env("RAMPART_TEST_DB_NAME", "test_rampart")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "governance.dashboard.staticfinders.PlotlyFinder",
]
WHITENOISE_USE_FINDERS = env("WHITENOISE_USE_FINDERS", True, cast=bool)
STORAGES = {  # static files named by content and gzipped at collectstatic (governance/static_storage.py)
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "governance.static_storage.StaticStorage"},
}
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))

# Uploads: small forms in memory, reports spill to disk; the import size cap is checked separately.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
RAMPART_MAX_REPORT_BYTES = env("RAMPART_MAX_REPORT_BYTES", 100 * 1024 * 1024, cast=int)
# Ceiling on any request body, refused with 413 before it is read (governance/middleware.py).
RAMPART_MAX_REQUEST_BYTES = env("RAMPART_MAX_REQUEST_BYTES", RAMPART_MAX_REPORT_BYTES + 1024 * 1024, cast=int)

RAMPART_SLA_DAYS = parse_sla(env("RAMPART_SLA_DAYS", "critical=7,high=30,medium=90,low=180"))
RAMPART_MAX_LINEAGE_EVENT_BYTES = env("RAMPART_MAX_LINEAGE_EVENT_BYTES", 2 * 1024 * 1024, cast=int)
RAMPART_MAX_LINEAGE_BATCH = env("RAMPART_MAX_LINEAGE_BATCH", 1000, cast=int)
RAMPART_IMPORT_BATCH = env("RAMPART_IMPORT_BATCH", 2000, cast=int)
# Host names, addresses and CIDR networks that pull sources and lineage connectors may reach although private,
# loopback or link-local (governance/outbound.py builds the policy; a bad entry raises ImproperlyConfigured).
RAMPART_OUTBOUND_ALLOWED_HOSTS = env("RAMPART_OUTBOUND_ALLOWED_HOSTS", [], cast=list)
# Drop folders of scheduled pull sources must lie inside this folder (symlinks resolved), so that a source
# cannot make the worker read /etc or another app's files.
RAMPART_DROP_ROOT = Path(env("RAMPART_DROP_ROOT", str(VAR_DIR / "drop")))
# Key for credentials stored encrypted (lineage connectors); empty = derived from SECRET_KEY.
RAMPART_FIELD_KEY = env("RAMPART_FIELD_KEY", "")
# A connector credential written env:NAME may only name a variable with this prefix (never SECRET_KEY, DATABASE_URL …)
RAMPART_CREDENTIAL_ENV_PREFIX = env("RAMPART_CREDENTIAL_ENV_PREFIX", "RAMPART_CONNECTOR_")
RAMPART_IMPORT_LEASE_SECONDS = env("RAMPART_IMPORT_LEASE_SECONDS", 300, cast=int)
# The board report's PDF is printed by headless Chromium (governance/dashboard/pdf.py); without it the download says
# so and the browser's own print still works. Each PDF is bounded by the timeout (seconds).
RAMPART_CHROMIUM = env("RAMPART_CHROMIUM", "/usr/bin/chromium")
RAMPART_PDF_TIMEOUT = env_positive("RAMPART_PDF_TIMEOUT", 60)
# Worker liveness (worker/liveness.py): each worker writes a heartbeat every quarter of this (at most every 15 s);
# /healthz answers 503 when no worker was seen for this long.
RAMPART_WORKER_STALE_SECONDS = env_positive("RAMPART_WORKER_STALE_SECONDS", 120)
RAMPART_WORKER_HEARTBEAT_SECONDS = max(1, min(15, RAMPART_WORKER_STALE_SECONDS // 4))
# Celery beat records its latest tick here (the compose health check of beat reads it).
RAMPART_BEAT_TICK_FILE = VAR_DIR / "beat-tick"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env("SECURE_COOKIES", BASE_URL.startswith("https://"), cast=bool)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# Production behind TLS (README, "Security"): all off by default so `make run` works on plain http.
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT", False, cast=bool)
SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS", 0, cast=int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env("SECURE_HSTS_INCLUDE_SUBDOMAINS", False, cast=bool)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain http
if env("SECURE_PROXY_SSL_HEADER", False, cast=bool):  # only behind a proxy that sets (and strips) this header
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Sign-in throttle (governance/accounts/throttle.py): failures counted in the cache for the lockout window.
RAMPART_LOGIN_MAX_FAILURES = env("RAMPART_LOGIN_MAX_FAILURES", 10, cast=int)
RAMPART_LOGIN_MAX_FAILURES_PER_IP = env("RAMPART_LOGIN_MAX_FAILURES_PER_IP", 50, cast=int)
RAMPART_LOGIN_LOCKOUT_SECONDS = env("RAMPART_LOGIN_LOCKOUT_SECONDS", 900, cast=int)
# Two-factor sign-in (governance/accounts/twofactor.py): roles that must use it (e.g. "admin,ciso"; empty: optional
# for everyone), wrong codes per person before every code is refused for the lockout above.
RAMPART_TOTP_REQUIRED_ROLES = env("RAMPART_TOTP_REQUIRED_ROLES", [], cast=list)
RAMPART_OTP_MAX_FAILURES = env("RAMPART_OTP_MAX_FAILURES", 5, cast=int)
OTP_TOTP_ISSUER = env("RAMPART_TOTP_ISSUER", "Rampart")  # the name authenticator apps show beside the account
# API tokens (governance/accounts): the longest lifetime a token may be given, and how many days before its end its
# owner is warned by e-mail (beat: api-tokens-warn).
RAMPART_API_TOKEN_MAX_DAYS = env("RAMPART_API_TOKEN_MAX_DAYS", 365, cast=int)
RAMPART_API_TOKEN_WARN_DAYS = env("RAMPART_API_TOKEN_WARN_DAYS", 7, cast=int)

EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "rampart@localhost")
# Audit trail (README, "Security"): the chain's MAC key (empty = derived from SECRET_KEY) and earlier keys still
# accepted; checkpoints of the chain's end go to the log, and to this file and these addresses, every N seconds.
RAMPART_AUDIT_KEY = env_secret("RAMPART_AUDIT_KEY")
RAMPART_AUDIT_KEY_FALLBACKS = env("RAMPART_AUDIT_KEY_FALLBACKS", [], cast=list)
RAMPART_AUDIT_CHECKPOINT_FILE = env_file("RAMPART_AUDIT_CHECKPOINT_FILE")
RAMPART_AUDIT_CHECKPOINT_EMAIL = env("RAMPART_AUDIT_CHECKPOINT_EMAIL", [], cast=list)
RAMPART_AUDIT_CHECKPOINT_SECONDS = env_positive("RAMPART_AUDIT_CHECKPOINT_SECONDS", 300)

# Celery. Embedded default: a broker on the file system, needing no server.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "filesystem://localhost/")
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {"data_folder_in": str(BROKER_DIR), "data_folder_out": str(BROKER_DIR),
     "processed_folder": str(BROKER_DIR / "processed"), "store_processed": False,
     "control_folder": str(BROKER_DIR / "control")}
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": env("RAMPART_BROKER_VISIBILITY_TIMEOUT", 3600, cast=int)}
)
if CELERY_BROKER_URL.startswith("filesystem"):
    (BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "worker.broker:FilesystemTransport"  # a missing folder is a lost broker, not a crash
# Celery's consumer without the second close that killed the worker when Redis went away (worker/broker.py).
CELERY_WORKER_CONSUMER = "worker.broker:Consumer"
# Wait for the broker for as long as it takes (Celery's default gives up after 100 tries, about 45 minutes).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# One queue per kind of work (governance/queueing.py): a 100k-finding import never delays lineage processing, and
# workers can be added where the load is. A worker started without -Q consumes every queue.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = {name: {} for name in ("imports", "lineage", "default")}
CELERY_TASK_ROUTES = {
    **{f"worker.tasks.{t}": {"queue": "imports"} for t in ("process_import", "imports_resume_stale")},
    **{f"worker.tasks.{t}": {"queue": "lineage"} for t in ("process_lineage", "lineage_rules", "lineage_connector_run",
                                                            "lineage_connectors_due")},
}
CELERY_TASK_ALWAYS_EAGER = env("CELERY_TASK_ALWAYS_EAGER", False, cast=bool)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 3
# A web request never waits long on a dead broker: the run stays queued and beat resends it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "worker.liveness:TickingScheduler"  # records each tick for the health check
CELERY_BEAT_MAX_LOOP_INTERVAL = 30  # beat ticks at least this often
CELERY_BEAT_SCHEDULE = {
    "imports-resume-stale": {"task": "worker.tasks.imports_resume_stale", "schedule": 60.0},
    "pull-sources": {"task": "worker.tasks.sources_pull_due", "schedule": 60.0},
    "lineage-process": {"task": "worker.tasks.process_lineage", "schedule": 60.0},
    "lineage-rules": {"task": "worker.tasks.lineage_rules", "schedule": 900.0},
    "lineage-connectors": {"task": "worker.tasks.lineage_connectors_due", "schedule": 60.0},
    "acceptances-expire": {"task": "worker.tasks.acceptances_expire", "schedule": 300.0},
    "exercises-release-due": {"task": "worker.tasks.exercises_release_due", "schedule": 15.0},
    "api-tokens-warn": {"task": "worker.tasks.api_tokens_warn_expiring", "schedule": 3600.0},
    "audit-checkpoint": {"task": "worker.tasks.audit_checkpoint", "schedule": float(RAMPART_AUDIT_CHECKPOINT_SECONDS)},
    # hourly: the day's posture snapshot is updated in place, so the last run of a day holds its end-of-day figures
    # and a day beat was partly down still gets one
    "posture-snapshot": {"task": "worker.tasks.posture_snapshot", "schedule": 3600.0},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rampart API",
    "DESCRIPTION": "AI risk governance: inventory, NIST AI RMF profiles, findings, risks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR", "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "governance.api_schema.standard_errors"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
}
