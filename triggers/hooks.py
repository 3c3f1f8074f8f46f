"""The webhook gateway: `/hooks/<token>` → `202 {"run_id": N}`, for workflows with a `webhook` trigger.

The accept path does the least work a durable answer allows: one statement inserting the run, its task runs and
the delivery (prepared once per version), one broker publish after commit (runs.broker: fail-fast, so a frozen
broker costs the first delivery under a second and the next ones nothing; the sweeper sends what was not
published). The workflow is read by token (one indexed read; the compiled definition comes from a per-process
cache) unless this process accepted at the token before: then the insert itself checks that the workflow still
holds what was read then, and any other outcome is decided again on a fresh read. The rate limit's count is taken
in leases, so most deliveries do not ask the cache.

`WebhookShortcut` routes `/hooks/` here before the session, CSRF and auth middleware. It never waits on workers,
so saturated workers do not slow the answer, unless the trigger says `respond: on_finish`: then it waits for the
run's end, at most `respond_timeout` seconds after the request arrived (triggers.responses).

Order of checks: token and webhook trigger (404) → method (405, with Allow) → rate limit (429) → size (411,
413) → signature (401) → disabled (409) → body (400) → accept (202, or 200 with the first run's id for a
repeated Idempotency-Key). Refusals after the method are stored as deliveries (status, reason, headers and
the head of the body) except 411, 413 and 429, whose point is to spend nothing.

Rate limiting is a fixed window counter in Django's cache, per token. With Redis configured (settings.CACHES)
the count is one across every web worker process, each taking its share in leases (`rate_limit_exceeded`); with
the embedded LocMemCache it is per process. While the cache fails, the limit is not checked (for
CACHE_BREAKER_SECONDS after each failure).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import select
import threading
import time

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import TooManyFieldsSent
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connections, router
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from redis.exceptions import RedisError

from runs import statements
from runs.services import WorkflowChanged
from workflows.definition import InvalidDefinition
from workflows.models import Workflow
from workflows.services import spec_for_version
from workflows.webhook_trigger import Respond

from .responses import answer_on_finish
from .webhook_signatures import SignatureError, verify
from .webhooks import (
    MAX_BODY_BYTES,
    MAX_IDEMPOTENCY_KEY,
    WebhookConfig,
    WebhookRejected,
    delivery_accept,
    delivery_record_rejected,
    trigger_from_request,
    webhook_config,
    webhook_secret,
)

log = logging.getLogger(__name__)

CACHE_BREAKER_SECONDS = 5.0
_cache_closed_until = 0.0  # monotonic time before which the rate limit is not checked (the cache failed)
_rate_client = None  # (cache backend, its redis client)


def _error(status: int, path: str, message: str, **headers) -> JsonResponse:
    response = JsonResponse({"errors": [{"path": path, "message": message}]}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class _Lease:
    """This process's share of a token's count in one window: requests it may still let through, and whether the
    window's whole count is taken."""

    __slots__ = ("window_index", "left", "spent")

    def __init__(self, window_index: int):
        self.window_index, self.left, self.spent = window_index, 0, False


MAX_KNOWN_TOKENS = 1024  # per process, for the rate leases and the accepted-workflow memo alike
_leases: dict[tuple[str, int, int], _Lease] = {}
_leases_lock = threading.Lock()


def rate_limit_exceeded(token: str, limit: int, window: int) -> int:
    """Count this request in the token's current window; returns 0, or the seconds until the window ends.

    The count is one across the web processes, but a process takes its share of it in leases of
    `_lease_size(limit)` requests (one cache round trip per lease, not per request) and, once the window's count
    is spent, answers 429 until the window ends without asking again. More than `limit` requests are never let
    through in a window; a process may refuse while others hold unused requests of theirs, at most 1% of the
    limit per other process (a limit under 200 is leased one request at a time: exact).
    """
    now = time.time()
    window_index = int(now // window)
    with _leases_lock:  # threaded servers (runserver, gthread): one lease, one count
        lease = _leases.get((token, limit, window))
        if lease is None or lease.window_index != window_index:
            if len(_leases) >= MAX_KNOWN_TOKENS:
                _leases.clear()
            lease = _leases[(token, limit, window)] = _Lease(window_index)
        if lease.left == 0 and not lease.spent and not _take_lease(lease, token, limit, window):
            return 0  # the cache is unavailable: not checked
        if lease.left > 0:
            lease.left -= 1
            return 0
    return max(1, int((window_index + 1) * window - now + 0.999))


def _take_lease(lease: _Lease, token: str, limit: int, window: int) -> bool:
    """Add the next lease of `token`'s count to `lease`; False when the cache cannot count."""
    global _cache_closed_until
    if time.monotonic() < _cache_closed_until:
        return False
    size = _lease_size(limit)
    digest = hashlib.blake2b(token.encode(), digest_size=12).hexdigest()
    try:
        counted = _count(f"ff:hook-rate:{digest}:{window}:{lease.window_index}", size, window + 1)
    except (RedisError, OSError):
        # The limit guards against floods; losing it while Redis is away must not refuse every delivery, nor
        # make each one wait for the cache's timeout: skip it for a few seconds.
        _cache_closed_until = time.monotonic() + CACHE_BREAKER_SECONDS
        log.warning("webhook rate limit not checked: the cache is unavailable", exc_info=True)
        return False
    lease.left = max(0, min(counted, limit) - (counted - size))
    lease.spent = counted >= limit
    return True


def _lease_size(limit: int) -> int:
    return max(1, limit // 100)


def forget_rate_counts() -> None:
    """Drop this process's leases (tests that reset the shared counts)."""
    _leases.clear()


def _count(key: str, amount: int, timeout: int) -> int:
    """Add `amount` to `key` (created with `timeout`) and return its new value; with Redis in one round trip."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        backend.add(key, 0, timeout=timeout)
        try:
            return backend.incr(key, amount)
        except ValueError:  # evicted between add and incr
            backend.add(key, amount, timeout=timeout)
            return amount
    pipeline = _redis_client(backend).pipeline(transaction=False)
    full_key = backend.make_and_validate_key(key)
    pipeline.set(full_key, 0, ex=timeout, nx=True)
    pipeline.incrby(full_key, amount)
    return pipeline.execute()[1]


def _redis_client(backend: RedisCache):
    """One client per cache backend (Django builds a new one, with its callback tables, on every call)."""
    global _rate_client
    if _rate_client is None or _rate_client[0] is not backend:
        _rate_client = (backend, backend._cache.get_client(write=True))
    return _rate_client[1]


def _read_body(request) -> bytes:
    """At most MAX_BODY_BYTES of the body, or WebhookRejected(411/413): trusts neither header nor stream alone."""
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return _read_limited(_chunked_stream(request))
    declared = request.META.get("CONTENT_LENGTH") or "0"
    try:
        length = int(declared)
    except ValueError:
        raise WebhookRejected(400, "headers.content-length", "Content-Length is not a number") from None
    if length > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body", f"the body is larger than the {MAX_BODY_BYTES} byte limit")
    return _read_limited(request)


def _chunked_stream(request):
    """Where a chunked body can be read whole, or WebhookRejected(411) when this server offers no way.

    Django's WSGI stream is cut to CONTENT_LENGTH, which a chunked request lacks, so it reads nothing. A WSGI
    server that de-chunks the input and says so (`wsgi.input_terminated`, as gunicorn does) lets us read the
    raw input to its end; under ASGI Django has already collected the whole body.
    """
    meta = request.META
    if "wsgi.input" not in meta:
        return request
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"]
    raise WebhookRejected(411, "headers.transfer-encoding",
                          "this server cannot read a chunked body; send the body with a Content-Length")


def _read_limited(stream) -> bytes:
    chunks, size = [], 0
    while size <= MAX_BODY_BYTES:
        chunk = stream.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_BODY_BYTES:
        raise WebhookRejected(413, "body", f"the body is larger than the {MAX_BODY_BYTES} byte limit")
    return b"".join(chunks)


def _headers(meta: dict) -> dict[str, str]:
    """The request's headers, names lower-cased: what `request.headers` holds, without its per-name parsing."""
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            headers[key.replace("_", "-").lower()] = value
    return headers


def _query(request) -> dict:
    try:
        return {key: values[0] if len(values) == 1 else values for key, values in request.GET.lists()}
    except TooManyFieldsSent:
        raise WebhookRejected(400, "query", "too many query parameters") from None


def _webhook_at(token: str) -> tuple[Workflow, WebhookConfig] | None:
    """The workflow at `token` and its webhook trigger; None unless its current definition declares one."""
    if len(token) > 64:
        return None
    workflow = _workflow_at(token)
    if workflow is None or workflow.current_version_id is None:
        return None
    try:
        spec = spec_for_version(workflow.current_version_id)
    except InvalidDefinition:  # stored before a rule that now refuses it (e.g. an empty secret)
        raise WebhookRejected(409, "workflow", "the workflow's definition is no longer valid; save it again "
                                              "to receive webhooks") from None
    config = webhook_config(spec)
    return (workflow, config) if config is not None else None


# The columns a delivery needs (attnames), in the model's field order as Model.from_db expects them.
LOOKUP_FIELDS = tuple(f.attname for f in Workflow._meta.concrete_fields
                      if f.attname in {"id", "enabled", "current_version_id", "name", "owner_id"})


def _workflow_at(token: str) -> Workflow | None:
    """The first read of the request doubles as the connection's health check, which would otherwise cost a
    `SELECT 1` round trip per request: a connection the server dropped (a restart, an idle timeout) fails this
    read, which is safe to repeat once on a new connection."""
    database = connections[router.db_for_read(Workflow)]
    if database.in_atomic_block:  # a caller's transaction (tests): leave its connection alone
        return _read_workflow(database, token)
    database.health_check_done = True
    try:
        return _read_workflow(database, token)
    except (OperationalError, InterfaceError):
        log.info("webhook lookup: database connection lost; reconnecting once", exc_info=True)
        database.close()
        return _read_workflow(database, token)


def _read_workflow(database, token: str) -> Workflow | None:
    # Written-out SQL: the ORM spent more CPU compiling this one-row read than the database took to answer it.
    with statements.cursor(database.alias) as cursor:  # prepared once per connection on PostgreSQL
        cursor.execute(_lookup_sql(database.alias), (token,))
        row = cursor.fetchone()
    return None if row is None else Workflow.from_db(database.alias, LOOKUP_FIELDS, row)


@functools.cache
def _lookup_sql(alias: str) -> str:
    qn = connections[alias].ops.quote_name
    meta = Workflow._meta
    columns = ", ".join(qn(f.column) for f in meta.concrete_fields if f.attname in LOOKUP_FIELDS)
    return statements.prepared(f"SELECT {columns} FROM {qn(meta.db_table)}"
                               f" WHERE {qn(meta.get_field('webhook_token').column)} = %s LIMIT 1")


class WebhookShortcut:
    """Middleware sending `/hooks/<token>` straight to `receive`, past the session, CSRF, authentication,
    message and clickjacking middleware a webhook never uses (the accept path's hot loop).

    Placed after SecurityMiddleware (HTTPS redirect, HSTS) in settings.MIDDLEWARE; `automation.urls` still
    routes `hooks/<token>` to the same view, e.g. for reverse() and for a stack without this middleware.
    """

    PREFIX = "/hooks/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(self.PREFIX):
            token = path[len(self.PREFIX):]
            if token and "/" not in token:
                response = receive(request, token)
                # As CommonMiddleware would: without it the server answers chunked, which senders handle worse.
                if not response.streaming and not response.has_header("Content-Length"):
                    response.headers["Content-Length"] = str(len(response.content))
                return response
        return self.get_response(request)


@csrf_exempt
def receive(request, token: str):
    delivery = _Delivery(request)
    known = _accepting.get(token)
    if known is not None and _memo_usable():
        response = _answer(delivery, token, *known, memo=True)
        if response is not None:
            return response
        _accepting.pop(token, None)  # out of date, or a refusal: decided again on what the database holds now
    for _ in range(2):  # a second time when the workflow changed between the read and the insert
        try:
            found = _webhook_at(token)
        except WebhookRejected as exc:
            return _error(exc.status, exc.path, exc.message)
        if found is None:
            return _error(404, "token", "no workflow has a webhook at this token")
        response = _answer(delivery, token, *found)
        if response is not None:
            return response
    return _error(409, "workflow", "the workflow changed while the delivery was being stored; send it again")


class _Delivery:
    """What is read or counted once per request, however many times it is decided."""

    def __init__(self, request):
        self.request = request
        self.received = time.monotonic()  # `respond_timeout` counts from here
        self.counted = False  # against the rate limit
        self._body: bytes | WebhookRejected | None = None

    def body(self) -> bytes:
        """The raw body (only POST carries one, SPEC §11), or WebhookRejected (411, 413), read once."""
        if self._body is None:
            try:
                self._body = _read_body(self.request) if self.request.method == "POST" else b""
            except WebhookRejected as exc:
                self._body = exc
        if isinstance(self._body, WebhookRejected):
            raise self._body
        return self._body


# token → (workflow, webhook config) of the last delivery this process accepted there. The next one is answered
# without reading the workflow: its run is stored only while the workflow still holds what the memo says
# (`_holds`, checked by the insert itself), and any other answer is decided again on a fresh read.
_accepting: dict[str, tuple[Workflow, WebhookConfig]] = {}


def _holds(workflow: Workflow, token: str) -> dict:
    return {"webhook_token": token, "enabled": True, "current_version_id": workflow.current_version_id,
            "owner_id": workflow.owner_id}


def _memo_usable() -> bool:
    """Whether the memo may answer. Its first statement is the insert, so the database connection must be known
    alive without the read that otherwise doubles as its health check (`_workflow_at`): open, and nothing unread
    on its socket (a server ending the session sends its reason, then closes)."""
    database = connections[router.db_for_read(Workflow)]
    if database.in_atomic_block:  # a caller's transaction (tests): its connection is in use
        return True
    raw = database.connection
    if raw is None:
        return False
    if database.vendor == "postgresql":
        try:
            readable, _, _ = select.select([raw.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        if readable:
            return False
    database.health_check_done = True
    return True


def _answer(delivery: _Delivery, token: str, workflow: Workflow, config: WebhookConfig, *,
            memo: bool = False) -> HttpResponse | None:
    """The answer to `delivery` at the workflow read for it (or remembered, `memo`); None to decide again on a
    fresh read: the workflow changed before the run was stored, or the memo would answer anything but an accept."""
    request = delivery.request
    if request.method not in config.methods:
        return None if memo else _error(405, "method", f"this webhook accepts {', '.join(config.methods)}, "
                                                       f"not {request.method}", Allow=", ".join(config.methods))
    if not delivery.counted:
        retry_after = rate_limit_exceeded(token, *config.rate_limit)
        if retry_after:
            limit, window = config.rate_limit
            return None if memo else _error(429, "token", f"rate limit of {limit} requests per {window} s exceeded "
                                                          f"for this webhook; retry in {retry_after} s",
                                            Retry_After=str(retry_after))
        delivery.counted = True
    try:
        raw_body = delivery.body()
    except WebhookRejected as exc:
        return None if memo else _error(exc.status, exc.path, exc.message)

    headers = _headers(request.META)
    stored = {"workflow": workflow, "method": request.method, "headers": headers, "query": {}, "raw_body": raw_body}
    try:
        stored["query"] = _query(request)
        if config.signed:
            secret = webhook_secret(config, owner_id=workflow.owner_id)
            if secret is None:
                raise WebhookRejected(401, "signature", "the webhook's secret is not available; ask the operator")
            try:
                verify(config.signature, secret, headers, raw_body)
            except SignatureError as exc:
                raise WebhookRejected(401, "signature", str(exc)) from None
        if not workflow.enabled:
            raise WebhookRejected(409, "workflow", "the workflow is disabled")
        idempotency_key = headers.get("idempotency-key") or None
        if idempotency_key is not None and len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise WebhookRejected(400, "headers.idempotency-key",
                                  f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
        trigger = trigger_from_request(method=request.method, headers=headers, query=stored["query"],
                                       raw_body=raw_body)
        run_id, repeated = delivery_accept(trigger=trigger, idempotency_key=idempotency_key,
                                           workflow_holds=_holds(workflow, token), **stored)
    except WorkflowChanged:
        return None
    except WebhookRejected as exc:
        if memo:
            return None
        if exc.status in (400, 401, 409):
            delivery_record_rejected(status_code=exc.status, error=exc.message, **stored)
        return _error(exc.status, exc.path, exc.message)
    except DataError:
        # Data our checks let through but the database refused: the sender's input, not our outage.
        log.warning("webhook delivery for workflow %s refused by the database", workflow.id, exc_info=True)
        return _error(400, "body", "the delivery could not be stored: the database refused its content")
    except IntegrityError:  # the workflow was deleted between the lookup and the insert
        return _error(404, "token", "no workflow has this webhook token")
    except (OperationalError, InterfaceError):
        log.exception("webhook delivery for workflow %s: database unavailable", workflow.id)
        return _error(503, "", "the delivery could not be stored; try again", Retry_After="5")
    if not memo:
        if len(_accepting) >= MAX_KNOWN_TOKENS:
            _accepting.clear()
        _accepting[token] = (workflow, config)
    if config.respond == Respond.ON_FINISH:
        response = _answer_on_finish(run_id, deadline=delivery.received + config.respond_timeout)
    else:
        response = HttpResponse(b'{"run_id": %d}' % run_id, content_type="application/json",
                                status=200 if repeated else 202)
    if repeated:
        response["Idempotent-Replayed"] = "true"
    return response


def _answer_on_finish(run_id: int, *, deadline: float) -> HttpResponse:
    """The run's answer (triggers.responses); the stored run is never lost to an error while waiting."""
    try:
        answer = answer_on_finish(run_id=run_id, deadline=deadline)
    except (OperationalError, InterfaceError):
        log.warning("webhook run %s: database unavailable while waiting for its end", run_id, exc_info=True)
        return JsonResponse({"run_id": run_id}, status=202)
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response
