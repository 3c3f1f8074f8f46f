"""Settings for Flowforge. Everything comes from the environment (SPEC §7) with safe defaults.

With no variable set the platform runs on one machine: SQLite and Celery's filesystem broker under ./var.
"""
from pathlib import Path

import dj_database_url

from .env import env_bool, env_float, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AUTOMATION_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)
# The fallback key only exists so a newcomer's first command works; production profiles must set SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY", "insecure-dev-key-change-me-" + "x" * 40)
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "automation.admin_site.FlowforgeAdminConfig",  # django.contrib.admin with the Flowforge site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "social_django",
    # Layers, top to bottom: builder_ui → triggers → runs → workflows → connectors (automation/tests/test_layers.py).
    "workflows",
    "runs",
    "triggers",
    "connectors",
    "builder_ui",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /hooks/<token> is answered here, past the session/CSRF/auth/messages middleware it never uses.
    "triggers.hooks.WebhookShortcut",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "automation.urls"
WSGI_APPLICATION = "automation.wsgi.application"
ASGI_APPLICATION = "automation.asgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_PREPARED_STATEMENTS", True):
    # Django's cursors never prepare; this lets the engine prepare its per-task statements (runs.statements).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share one SQLite file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves static files from the apps' folders directly, so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/admin/"

# --- Celery -------------------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("out", "processed"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT = "automation.filesystem_broker:Transport"  # kombu's, minus a half-written-file race
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "out"),
        "data_folder_out": str(BROKER_DIR / "out"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": env_float("CELERY_BROKER_POLLING_INTERVAL", 0.05),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        # A broker that accepts connections but never answers (frozen, partitioned) would otherwise hang
        # every publish, and with it the webhook/API accept path, forever: bound each socket operation.
        CELERY_BROKER_TRANSPORT_OPTIONS["socket_timeout"] = env_float("BROKER_SOCKET_TIMEOUT", 2.0)
        CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"] = env_float("BROKER_SOCKET_TIMEOUT", 2.0)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Housekeeping that beat runs on every installation (synced into django-celery-beat's tables at start-up).
CELERY_BEAT_SCHEDULE = {
    "flowforge-prune-run-history": {"task": "runs.prune", "schedule": 3600.0},
    "flowforge-prune-webhook-deliveries": {"task": "triggers.prune_deliveries", "schedule": 3600.0},
    "connectors.refresh_tokens": {"task": "connectors.refresh_tokens", "schedule": 300.0},
}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup otherwise closes the database connection after every task (8 ms to reconnect);
# runs/signals.py instead drops broken or expired connections before each task, and runs/services.py
# reconnects once when the server dropped the connection, so a restarted PostgreSQL is still survived.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)

# --- Cache --------------------------------------------------------------------------------------------------
# Shared state across web processes: the webhook rate limit (triggers/hooks.py) and API throttles. With Redis
# (CACHE_URL, or else a redis:// broker) the counts are one across every gunicorn worker; the embedded default
# keeps an in-process LocMemCache. Keys live under their own prefix next to the broker's queues.
_REDIS_BROKER = CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
CACHE_URL = env_str("CACHE_URL", CELERY_BROKER_URL if _REDIS_BROKER else "")
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "flowforge-cache"),
            # A frozen Redis must not hang the webhook accept path (the rate limit fails open on errors, then
            # skips the cache for a few seconds), which answers within 1 s with the broker's fail-fast publish.
            "OPTIONS": {"socket_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.25),
                        "socket_connect_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.25)},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Flowforge ----------------------------------------------------------------------------------------------
AUTOMATION_FILES_ROOT = Path(env_str("AUTOMATION_FILES_ROOT", str(BASE_DIR / "files")))
AUTOMATION_ALLOW_SHELL = env_bool("AUTOMATION_ALLOW_SHELL", False)
AUTOMATION_HTTP_ALLOW_PRIVATE = env_bool("AUTOMATION_HTTP_ALLOW_PRIVATE", False)
# Networks outbound requests may reach despite the private-address guard, e.g. "10.1.2.0/24,fd00:1::/64": one
# internal service without opening the rest (169.254.169.254 stays refused unless listed).
AUTOMATION_HTTP_ALLOWED_NETWORKS = env_networks("AUTOMATION_HTTP_ALLOWED_NETWORKS")
# Worker liveness (runs/workers.py): each worker process beats its row this often; a worker whose row is older
# than AUTOMATION_WORKER_DEAD_SECONDS (or whose pid is gone, seen from the same machine) is dead and its running
# task runs are recovered at once. A task run of a worker with no row (an older worker) is presumed lost when its
# own heartbeat is older than the lease.
AUTOMATION_WORKER_BEAT_SECONDS = env_float("AUTOMATION_WORKER_BEAT_SECONDS", 1.0)
AUTOMATION_WORKER_DEAD_SECONDS = env_float("AUTOMATION_WORKER_DEAD_SECONDS", 5.0)
AUTOMATION_TASK_LEASE_SECONDS = env_float("AUTOMATION_TASK_LEASE_SECONDS", 30.0)
AUTOMATION_HEARTBEAT_SECONDS = env_float("AUTOMATION_HEARTBEAT_SECONDS", 5.0)
# On Redis, a queued task run whose message is neither in its queue nor held by a worker this long after it was
# sent is sent again (runs/recovery.py); otherwise, or with a long queue, after AUTOMATION_REQUEUE_AFTER_SECONDS.
AUTOMATION_LOST_MESSAGE_SECONDS = env_float("AUTOMATION_LOST_MESSAGE_SECONDS", 5.0)
AUTOMATION_REQUEUE_AFTER_SECONDS = env_float("AUTOMATION_REQUEUE_AFTER_SECONDS", 60.0)
# How often each worker runs the recovery sweep (one at a time across workers); every query in it is indexed.
AUTOMATION_SWEEP_SECONDS = env_float("AUTOMATION_SWEEP_SECONDS", 2.0)
# Attempts lost with their worker are retried beyond `retries`, up to this many, so redelivery cannot loop.
AUTOMATION_MAX_LOST_ATTEMPTS = env_int("AUTOMATION_MAX_LOST_ATTEMPTS", 3)
AUTOMATION_LOG_LIMIT = env_int("AUTOMATION_LOG_LIMIT", 256 * 1024)
# Control flow (SPEC §9): items one for_each task may have, and how deep flow.run_workflow may nest runs.
AUTOMATION_MAX_ITEMS = env_int("AUTOMATION_MAX_ITEMS", 1000)
AUTOMATION_MAX_DEPTH = env_int("AUTOMATION_MAX_DEPTH", 8)
# The base of absolute links the platform hands out (webhook and resume URLs), SPEC §7.
PUBLIC_URL = env_str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
# Run-history retention (runs.retention.prune_runs); a workflow's retention_days / retention_max_runs override.
AUTOMATION_RETENTION_DAYS = env_int("AUTOMATION_RETENTION_DAYS", 30)
AUTOMATION_RETENTION_FAILED_DAYS = env_int("AUTOMATION_RETENTION_FAILED_DAYS", 90)
AUTOMATION_RETENTION_MAX_RUNS = env_int("AUTOMATION_RETENTION_MAX_RUNS", 10000)

GITHUB_CLIENT_ID = env_str("GITHUB_CLIENT_ID")
GITHUB_CLIENT_SECRET = env_str("GITHUB_CLIENT_SECRET")
GITHUB_API_URL = env_str("GITHUB_API_URL", "https://api.github.com").rstrip("/")
GITHUB_OAUTH_URL = env_str("GITHUB_OAUTH_URL", "https://github.com").rstrip("/")
# The Slack Web API that slack.* actions call (`<SLACK_API_URL>/chat.postMessage`); tests point it at a fake.
SLACK_API_URL = env_str("SLACK_API_URL", "https://slack.com/api").rstrip("/")

SALT_KEY = env_list("FIELD_ENCRYPTION_SALT", ["flowforge-default-salt"])

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "flowforge@localhost")

# --- API ----------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its scheme is what a 401's WWW-Authenticate names (with session first, DRF answers 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "automation.api.exception_handler",
    # Bounded size and nesting for every JSON body (DRF's own parser lets a deep body's RecursionError out as a 500).
    "DEFAULT_PARSER_CLASSES": [
        "automation.api.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    # Generous: they stop runaway scripts, not people; the builder polls a run once a second.
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/minute"),
        "user": env_str("API_THROTTLE_USER", "3000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Flowforge API",
    "DESCRIPTION": "Workflow automation: definitions, runs, actions and connections.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc come from the drf-spectacular-sidecar app's static files, so /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"RunStatusEnum": "runs.models.RUN_STATUS_CHOICES",
                            "TaskStatusEnum": "runs.models.TASK_STATUS_CHOICES",
                            "TriggerKindEnum": "runs.models.TRIGGER_KIND_CHOICES"},
    # The default enum hook, then the error answers (400/401/403/404/409/413/415/429) every operation can give.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "automation.schema.document_errors"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}


# --- Operations ---------------------------------------------------------------------------------------------
# /healthz and /metrics (automation/health.py). /metrics answers `Authorization: Bearer <METRICS_TOKEN>` (the
# scraper) or a logged-in staff member; an empty METRICS_TOKEN leaves staff sessions only.
METRICS_TOKEN = env_str("METRICS_TOKEN")
HEALTHZ_TIMEOUT_SECONDS = env_float("HEALTHZ_TIMEOUT_SECONDS", 1.0)
# `json` writes one JSON object per line with the run and task ids bound by automation.logging.bind_log_context.
LOG_FORMAT = env_str("LOG_FORMAT", "text")
if LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"LOG_FORMAT must be 'text' or 'json', got {LOG_FORMAT!r}")
if LOG_FORMAT == "json":
    from .logging import json_logging

    LOGGING = json_logging(LOGGING)

# --- OAuth (GitHub) -----------------------------------------------------------------------------------------
# Connecting GitHub accounts (connectors/github): social-auth runs the OAuth2 dance for an already logged-in
# user and never logs anyone in; the pipeline keeps the tokens encrypted in ConnectedAccount, not extra_data.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "connectors.github.backend.GithubConnectOAuth2",
]
SOCIAL_AUTH_GITHUB_KEY = GITHUB_CLIENT_ID  # the backend re-reads GITHUB_CLIENT_ID/SECRET at request time
SOCIAL_AUTH_GITHUB_SECRET = GITHUB_CLIENT_SECRET
SOCIAL_AUTH_GITHUB_SCOPE = ["repo"]
SOCIAL_AUTH_URL_NAMESPACE = "social"
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_REDIRECT_IS_HTTPS = env_bool("SOCIAL_AUTH_REDIRECT_IS_HTTPS", False)
SOCIAL_AUTH_LOGIN_REDIRECT_URL = "/connections/"
SOCIAL_AUTH_NEW_ASSOCIATION_REDIRECT_URL = "/connections/"
SOCIAL_AUTH_PIPELINE = (
    "social_core.pipeline.social_auth.social_details",
    "social_core.pipeline.social_auth.social_uid",
    "social_core.pipeline.social_auth.auth_allowed",
    "social_core.pipeline.social_auth.social_user",  # refuses a GitHub account already connected elsewhere
    "connectors.github.pipeline.refuse_taken_account",
    "social_core.pipeline.social_auth.associate_user",
    "social_core.pipeline.social_auth.load_extra_data",
    "connectors.github.pipeline.store_connected_account",
)
SOCIAL_AUTH_DISCONNECT_PIPELINE = (
    "social_core.pipeline.disconnect.allowed_to_disconnect",
    "social_core.pipeline.disconnect.get_entries",
    "connectors.github.pipeline.disconnect_connected_accounts",  # revokes at GitHub, deletes the account
    "social_core.pipeline.disconnect.disconnect",
)
# Refused flows (state mismatch, not logged in, denied at GitHub) answer with an error page and a 4xx status.
MIDDLEWARE = [*MIDDLEWARE, "social_django.middleware.SocialAuthExceptionMiddleware"]
