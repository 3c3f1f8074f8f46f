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
# Operations whose view answers 409 (workflows/api.py).
CONFLICTS = {"workflows_update", "workflows_partial_update", "workflows_destroy"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operation_errors(operation: dict[str, Any]) -> list[str]:
    """The error statuses `operation` can answer."""
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    errors = ["401", "403", "429"]
    if parameters or has_body:
        errors.append("400")
    if any(p.get("in") == "path" for p in parameters):
        errors.append("404")
    if has_body:
        errors += ["413", "415"]
    if operation.get("operationId") in CONFLICTS:
        errors.append("409")
    return sorted(errors)


def document_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: add `Errors`, one shared response per error status, and a
    reference to each from every operation that can answer it."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Errors"] = ERRORS_SCHEMA
    shared = components.setdefault("responses", {})
    for name, description in RESPONSES.values():
        shared[name] = {"description": description,
                        "content": {"application/json": {"schema": {"$ref": ERRORS_REF}}}}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in operation_errors(operation):
                responses.setdefault(status, {"$ref": f"#/components/responses/{RESPONSES[status][0]}"})
            operation["responses"] = dict(sorted(responses.items()))
    return result
