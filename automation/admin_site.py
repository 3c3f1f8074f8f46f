"""The admin as the operator's home: Workflows and Runs first, the installation's internals grouped last.

`FlowforgeAdminConfig` replaces `django.contrib.admin` in INSTALLED_APPS so every `@admin.register` lands on
`FlowforgeAdminSite` (Django's documented way to override the default site).
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static

# The operator's apps, in this order; anything else (a third-party action's models) follows them.
FIRST_APPS = ("workflows", "runs", "connectors")
# Tables the platform keeps for itself: shown after everything else, under their own heading on the index.
INTERNAL_APPS = ("django_celery_beat", "authtoken", "social_django")


def _app_rank(app: dict) -> tuple[int, int, str]:
    label = app["app_label"]
    if label in FIRST_APPS:
        return (0, FIRST_APPS.index(label), "")
    if label in INTERNAL_APPS:
        return (2, INTERNAL_APPS.index(label), "")
    return (1, 0, app["name"])


def is_internal(app: dict) -> bool:
    return app["app_label"] in INTERNAL_APPS


class FlowforgeAdminSite(admin.AdminSite):
    site_header = "Flowforge"
    site_title = "Flowforge"
    index_title = "Operations"
    site_url = "/builder/"  # "View site": the visual builder is the product's front page

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        return sorted(super().get_app_list(request, app_label), key=_app_rank)

    def index(self, request: HttpRequest, extra_context: dict | None = None):
        apps = self.get_app_list(request)
        context = {"operator_apps": [app for app in apps if not is_internal(app)],
                   "internal_apps": [app for app in apps if is_internal(app)], **(extra_context or {})}
        return super().index(request, extra_context=context)


class FlowforgeAdminConfig(AdminConfig):
    default_site = "automation.admin_site.FlowforgeAdminSite"


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page outside the admin too (API docs, builder, raw logs)."""
    return HttpResponseRedirect(static("admin_extra/favicon.svg"))
