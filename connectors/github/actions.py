"""The github.* actions. Each uses the workflow owner's connected GitHub account, or the one named by `connection`.

Importable without Django set up (the definition validator reads the schemas); the database is touched in
`execute` only.
"""
from __future__ import annotations

from typing import Any

from connectors.base import Action, ActionContext, ActionError

# GitHub owners: alphanumerics and inner hyphens, up to 39; repository names: [A-Za-z0-9_.-], not "." or "..".
REPO_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9_.-]{1,100}$"

REPO = {
    "type": "string",
    "title": "Repository",
    "description": "The repository as owner/name.",
    "pattern": REPO_PATTERN,
    "examples": ["octocat/hello-world"],
}
CONNECTION = {
    "type": "string",
    "title": "Connection",
    "description": "The GitHub login of one of the workflow owner's connected accounts; "
                   "defaults to the owner's only GitHub connection.",
    "minLength": 1,
    "maxLength": 39,
}
HTML_URL = {"type": "string", "format": "uri"}


class _GitHubAction(Action):
    def _account(self, inputs: dict, context: ActionContext):
        from connectors.models import ConnectedAccount

        wanted = inputs.get("connection")
        if context.owner_id is None:
            raise ActionError(
                "GitHub actions need the workflow to have an owner whose GitHub account is connected; "
                "set the workflow's owner", retryable=False)
        # Tokens deferred: they are decrypted when the client sends them, which turns a lost key into a clear error.
        accounts = list(ConnectedAccount.objects.filter(user_id=context.owner_id, provider="github")
                        .defer(*ConnectedAccount.TOKEN_FIELDS))
        if wanted:
            accounts = [a for a in accounts if a.login.lower() == wanted.lower()]
            if not accounts:
                raise ActionError(
                    f"the workflow's owner has no GitHub connection '{wanted}': connect that account from the "
                    "Connections page (/connections/), or fix `connection`", retryable=False)
        elif not accounts:
            raise ActionError(
                "the workflow's owner has no connected GitHub account: connect one from the Connections page "
                "(/connections/)", retryable=False)
        elif len(accounts) > 1:
            logins = ", ".join(sorted(a.login for a in accounts))
            raise ActionError(
                f"the workflow's owner has several GitHub connections ({logins}): name one with `connection`",
                retryable=False)
        account = accounts[0]
        context.log(f"using GitHub connection '{account.login}'")
        return account


class CreateIssue(_GitHubAction):
    name = "github.create_issue"
    title = "GitHub: create an issue"
    description = "Opens an issue in a repository with the workflow owner's connected GitHub account."
    input_schema = {
        "type": "object",
        "properties": {
            "repo": REPO,
            "title": {"type": "string", "title": "Title", "minLength": 1, "maxLength": 256},
            "body": {"type": "string", "title": "Body", "description": "Markdown.", "default": ""},
            "labels": {
                "type": "array",
                "title": "Labels",
                "items": {"type": "string", "minLength": 1, "maxLength": 50},
                "uniqueItems": True,
                "default": [],
            },
            "connection": CONNECTION,
        },
        "required": ["repo", "title"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"number": {"type": "integer"}, "html_url": HTML_URL},
        "required": ["number", "html_url"],
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict[str, Any]:
        from . import client

        account = self._account(inputs, context)
        issue = client.create_issue(account, inputs["repo"], inputs["title"], inputs.get("body", ""),
                                    inputs.get("labels") or [])
        context.log(f"created issue #{issue['number']} in {inputs['repo']}")
        return {"number": issue["number"], "html_url": issue["html_url"]}


class AddComment(_GitHubAction):
    name = "github.add_comment"
    title = "GitHub: comment on an issue or pull request"
    description = "Adds a comment to an issue or pull request with the workflow owner's connected GitHub account."
    input_schema = {
        "type": "object",
        "properties": {
            "repo": REPO,
            "issue_number": {"type": "integer", "title": "Issue or pull request number", "minimum": 1},
            "body": {"type": "string", "title": "Comment", "description": "Markdown.", "minLength": 1},
            "connection": CONNECTION,
        },
        "required": ["repo", "issue_number", "body"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "html_url": HTML_URL},
        "required": ["id", "html_url"],
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict[str, Any]:
        from . import client

        account = self._account(inputs, context)
        comment = client.add_comment(account, inputs["repo"], inputs["issue_number"], inputs["body"])
        context.log(f"commented on {inputs['repo']}#{inputs['issue_number']}")
        return {"id": comment["id"], "html_url": comment["html_url"]}


class StarRepo(_GitHubAction):
    name = "github.star_repo"
    title = "GitHub: star a repository"
    description = "Stars a repository as the workflow owner's connected GitHub account."
    input_schema = {
        "type": "object",
        "properties": {"repo": REPO, "connection": CONNECTION},
        "required": ["repo"],
        "additionalProperties": False,
    }
    output_schema = {
        "type": "object",
        "properties": {"starred": {"const": True}},
        "required": ["starred"],
    }

    def execute(self, inputs: dict, context: ActionContext) -> dict[str, Any]:
        from . import client

        account = self._account(inputs, context)
        client.star_repo(account, inputs["repo"])
        context.log(f"starred {inputs['repo']}")
        return {"starred": True}
