"""The operator's workflow pages: a YAML editor validated on save, the DAG picture, versions with diffs,
schedules, webhook URL, storage used, and "Run now"."""
from __future__ import annotations

import difflib
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from django_celery_beat.models import PeriodicTask

from connectors.registry import default_registry
from runs.models import TriggerKind, WorkflowRun
from runs.retention import history_storage, policy_for
from runs.services import RunError, run_create
from triggers.schedules import TASK_NAMES

from .admin_graph import dag_svg
from .cron import describe as describe_cron
from .definition import InvalidDefinition
from .models import Workflow, WorkflowVersion
from .services import (
    definition_source_text, definition_validate, definition_yaml, spec_for_version, workflow_name_taken, workflow_save,
)

SCHEDULE_PREFIX = "flowforge:{id}:"
# What "Add workflow" starts from: two tasks, a dependency and a template, each a line to change.
EXAMPLE_DEFINITION = """\
name: My workflow
# Actions and their inputs: see "Actions" above this form, or GET /api/actions/.
tasks:
  fetch:
    action: http.request
    inputs:
      url: https://example.org/
  report:
    depends_on: [fetch]
    action: transform.jinja
    inputs:
      value: "status {{ steps.fetch.output.status }}"
"""
VERSIONS_SHOWN = 20


def status_badge(status: str) -> str:
    return format_html('<span class="ff-badge ff-status-{0}">{0}</span>', status)


class WorkflowChangeList(ChangeList):
    """Run counts and last statuses for the shown page only: two indexed queries, whatever the history size."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        figures = workflow_run_figures(workflow_ids=[workflow.pk for workflow in self.result_list])
        for workflow in self.result_list:
            workflow._runs_count, workflow._last_run_status = figures.get(workflow.pk, (0, None))


def workflow_run_figures(*, workflow_ids: list[int]) -> dict[int, tuple[int, str | None]]:
    """{workflow id: (runs, status of the newest run)} for workflows with runs, in two queries.

    The count and the newest id come from one pass over the (workflow, -id) index; the statuses are then read
    by primary key. Plain GROUP BY and IN: SQLite refuses LIMIT inside a UNION branch, and a correlated
    LIMIT 1 subquery gets one generic PostgreSQL plan that can walk the primary key for a workflow without runs.
    """
    if not workflow_ids:
        return {}
    grouped = (WorkflowRun.objects.filter(workflow_id__in=workflow_ids).order_by().values("workflow_id")
               .annotate(runs=Count("id"), newest=Max("id")).values_list("workflow_id", "runs", "newest"))
    counts = {workflow_id: (runs, newest) for workflow_id, runs, newest in grouped}
    statuses = dict(WorkflowRun.objects.filter(id__in=[newest for _, newest in counts.values()])
                    .values_list("id", "status"))
    return {workflow_id: (runs, statuses.get(newest)) for workflow_id, (runs, newest) in counts.items()}


class WorkflowAdminForm(forms.ModelForm):
    definition_text = forms.CharField(
        label="Definition",
        widget=forms.Textarea(attrs={"class": "ff-code", "rows": 24, "cols": 100, "spellcheck": "false"}),
        help_text="YAML or JSON, kept as written (comments too). Validated on save; a changed definition becomes "
                  "a new version.",
        strip=False,  # the text is kept byte for byte, trailing newline included
    )
    based_on_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    current_user = None  # set by WorkflowAdmin.get_form: a new workflow without an owner becomes theirs

    class Meta:
        model = Workflow
        fields = ["name", "enabled", "owner", "retention_days", "retention_max_runs"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = "Defaults to the definition's name."
        if self.instance.pk:
            self.fields["definition_text"].initial = definition_source_text(
                definition=self.instance.definition, source=self.instance.source)
            self.fields["based_on_version"].initial = self.instance.version
        else:
            self.fields["enabled"].initial = True
        self.parsed_definition: dict | None = None

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("definition_text")
        if source is None:
            return cleaned
        # Browsers submit a textarea's line breaks as CRLF whatever the text had; the editor showed LF.
        source = cleaned["definition_text"] = source.replace("\r\n", "\n")
        try:
            data, spec = definition_validate(source)
        except InvalidDefinition as exc:
            self.add_error("definition_text", [f"{p.path}: {p.message}" if p.path else p.message
                                               for p in exc.problems])
            return cleaned
        self.parsed_definition = data
        if not cleaned.get("name"):
            cleaned["name"] = spec.name
        owner = cleaned.get("owner") or (self.instance.owner if self.instance.pk else self.current_user)
        if workflow_name_taken(name=cleaned["name"], owner=owner, exclude_id=self.instance.pk):
            self.add_error("name", f"a workflow named '{cleaned['name'].strip()}' already exists for {owner}")
        based_on = cleaned.get("based_on_version")
        if self.instance.pk and based_on is not None:
            current = Workflow.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
            if current is not None and current != based_on:
                self.add_error("definition_text", f"the workflow changed meanwhile (now version {current}, you "
                                                  f"edited version {based_on}); reload and apply your change again")
        return cleaned


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    form = WorkflowAdminForm
    list_display = ["name", "enabled", "version", "owner", "last_run_status", "runs_count", "updated_at"]
    list_filter = ["enabled"]
    list_select_related = ["owner"]
    search_fields = ["name"]
    actions = ["enable_workflows", "disable_workflows"]
    change_form_template = "admin/workflows/workflow/change_form.html"
    readonly_fields = ["graph", "webhook", "schedules", "storage", "version_history"]

    def get_fieldsets(self, request, obj=None):
        main = (None, {"fields": ["name", "definition_text", "based_on_version", "enabled", "owner"]})
        retention = ("Retention", {"fields": ["retention_days", "retention_max_runs"], "classes": ["collapse"]})
        if obj is None:
            return [main, retention]
        return [
            ("Graph", {"fields": ["graph"]}),
            main,
            ("Triggers", {"fields": ["webhook", "schedules"]}),
            ("History", {"fields": ["storage", "version_history"]}),
            retention,
        ]

    def get_changelist(self, request, **kwargs):
        return WorkflowChangeList

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.current_user = request.user  # the factory builds a fresh class per request
        return form

    @admin.display(description="Last run")
    def last_run_status(self, obj: Workflow) -> str:
        status = getattr(obj, "_last_run_status", None)
        return status_badge(status) if status else "—"

    @admin.display(description="Runs")
    def runs_count(self, obj: Workflow):
        url = reverse("admin:runs_workflowrun_changelist") + f"?workflow__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(obj, "_runs_count", 0))

    # --- read-only panels ------------------------------------------------------------------------------------

    @admin.display(description="DAG")
    def graph(self, obj: Workflow):
        if not obj.current_version_id:
            return "—"
        spec = spec_for_version(obj.current_version_id)
        subtitles = {task_id: task.action for task_id, task in spec.tasks.items()}
        return format_html('<div class="ff-graph-wrap">{}</div>', dag_svg(spec.depends_on, subtitles=subtitles))

    @admin.display(description="Webhook URL")
    def webhook(self, obj: Workflow):
        # The page script prefixes the origin the operator reached us by (admin instances are shared, so
        # no request is kept on them).
        return format_html(
            '<code class="ff-absolute-url" id="ff-webhook-url" data-path="{0}">{0}</code> '
            '<button type="button" class="button ff-copy" data-copy-target="ff-webhook-url">Copy</button>',
            obj.webhook_path)

    @admin.display(description="Schedules")
    def schedules(self, obj: Workflow):
        tasks = (PeriodicTask.objects.filter(name__startswith=SCHEDULE_PREFIX.format(id=obj.pk))
                 .select_related("crontab", "interval").order_by("name"))
        if not tasks:
            return "No schedules."
        triggers = obj.definition.get("triggers") or []
        rows = format_html_join(
            "", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((reverse("admin:django_celery_beat_periodictask_change", args=[t.pk]), t.name,
              _schedule_label(t, triggers), "yes" if t.enabled else "no", _next_fire(t),
              _minute(t.last_run_at) if t.last_run_at else "never") for t in tasks))
        return format_html('<table class="ff-table"><thead><tr><th>Name</th><th>Schedule</th><th>Enabled</th>'
                           '<th>Next fire</th><th>Last run</th></tr></thead><tbody>{}</tbody></table>', rows)

    @admin.display(description="Storage used")
    def storage(self, obj: Workflow):
        used = history_storage(obj.pk)
        policy = policy_for(obj)
        task_runs = f" / {used['task_runs']} task runs" if used["task_runs"] is not None else ""
        return format_html(
            "≈ {} in {} runs{}{}. Keeps finished runs {} days (failed: {} days), at most {} runs.",
            _human_bytes(used["bytes"]), used["runs"], task_runs,
            " (estimated from the newest runs)" if used["estimated"] else "", policy.days, policy.failed_days,
            policy.max_runs)

    @admin.display(description="Versions")
    def version_history(self, obj: Workflow):
        versions = list(obj.versions.select_related("created_by").order_by("-version")[:VERSIONS_SHOWN + 1])
        items = []
        for index, version in enumerate(versions[:VERSIONS_SHOWN]):
            previous = versions[index + 1] if index + 1 < len(versions) else None
            diff = version_diff(previous, version) if previous else ""
            items.append(format_html(
                '<li><details{}><summary>v{} — {} {}</summary>{}</details></li>',
                mark_safe(" open") if index == 0 and diff else "", version.version,
                version.created_at.strftime("%Y-%m-%d %H:%M"),
                f"by {version.created_by}" if version.created_by else "",
                format_html('<pre class="ff-diff">{}</pre>', _diff_html(diff)) if diff
                else format_html('<pre class="ff-code-view">{}</pre>', version_text(version)),
            ))
        return format_html('<ul class="ff-versions">{}</ul>', mark_safe("".join(items)))

    # --- saving through workflow_save, so the admin validates exactly like the API --------------------------

    def save_model(self, request, obj: Workflow, form: WorkflowAdminForm, change: bool) -> None:
        data = form.cleaned_data
        owner = data.get("owner") or (obj.owner if change else request.user)
        saved = workflow_save(source=data["definition_text"], name=data["name"], owner=owner, author=request.user,
                              workflow=obj if change else None,
                              expected_version=data.get("based_on_version") if change else None,
                              enabled=data.get("enabled"))
        Workflow.objects.filter(pk=saved.pk).update(retention_days=data.get("retention_days"),
                                                    retention_max_runs=data.get("retention_max_runs"))
        obj.pk = saved.pk
        obj.refresh_from_db()

    # --- actions --------------------------------------------------------------------------------------------

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        # Through workflow_save so the triggers (periodic tasks) follow the flag.
        for workflow in queryset:
            workflow_save(source=workflow.definition, name=workflow.name, author=request.user, workflow=workflow,
                          enabled=enabled)
        self.message_user(request, f"{queryset.count()} workflow(s) {'enabled' if enabled else 'disabled'}.")

    @admin.action(description="Enable selected workflows", permissions=["change"])
    def enable_workflows(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected workflows", permissions=["change"])
    def disable_workflows(self, request, queryset):
        self._set_enabled(request, queryset, False)

    # --- "Run now" ------------------------------------------------------------------------------------------

    def get_urls(self):
        urls = super().get_urls()
        return [path("<int:workflow_id>/run/", self.admin_site.admin_view(self.run_now_view),
                     name="workflows_workflow_run"),
                path("actions/", self.admin_site.admin_view(self.actions_view), name="workflows_workflow_actions"),
                ] + urls

    # --- a new workflow starts from an example, next to the list of actions ---------------------------------

    def get_changeform_initial_data(self, request):
        return {**super().get_changeform_initial_data(request), "definition_text": EXAMPLE_DEFINITION}

    def actions_view(self, request: HttpRequest):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        context = {**self.admin_site.each_context(request), "title": "Actions", "opts": self.opts,
                   "actions": [_action_row(action) for action in default_registry().describe_all()]}
        return TemplateResponse(request, "admin/workflows/workflow/actions.html", context)

    def run_now_view(self, request: HttpRequest, workflow_id: int):
        workflow = get_object_or_404(Workflow, pk=workflow_id)
        if not self.has_change_permission(request, workflow):
            raise PermissionDenied
        payload_text, error = request.POST.get("payload", "").strip(), None
        if request.method == "POST":
            try:
                body = json.loads(payload_text) if payload_text else {}
            except json.JSONDecodeError as exc:
                error = f"payload: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            else:
                try:
                    with transaction.atomic():
                        run = run_create(workflow=workflow, trigger={"body": body, "kind": TriggerKind.MANUAL.value},
                                         trigger_kind=TriggerKind.MANUAL)
                except RunError as exc:
                    error = str(exc)
                else:
                    # The run page keeps this banner in step with the run's live status (flowforge.js).
                    self.message_user(request, f"Run {run.pk} {run.status}.", messages.SUCCESS,
                                      extra_tags=f"ff-run-banner ff-run-{run.pk}")
                    return HttpResponseRedirect(reverse("admin:runs_workflowrun_change", args=[run.pk]))
        context = {
            **self.admin_site.each_context(request), "title": f"Run {workflow.name}", "workflow": workflow,
            "opts": self.opts, "original": workflow, "payload": payload_text or "{}", "error": error,
        }
        return TemplateResponse(request, "admin/workflows/workflow/run_now.html", context,
                                status=400 if error else 200)


def version_text(version: WorkflowVersion) -> str:
    return definition_source_text(definition=version.definition, source=version.source)


def version_diff(old: WorkflowVersion, new: WorkflowVersion) -> str:
    """The versions as written; a version without text (saved as an object) is compared as rendered YAML."""
    old_text, new_text = version_text(old), version_text(new)
    if bool(old.source) != bool(new.source):
        old_text, new_text = definition_yaml(old.definition), definition_yaml(new.definition)
    return "".join(difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"v{old.version}", tofile=f"v{new.version}",
    )) or "(no change in the definition)\n"


def _diff_html(diff: str):
    def css(line: str) -> str:
        if line.startswith(("+++", "---")):
            return "ff-diff-file"
        return {"+": "ff-diff-add", "-": "ff-diff-del", "@": "ff-diff-hunk"}.get(line[:1], "")

    return format_html_join("", '<span class="{}">{}</span>', ((css(line), line) for line in
                                                                diff.splitlines(keepends=True)))


def _trigger_of(task: PeriodicTask, triggers: list) -> dict:
    try:
        index = int(json.loads(task.kwargs or "{}")["trigger_index"])
    except (ValueError, TypeError, KeyError):
        return {}
    trigger = triggers[index] if 0 <= index < len(triggers) else {}
    return trigger if isinstance(trigger, dict) else {}


def _schedule_label(task: PeriodicTask, triggers: list) -> str:
    trigger = _trigger_of(task, triggers)
    if trigger.get("type") == "cron":
        return f"{trigger.get('cron')} — {describe_cron(str(trigger.get('cron')), trigger.get('timezone', 'UTC'))}"
    if trigger.get("type") == "poll":
        return f"poll {trigger.get('action')} every {trigger.get('every', 300)} s"
    return str(task.interval or task.crontab or "—")


def _next_fire(task: PeriodicTask) -> str:
    # A cron trigger's start_time is its next fire, computed by workflows/cron.py (see workflows/triggers.py).
    if task.task != TASK_NAMES["cron"] or not task.enabled or task.start_time is None:
        return "—"
    return _minute(task.start_time)


def _minute(moment) -> str:
    return date_format(timezone.localtime(moment), "Y-m-d H:i T")


def _action_row(action: dict) -> dict:
    schema = action.get("input_schema") or {}
    required = set(schema.get("required", []))
    inputs = [{"name": name, "required": name in required, "type": spec.get("type", "any") if isinstance(spec, dict)
               else "any", "description": spec.get("description", "") if isinstance(spec, dict) else ""}
              for name, spec in (schema.get("properties") or {}).items()]
    return {**action, "inputs": inputs}


def _human_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"

