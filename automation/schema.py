"""OpenAPI post-processing: the error answers every operation can give, documented once as `Errors`.

drf-spectacular documents what a view returns on success; the refusals come from layers around the views
(authentication, permissions, throttling, parsing, the exception handler in automation/api.py), so they are added
here, to every operation, instead of being repeated on each view. A response a view documents itself is kept.
"""
from __future__ import annotations

from typing import Any

ERRORS_REF = "#/components/schemas/Errors"

ERRORS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every refusal of the API (SPEC §6): one entry per problem, `path` naming the offending field "
                   "(`\"\"` when the request as a whole is refused).",
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "example": "tasks.task_B.depends_on"},
                    "message": {"type": "string", "example": "unknown task 'task_Z'"},
                },
                "required": ["path", "message"],
            },
        },
    },
    "required": ["errors"],
}

# status -> (shared response name, what it means)
RESPONSES = {
    "400": ("BadRequest", "The input is invalid: each error names its path"),
    "401": ("Unauthorized", "Not authenticated, or the credentials are invalid"),
    "403": ("Forbidden", "Authenticated, but not allowed (or a session request without its CSRF token)"),
    "404": ("NotFound", "No such object among the caller's own (another user's id answers 404 too)"),
    "409": ("Conflict", "The object's state does not allow this now: an edit based on an old `version`, or a "
                        "delete while runs are queued or running"),
    "413": ("PayloadTooLarge", "The request body is larger than the server accepts"),
    "415": ("UnsupportedMediaType", "The request body's Content-Type is not one this operation parses"),
    "429": ("TooManyRequests", "Too many requests; retry after the `Retry-After` header's seconds"),
}
# Operations whose view answers 409 (workflows/api.py, runs/api.py).
CONFLICTS = {"workflows_update", "workflows_partial_update", "workflows_destroy", "runs_retry_create",
             "runs_rerun_create"}
# Pagination answers 404 for a page or cursor that does not exist.
PAGINATION_PARAMETERS = {"page", "cursor"}
# DRF's CharField refuses "" unless allow_blank=True, which drf-spectacular does not say: these fields do.
BLANK_REFUSED = {
    "AuthToken": ("username", "password"),
    "Rerun": ("from_task",),
    "SecretWrite": ("value",),
}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operation_errors(operation: dict[str, Any]) -> list[str]:
    """The error statuses `operation` can answer."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    errors = ["401", "403", "429"]
    if parameters or has_body:
        errors.append("400")
    if any(p.get("in") == "path" or p.get("name") in PAGINATION_PARAMETERS for p in parameters):
        errors.append("404")
    if has_body:
        errors += ["413", "415"]
    if operation.get("operationId") in CONFLICTS:
        errors.append("409")
    return sorted(errors)


def _other_media_types(operation: dict[str, Any]) -> list[str]:
    """Media types besides JSON that the operation's success answers use: DRF renders its errors in them too."""
    return sorted({media for status, response in operation.get("responses", {}).items() if status.startswith("2")
                   for media in response.get("content", {}) if media != "application/json"})


def _error_response(status: str, other_media: list[str]) -> dict[str, Any]:
    name, description = RESPONSES[status]
    if not other_media:
        return {"$ref": f"#/components/responses/{name}"}
    content = {"application/json": {"schema": {"$ref": ERRORS_REF}}}
    content.update({media: {"schema": {"type": "string"}} for media in other_media})
    return {"description": description, "content": content}


def _refuse_blank(schemas: dict[str, Any]) -> None:
    for component, fields in BLANK_REFUSED.items():
        properties = schemas.get(component, {}).get("properties", {})
        for field in fields:
            if properties.get(field, {}).get("type") == "string":
                properties[field].setdefault("minLength", 1)


def document_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: add `Errors`, one shared response per error status, and a
    reference to each from every operation that can answer it."""
    components = result.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Errors"] = ERRORS_SCHEMA
    _refuse_blank(schemas)
    shared = components.setdefault("responses", {})
    for name, description in RESPONSES.values():
        shared[name] = {"description": description,
                        "content": {"application/json": {"schema": {"$ref": ERRORS_REF}}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            other_media = _other_media_types(operation)
            responses = operation.setdefault("responses", {})
            for status in operation_errors(operation):
                responses.setdefault(status, _error_response(status, other_media))
            operation["responses"] = dict(sorted(responses.items()))
    return result
