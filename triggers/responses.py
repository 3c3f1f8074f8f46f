"""Answering a webhook's caller when its run ends (`respond: on_finish`, SPEC §9).

After the run is stored and its start published, the gateway waits for the run's end through
`runs.wakeups.run_wait_final` (a Redis wake-up per run, the database as truth; polling without Redis) until
`respond_timeout` seconds after the request arrived, never longer. Then:

* the run has a succeeded `flow.respond` task: its `status`, `headers` and `body`. A string body is sent as is
  (text/plain unless the headers name a Content-Type), any other value as JSON; no body, an empty one. With
  several, the first to finish answers.
* else `200 {"run_id", "status", "outputs": {task_id: output}}` (outputs of the succeeded tasks);
* a run still going at the deadline: `202 {"run_id"}`, as with `respond: immediately`.

The workflow's author chooses the answer, but the answer comes from this platform's origin, so headers that
would act on the connection or on the whole site are dropped (and logged): hop-by-hop headers and the framing
ones the server computes (Connection, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding, Upgrade,
Content-Length), cookies (Set-Cookie, Set-Cookie2: a workflow must not plant cookies on the platform's domain),
and site-wide policy (Strict-Transport-Security, Clear-Site-Data, Alt-Svc). A name that is not an HTTP token,
a value with a control character, more than MAX_HEADERS headers or a value over MAX_HEADER_VALUE characters
is dropped as well. A status below 200 (not a final answer) becomes 200; 204 and 304 are sent without a body.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from runs.models import TaskRun, WorkflowRun
from runs.states import TaskStatus
from runs.wakeups import run_wait_final
from workflows.services import spec_for_version

log = logging.getLogger(__name__)

RESPOND_ACTION = "flow.respond"
MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
FORBIDDEN_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "content-length", "set-cookie", "set-cookie2",
    "strict-transport-security", "clear-site-data", "alt-svc",
})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def _json_answer(status: int, data: dict) -> Answer:
    return Answer(status, json.dumps(data).encode(), {"Content-Type": "application/json"})


def answer_on_finish(*, run_id: int, deadline: float) -> Answer:
    """The answer to the caller of the webhook that started `run_id`, waiting until `deadline` (monotonic)."""
    status = run_wait_final(run_id=run_id, deadline=deadline)
    if status is None:
        return _json_answer(202, {"run_id": run_id})
    run = WorkflowRun.objects.only("id", "workflow_version_id").get(id=run_id)
    responded = _respond_output(run)
    if responded is not None:
        return _from_respond_task(responded)
    outputs = dict(TaskRun.objects.filter(run_id=run_id, status=TaskStatus.SUCCEEDED, item_index__isnull=True)
                   .order_by("id").values_list("task_id", "output"))
    return _json_answer(200, {"run_id": run_id, "status": status, "outputs": outputs})


def _respond_output(run: WorkflowRun) -> dict | None:
    spec = spec_for_version(run.workflow_version_id)
    task_ids = [task_id for task_id, task in spec.tasks.items() if task.action == RESPOND_ACTION]
    if not task_ids:
        return None
    outputs = (TaskRun.objects.filter(run_id=run.id, task_id__in=task_ids, status=TaskStatus.SUCCEEDED,
                                      item_index__isnull=True)
               .order_by("finished_at", "id").values_list("output", flat=True))
    return next((output for output in outputs if isinstance(output, dict)), None)


def _from_respond_task(output: dict) -> Answer:
    status = output.get("status", 200)
    status = status if isinstance(status, int) and 200 <= status <= 599 else 200
    headers = safe_headers(output.get("headers"))
    body = output.get("body")
    names = {name.lower() for name in headers}
    if status in (204, 304) or body is None:
        data = b""
    elif isinstance(body, str):
        data = body.encode("utf-8")
        if "content-type" not in names:
            headers["Content-Type"] = "text/plain; charset=utf-8"
    else:
        data = json.dumps(body).encode()
        if "content-type" not in names:
            headers["Content-Type"] = "application/json"
    return Answer(status, data, headers)


def safe_headers(headers: object) -> dict[str, str]:
    """The headers of a flow.respond answer this platform may send (see the module docstring)."""
    if not isinstance(headers, dict):
        return {}
    kept: dict[str, str] = {}
    for name, value in headers.items():
        value = value if isinstance(value, str) else str(value)
        if (len(kept) >= MAX_HEADERS or not isinstance(name, str) or not _TOKEN.fullmatch(name)
                or name.lower() in FORBIDDEN_HEADERS or len(value) > MAX_HEADER_VALUE or _CONTROL.search(value)):
            log.info("flow.respond header %r dropped", name)
            continue
        kept[name] = value
    return kept
