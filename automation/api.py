"""API-wide conventions: every validation error answers `400 {"errors": [{"path", "message"}]}`."""
from __future__ import annotations

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.definition import InvalidDefinition


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
    if isinstance(exc, ValidationError):
        return errors_response(_flatten(exc.detail))
    return drf_exception_handler(exc, context)
