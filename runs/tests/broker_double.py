"""Play the broker for `runs.services`: keep what it would enqueue and deliver it, one step at a time.

`runs.services._send` and `_send_many` are the one place the services hand messages to Celery; the
`broker_double` fixture replaces them, so a test drives the real services on the real database (claims, joins,
retries, cancels, the sweeper, the mini-scheduler) without a worker process. Each step runs its on-commit callbacks, as a committed
transaction would, and the clock can be moved forward for backoff and lease timeouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from runs import recovery, services

from . import fake_actions


@dataclass(frozen=True)
class Message:
    task: str  # the Celery task name in runs.tasks: "start_run" or "execute_task"
    args: tuple
    queue: str | None = None
    countdown: float | None = None


class BrokerDouble:
    def __init__(self, capture_on_commit, monkeypatch: pytest.MonkeyPatch):
        self.messages: list[Message] = []
        self._capture = capture_on_commit
        self._monkeypatch = monkeypatch
        self._offset = timedelta()
        real_now = timezone.now
        monkeypatch.setattr(timezone, "now", lambda: real_now() + self._offset)

    def send(self, task_name: str, args: tuple, **options) -> None:
        self.messages.append(Message(task_name, tuple(args), options.get("queue"), options.get("countdown")))

    def send_many(self, task_name: str, calls: list[tuple[tuple, str]]) -> None:
        for args, queue in calls:
            self.send(task_name, args, queue=queue)

    def step(self, call, *args, **kwargs):
        """Run one service call as a worker would: its on-commit callbacks (the sends) run when it returns."""
        with self._capture(execute=True):
            return call(*args, **kwargs)

    def take(self, task: str | None = None) -> list[Message]:
        """Remove and return the waiting messages (of `task` only, if given), oldest first."""
        taken = [m for m in self.messages if task is None or m.task == task]
        self.messages = [m for m in self.messages if m not in taken]
        return taken

    def deliver(self, message: Message) -> None:
        if message.task == "start_run":
            self.step(services.run_start, run_id=message.args[0])
        elif message.task == "execute_task":
            self.step(services.task_execute, task_run_id=message.args[0], queue=message.queue)
        else:
            raise AssertionError(f"unexpected message {message}")

    def deliver_all(self, *, limit: int = 100) -> int:
        """Deliver messages until none is left; returns how many were delivered."""
        delivered = 0
        while self.messages:
            assert delivered < limit, f"still delivering after {limit} messages: {self.messages}"
            self.deliver(self.messages.pop(0))
            delivered += 1
        return delivered

    def advance_clock(self, seconds: float) -> datetime:
        """Move `timezone.now()` forward, e.g. past a retry's backoff or a worker's lease."""
        self._offset += timedelta(seconds=seconds)
        return timezone.now()


@pytest.fixture
def broker_double(db, monkeypatch, django_capture_on_commit_callbacks) -> BrokerDouble:
    double = BrokerDouble(django_capture_on_commit_callbacks, monkeypatch)
    monkeypatch.setattr(services, "_send", double.send)
    monkeypatch.setattr(services, "_send_many", double.send_many)
    # The double is the broker: the sweep must not look into the real one, nor remember earlier tests' sweeps.
    monkeypatch.setattr(recovery, "broker_client", lambda: None)
    monkeypatch.setattr(recovery, "_last_done", {})
    # The engine tests' actions (test.outcome), installed the way a plugin's would be.
    monkeypatch.setattr(services, "default_registry", fake_actions.registry)
    monkeypatch.setattr("workflows.services.default_registry", fake_actions.registry)
    fake_actions.CALLS.clear()
    return double
