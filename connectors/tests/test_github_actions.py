"""The github.* actions: their schemas, which connection they use, and a workflow run that opens an issue."""
from __future__ import annotations

import jsonschema
import pytest

from connectors.base import ActionContext, ActionError
from connectors.github.actions import AddComment, CreateIssue, StarRepo
from connectors.models import ConnectedAccount
from connectors.registry import default_registry
from connectors.tests.fake_github import connect_account, fake_github, github_user  # noqa: F401


def _valid(schema: dict, inputs: dict) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(inputs)


# --- schemas (no database) -------------------------------------------------------------------------------------

@pytest.mark.parametrize("repo", ["octocat/hello-world", "a/b", "my-org/repo.name_2", "o/.github"])
def test_repo_accepts_owner_slash_name(repo):
    assert _valid(StarRepo.input_schema, {"repo": repo})


@pytest.mark.parametrize("repo", ["octocat", "a/b/c", "../..", "o/..", "-bad/x", "o/", "/r", "o/r r", ""])
def test_repo_rejects_anything_else(repo):
    assert not _valid(StarRepo.input_schema, {"repo": repo})


def test_create_issue_schema_requires_repo_and_title_and_takes_string_labels():
    schema = CreateIssue.input_schema
    assert _valid(schema, {"repo": "o/r", "title": "t", "body": "b", "labels": ["bug"], "connection": "octocat"})
    assert not _valid(schema, {"repo": "o/r"})
    assert not _valid(schema, {"repo": "o/r", "title": ""})
    assert not _valid(schema, {"repo": "o/r", "title": "t", "labels": "bug"})
    assert not _valid(schema, {"repo": "o/r", "title": "t", "labels": [1]})
    assert not _valid(schema, {"repo": "o/r", "title": "t", "assignee": "x"})


def test_add_comment_schema_needs_a_positive_issue_number():
    schema = AddComment.input_schema
    assert _valid(schema, {"repo": "o/r", "issue_number": 3, "body": "hi"})
    assert not _valid(schema, {"repo": "o/r", "issue_number": 0, "body": "hi"})
    assert not _valid(schema, {"repo": "o/r", "issue_number": "3", "body": "hi"})
    assert not _valid(schema, {"repo": "o/r", "issue_number": 3})


def test_the_registry_lists_the_github_actions_with_their_schemas():
    described = {a["name"]: a for a in default_registry().describe_all() if a["family"] == "github"}
    assert set(described) == {"github.create_issue", "github.add_comment", "github.star_repo"}
    for action in described.values():
        jsonschema.Draft202012Validator.check_schema(action["input_schema"])
        assert "connection" in action["input_schema"]["properties"]


# --- execution against the fake GitHub ---------------------------------------------------------------------------

def _context(owner_id, log=None) -> ActionContext:
    return ActionContext(run_id=1, task_id="t", owner_id=owner_id, log=(log.append if log is not None else print))


@pytest.mark.django_db
def test_create_issue_uses_the_workflow_owners_connection(fake_github, connect_account, github_user):
    connect_account(github_user)
    lines = []

    output = CreateIssue().execute({"repo": "octo/hello", "title": "Hi", "labels": ["x"]},
                                   _context(github_user.id, lines))

    assert output == {"number": 1, "html_url": "https://github.com/octo/hello/issues/1"}
    assert "using GitHub connection 'octocat'" in lines
    assert fake_github.issues[0]["user"] == {"login": "octocat"}


@pytest.mark.django_db
def test_a_named_connection_picks_among_the_owners_accounts(fake_github, connect_account, github_user):
    connect_account(github_user)
    connect_account(github_user, login="hubot")

    comment = AddComment().execute({"repo": "octo/hello", "issue_number": 4, "body": "beep", "connection": "HUBOT"},
                                   _context(github_user.id))
    starred = StarRepo().execute({"repo": "octo/hello", "connection": "octocat"}, _context(github_user.id))

    assert comment["html_url"].endswith(f"#issuecomment-{comment['id']}")
    assert fake_github.comments[0]["user"] == {"login": "hubot"}
    assert starred == {"starred": True} and fake_github.stars == {("octocat", "octo/hello")}
    with pytest.raises(ActionError, match=r"several GitHub connections \(hubot, octocat\): name one"):
        StarRepo().execute({"repo": "octo/hello"}, _context(github_user.id))


@pytest.mark.django_db
def test_without_a_connection_the_action_fails_saying_what_to_do(fake_github, connect_account, github_user,
                                                                 django_user_model):
    connect_account(django_user_model.objects.create_user("bob"))  # someone else's account is not usable

    with pytest.raises(ActionError, match=r"no connected GitHub account: connect one .*/connections/") as missing:
        CreateIssue().execute({"repo": "o/r", "title": "t"}, _context(github_user.id))
    with pytest.raises(ActionError, match="no GitHub connection 'octocat'") as unnamed:
        CreateIssue().execute({"repo": "o/r", "title": "t", "connection": "octocat"}, _context(github_user.id))
    with pytest.raises(ActionError, match="need the workflow to have an owner") as ownerless:
        CreateIssue().execute({"repo": "o/r", "title": "t"}, _context(None))

    assert not any(e.value.retryable for e in (missing, unnamed, ownerless))
    assert fake_github.requests == []


# --- a whole workflow run ----------------------------------------------------------------------------------------

WORKFLOW = """
name: "Report a problem"
tasks:
  open_issue:
    action: github.create_issue
    inputs:
      repo: "octo/hello"
      title: "{{ trigger.body.title }}"
      labels: ["bug"]
  follow_up:
    action: github.add_comment
    depends_on: [open_issue]
    inputs:
      repo: "octo/hello"
      issue_number: "{{ steps.open_issue.output.number }}"
      body: "Tracked as {{ steps.open_issue.output.html_url }}"
"""


@pytest.mark.django_db(transaction=True)
def test_a_workflow_opens_an_issue_and_comments_on_it_refreshing_an_expired_token(
        fake_github, connect_account, github_user, monkeypatch):
    from runs import services as runs
    from runs.models import TaskRun, WorkflowRun
    from workflows.services import workflow_save

    queued: list[tuple] = []
    monkeypatch.setattr(runs, "_send", lambda name, args, **options: queued.append((name, args)))
    monkeypatch.setattr(runs, "_send_many", lambda name, calls: queued.extend((name, args) for args, _ in calls))
    connect_account(github_user)
    fake_github.expire_access_tokens()
    workflow = workflow_save(source=WORKFLOW, owner=github_user)

    run = runs.run_create(workflow=workflow, trigger={"body": {"title": "Disk full"}})
    while queued:  # play the broker: deliver every message in order
        name, args = queued.pop(0)
        if name == "start_run":
            runs.run_start(run_id=args[0])
        elif name == "execute_task":
            runs.task_execute(task_run_id=args[0])

    run = WorkflowRun.objects.get(id=run.id)
    tasks = {t.task_id: t for t in TaskRun.objects.filter(run=run)}
    assert run.status == "succeeded", {t: (r.status, r.error) for t, r in tasks.items()}
    assert tasks["open_issue"].output == {"number": 1, "html_url": "https://github.com/octo/hello/issues/1"}
    assert fake_github.issues[0]["title"] == "Disk full"
    assert fake_github.comments[0]["body"] == "Tracked as https://github.com/octo/hello/issues/1"
    assert fake_github.refresh_grants == 1
    assert ConnectedAccount.objects.get().status == ConnectedAccount.Status.OK
