"""The embedded default's broker (files in a folder) never hands a consumer a message still being written."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from kombu import Connection, Exchange, Queue

from automation.testing import ROOT

QUEUE = Queue("default", Exchange("default"), "default")
PUBLISHERS, EACH = 4, 750


def connection(folder: Path) -> Connection:
    return Connection(transport="automation.filesystem_broker:Transport", transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False,
        "polling_interval": 0.001})


def publish(folder: str, publisher: int) -> None:
    with connection(Path(folder)) as conn:
        producer = conn.Producer()
        for n in range(EACH):
            producer.publish({"publisher": publisher, "n": n, "pad": "x" * 2000}, exchange=QUEUE.exchange,
                             routing_key="default", declare=[QUEUE])


def test_a_consumer_polling_while_four_processes_publish_receives_every_message_whole(tmp_path):
    # kombu's own transport creates the file before writing it: a consumer this eager took empty files.
    publishers = [multiprocessing.get_context("spawn").Process(target=publish, args=(str(tmp_path), p))
                  for p in range(PUBLISHERS)]
    received = set()
    with connection(tmp_path) as conn:
        queue = conn.SimpleQueue(QUEUE)
        for process in publishers:
            process.start()
        try:
            while len(received) < PUBLISHERS * EACH:
                message = queue.get(timeout=30)
                received.add((message.payload["publisher"], message.payload["n"]))
                message.ack()
        finally:
            for process in publishers:
                process.join(timeout=30)
    assert received == {(p, n) for p in range(PUBLISHERS) for n in range(EACH)}
    assert not list(tmp_path.iterdir())


def test_the_embedded_default_publishes_through_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "DATABASE_URL")}
    env["AUTOMATION_VAR_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", "from automation.celery import app\n"
                          "with app.connection_for_write() as c: print(type(c.transport).__module__)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "automation.filesystem_broker"
