from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from automation import health
from automation.admin_site import favicon
from automation.api_docs import RedocView, SchemaView
from connectors.api import ActionListView, ProviderViewSet, SecretDetailView, SecretListView
from runs.api import RunViewSet
from triggers import resume
from workflows.api import WorkflowViewSet

router = DefaultRouter()
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("runs", RunViewSet, basename="run")
router.register("providers", ProviderViewSet, basename="provider")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
    path("api/actions/", ActionListView.as_view(), name="actions"),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # Swagger UI and ReDoc are served from this server's static files (drf-spectacular-sidecar): no CDN.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/connections/", include("connectors.oauth2.api")),
    path("api/secrets/", SecretListView.as_view(), name="secrets"),
    path("api/secrets/<str:name>/", SecretDetailView.as_view(), name="secret-detail"),
    path("api/", include(router.urls)),
    path("hooks/", include("triggers.urls")),
    path("resume/<str:token>", resume.resume, name="resume"),
    path("builder/", include("builder_ui.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("oauth/", include("social_django.urls", namespace="social")),
    path("connections/", include("connectors.oauth2.views")),
]

handler404 = "automation.api.not_found"
handler500 = "automation.api.server_error"
