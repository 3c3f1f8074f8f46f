"""The OpenAPI schema at /api/schema/, readable when a browser opens it, and ReDoc with nothing from other hosts.

drf-spectacular answers `application/vnd.oai.openapi` (YAML) to any client that accepts anything, and browsers
download that type instead of showing it. A request that asks for HTML (a browser navigating) gets the same YAML
as `text/plain`, or `application/json` with `?format=json`; API clients and Swagger UI, which never ask for
HTML, get exactly what they got before.
"""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from drf_spectacular.renderers import OpenApiJsonRenderer2, OpenApiYamlRenderer
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response


class OpenApiYamlTextRenderer(OpenApiYamlRenderer):
    """The YAML schema as plain text, which every browser displays."""

    media_type = "text/plain"


class BrowserSchemaNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None):
        wanted = format_suffix or request.query_params.get(self.settings.URL_FORMAT_OVERRIDE)
        if "text/html" in request.META.get("HTTP_ACCEPT", "") and wanted in (None, "yaml", "json"):
            renderer = OpenApiJsonRenderer2() if wanted == "json" else OpenApiYamlTextRenderer()
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class SchemaView(SpectacularAPIView):
    content_negotiation_class = BrowserSchemaNegotiation


class RedocView(SpectacularRedocView):
    """ReDoc from the sidecar's static files, without drf-spectacular's web fonts (templates/api_docs/redoc.html).

    ReDoc's bundle always shows its vendor's logo from their CDN (and hides it when that fails); the policy keeps
    the browser from asking, so reading the docs tells no other host.
    """

    template_name = "api_docs/redoc.html"

    @extend_schema(exclude=True)  # a page, not an API operation (the parent's own get says so too)
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = "img-src 'self' data:"
        return response
