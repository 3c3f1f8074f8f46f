"""API-wide conventions: every error answers `{"errors": [{"path", "message"}]}` with its status (SPEC §6);
validation errors are 400 with the path of the offending field."""
from __future__ import annotations

import codecs
import json

from django.conf import settings
from django.http import JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import status
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.definition import InvalidDefinition
from workflows.limits import LimitExceeded


def _flatten(detail, path: str = "") -> list[dict]:
    if isinstance(detail, dict):
        return [e for key, value in detail.items()
                for e in _flatten(value, path if key == "non_field_errors" else (f"{path}.{key}" if path else key))]
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return [{"path": path, "message": str(item)} for item in detail]
        return [e for index, item in enumerate(detail) for e in _flatten(item, f"{path}[{index}]")]
    return [{"path": path, "message": str(detail)}]


def errors_response(errors: list[dict], code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"errors": errors}, status=code)


def exception_handler(exc, context):
    if isinstance(exc, InvalidDefinition):
        return errors_response([p.as_dict() for p in exc.problems])
    if isinstance(exc, LimitExceeded):
        return errors_response([{"path": exc.path, "message": exc.message}])
    if isinstance(exc, ValidationError):
        return errors_response(_flatten(exc.detail))
    if isinstance(exc, RequestDataTooBig):
        return errors_response([{"path": "", "message": f"request body larger than "
                                 f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes"}],
                               status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return errors_response([{"path": "", "message": str(exc)}])
    response = drf_exception_handler(exc, context)  # also Http404/PermissionDenied; keeps WWW-Authenticate
    if response is not None:
        detail = response.data.get("detail", response.data) if isinstance(response.data, dict) else response.data
        response.data = {"errors": _flatten(detail)}
    return response


_JSON_PREFIXES = ("/api/", "/hooks/", "/resume/")


def not_found(request, exception=None):
    """Django's 404 for URLs no view matched: the §6 JSON shape under the API prefixes, the HTML page elsewhere."""
    if request.path.startswith(_JSON_PREFIXES):
        return JsonResponse({"errors": [{"path": "", "message": f"no such endpoint: {request.path[:200]}"}]},
                            status=404)
    return page_not_found(request, exception)


def server_error(request):
    """Django's 500 page, as JSON under the API prefixes (a client there never parses an HTML page)."""
    if request.path.startswith(_JSON_PREFIXES):
        return JsonResponse({"errors": [{"path": "", "message": "internal error; the operator's log has the details"}]},
                            status=500)
    return default_server_error(request)


class BoundedJSONParser(JSONParser):
    """JSON bodies within DATA_UPLOAD_MAX_MEMORY_SIZE (413 above), and a 400 for nesting that exhausts Python's
    recursion (DRF's parser lets that RecursionError through as a 500)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.loads(codecs.decode(raw, encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


class EmptyFormParser(BaseParser):
    """A form or multipart body with nothing in it (what an HTML form or a test client posts for "no body")
    reads as `{}`; anything in it is refused with 415, because run payloads are JSON."""

    media_type = "multipart/form-data"
    _probe = 4096

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(self._probe + 1) if stream is not None else b""
        boundary = (media_type or "").partition("boundary=")[2].strip('"').encode()
        if not raw.strip() or (boundary and raw.strip() == b"--" + boundary + b"--"):
            return {}
        raise UnsupportedMediaType(media_type or "", detail="send the body as JSON (Content-Type: application/json)")


class EmptyUrlencodedParser(EmptyFormParser):
    media_type = "application/x-www-form-urlencoded"


PAYLOAD_PARSERS = [BoundedJSONParser, EmptyFormParser, EmptyUrlencodedParser]


class StrictPageSize:
    """Pagination mixin: a `page_size` that is not a positive whole number is a 400, not silently replaced by
    the default (a client asking for `page_size=abc` has a bug it should hear about); above `max_page_size` it
    is capped, as DRF does."""

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [f"must be a positive whole number, got {raw[:40]!r}"]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")  # NaN and Infinity, as DRF's STRICT_JSON

