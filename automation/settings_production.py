"""Production profile: `DJANGO_SETTINGS_MODULE=automation.settings_production`.

Everything from `automation.settings`, then the hardening `manage.py check --deploy` asks for. It refuses to
start without a real SECRET_KEY and DATABASE_URL instead of falling back to the single-machine defaults.
TLS is expected to end at a reverse proxy that sets `X-Forwarded-Proto`.
"""
import os

from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_str
from .settings import *  # noqa: F403 - the profile is the base settings plus the overrides below
from .settings import LOGGING, SPECTACULAR_SETTINGS

_DEV_KEY_PREFIX = "insecure-dev-key-change-me-"


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set in production (see .env.example)")
    return value


def _secret_key() -> str:
    key = _required("SECRET_KEY")
    if key.startswith(_DEV_KEY_PREFIX) or key.startswith("django-insecure-"):
        raise ImproperlyConfigured("SECRET_KEY is the development default: generate a random one")
    if len(key) < 50 or len(set(key)) < 5:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters")
    return key


DEBUG = env_bool("DEBUG", False)
if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production; use automation.settings for development")
SECRET_KEY = _secret_key()
_required("DATABASE_URL")  # the base settings parsed it; production never falls back to SQLite
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1"])

# TLS ends at the proxy; trust its header only because the proxy is the one setting it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Probes and scrapers talk plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
# The builder reads the CSRF token from the page, not from the cookie.
CSRF_COOKIE_HTTPONLY = env_bool("CSRF_COOKIE_HTTPONLY", False)

# drf-spectacular's deploy check regenerates the OpenAPI schema and reports documentation gaps as warnings;
# they are not deployment risks, so `check --deploy` stays about security. CI validates the schema with
# `manage.py spectacular --validate`.
SPECTACULAR_SETTINGS = {**SPECTACULAR_SETTINGS, "ENABLE_DJANGO_DEPLOY_CHECK": False}

# Logs go to a collector: one JSON object per line unless the operator asks for text.
if env_str("LOG_FORMAT", "json") == "json":
    from .logging import json_logging

    LOGGING = json_logging(LOGGING)
