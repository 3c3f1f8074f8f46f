"""JSON log lines carry timestamp, level, logger, message and the run/task ids bound around the work."""
import io
import json
import logging
import logging.config

import pytest

from automation.logging import JsonFormatter, LogContextFilter, bind_log_context, json_logging
from connectors.base import Action, ActionConfig
from connectors.registry import ActionRegistry
from runs.executor import execute_attempt, template_context
from workflows.definition import TaskSpec


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    logger = logging.getLogger("flowforge.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_a_line_has_timestamp_level_logger_and_message(capture):
    logger, lines = capture
    logger.info("claimed %s", "t1")
    (line,) = lines()
    assert line["level"] == "INFO" and line["logger"] == "flowforge.test" and line["message"] == "claimed t1"
    assert line["timestamp"].endswith("+00:00")
    assert "run_id" not in line


def test_bound_ids_appear_inside_the_block_only_and_nest(capture):
    logger, lines = capture
    with bind_log_context(run_id=7):
        logger.info("run")
        with bind_log_context(task_id="fetch", attempt=2):
            logger.info("task")
        logger.info("run again")
    logger.info("outside")
    run, task, run_again, outside = lines()
    assert run["run_id"] == 7 and "task_id" not in run
    assert task["run_id"] == 7 and task["task_id"] == "fetch" and task["attempt"] == 2
    assert "task_id" not in run_again and "run_id" not in outside


def test_an_explicit_extra_wins_over_the_bound_id(capture):
    logger, lines = capture
    with bind_log_context(run_id=1):
        logger.info("x", extra={"run_id": 2})
    assert lines()[0]["run_id"] == 2


def test_exceptions_are_kept_in_one_line(capture):
    logger, lines = capture
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    (line,) = lines()
    assert "ValueError: boom" in line["exc_info"]


def test_json_logging_switches_every_handler_of_a_logging_config(capsys):
    base = {"version": 1, "disable_existing_loggers": False,
            "handlers": {"console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}},
            "loggers": {"flowforge.cfg": {"handlers": ["console"], "level": "INFO", "propagate": False}}}
    config = json_logging(json_logging(base))
    assert config["handlers"]["console"]["filters"] == ["log_context"]
    assert "formatter" not in base["handlers"]["console"], "the base config was modified"
    logging.config.dictConfig(config)
    try:
        with bind_log_context(run_id=5, task_id="t"):
            logging.getLogger("flowforge.cfg").warning("hi")
    finally:
        logging.getLogger("flowforge.cfg").handlers.clear()
    line = json.loads(capsys.readouterr().out.strip())
    assert line["run_id"] == 5 and line["task_id"] == "t" and line["message"] == "hi"



class Chatty(Action):
    name = "test.chatty"

    def execute(self, inputs, context):
        logging.getLogger("flowforge.test").info("calling out")
        return {}


def test_lines_logged_inside_an_action_carry_the_task_ids(capture):
    _, lines = capture
    actions = ActionRegistry({"test.chatty": "automation.tests.test_logging:Chatty"}, use_entry_points=False)
    with bind_log_context(run_id=42, task_id="fetch"):
        execute_attempt(TaskSpec(id="fetch", action="test.chatty"), registry=actions, config=ActionConfig(),
                        run_id=42, template_context=template_context(trigger={}, task_results={}, run={}))
    (line,) = lines()
    assert (line["message"], line["run_id"], line["task_id"]) == ("calling out", 42, "fetch")
