"""SQS: a long poll never blocks another SQS call; receive stays atomic.

The assertions are about order and content, not about how long anything
took: a call made while a poll waits must have finished while that poll is
still waiting (other queue) or must be what the poll returns (same queue).
Before the fix, SerializedServices held the SQS lock for a whole long poll,
so the SendMessage finished only after the poll had returned empty.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from emulator_testlib import client

POLL_SECONDS = 5  # WaitTimeSeconds of the poll under test
SETTLE = 0.3  # lets the poll reach the server before the other call is made


class Poller:
    """One ReceiveMessage long poll on a thread; ``done`` is set when it returns."""

    def __init__(self, sqs, queue_url: str, wait: int = POLL_SECONDS) -> None:
        self.done = threading.Event()
        self.result: dict | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=wait,
                                                  MaxNumberOfMessages=10)
            except BaseException as exc:  # noqa: BLE001 - reported by bodies()
                self.error = exc
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        time.sleep(SETTLE)

    def bodies(self) -> list[str]:
        assert self.done.wait(POLL_SECONDS + 10), "long poll never returned"
        if self.error:
            raise self.error
        return [m["Body"] for m in self.result.get("Messages", [])]


def _queue(sqs, **attributes) -> str:
    name = f"q-{uuid.uuid4().hex[:12]}"
    return sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]


def test_send_to_another_queue_finishes_while_a_long_poll_waits(patched):
    sqs = client(patched, "sqs")
    polled, other = _queue(sqs), _queue(sqs)
    poll = Poller(sqs, polled)
    sqs.send_message(QueueUrl=other, MessageBody="to-other")
    # Other SQS calls, also on the polled queue, go through meanwhile too.
    got = sqs.receive_message(QueueUrl=other, WaitTimeSeconds=0)["Messages"]
    sqs.delete_message(QueueUrl=other, ReceiptHandle=got[0]["ReceiptHandle"])
    sqs.get_queue_attributes(QueueUrl=polled, AttributeNames=["All"])
    assert not poll.done.is_set(), "the SQS calls waited for the long poll on another queue"
    assert [m["Body"] for m in got] == ["to-other"]
    # The poll is still alive and returns what is sent to its own queue.
    sqs.send_message(QueueUrl=polled, MessageBody="to-polled")
    assert poll.bodies() == ["to-polled"]


def test_send_to_the_polled_queue_is_returned_by_the_waiting_poll(patched):
    sqs = client(patched, "sqs")
    q = _queue(sqs)
    poll = Poller(sqs, q)
    msg_id = sqs.send_message(QueueUrl=q, MessageBody="hello")["MessageId"]
    assert poll.bodies() == ["hello"]
    assert poll.result["Messages"][0]["MessageId"] == msg_id
    # Received once: invisible now, so a second receive gets nothing.
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0)


def test_long_poll_returns_a_delayed_message_when_it_becomes_visible(patched):
    sqs = client(patched, "sqs")
    q = _queue(sqs)
    sqs.send_message(QueueUrl=q, MessageBody="later", DelaySeconds=1)
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0)
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=POLL_SECONDS)
            .get("Messages", [])] == ["later"]


def test_long_poll_on_an_empty_queue_returns_empty(patched):
    sqs = client(patched, "sqs")
    q = _queue(sqs)
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=1)


@pytest.mark.parametrize("receivers,senders,per_sender", [(4, 2, 40)])
def test_concurrent_receivers_never_get_one_message_twice(patched, receivers, senders, per_sender):
    """Long-polling receivers race with senders; every message is handed out
    exactly once (visibility timeout 60 s, so no legitimate redelivery)."""
    sqs = client(patched, "sqs")
    q = _queue(sqs, VisibilityTimeout=60)
    total = senders * per_sender
    received: list[str] = []
    lock = threading.Lock()
    sending_done = threading.Event()
    errors: list[BaseException] = []

    def send(n: int) -> None:
        try:
            for i in range(0, per_sender, 10):
                sqs.send_message_batch(QueueUrl=q, Entries=[
                    {"Id": str(j), "MessageBody": f"s{n}-{i + j}"} for j in range(10)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def receive() -> None:
        try:
            while True:
                with lock:
                    if len(received) >= total:
                        return
                out = sqs.receive_message(QueueUrl=q, WaitTimeSeconds=2, MaxNumberOfMessages=10)
                msgs = out.get("Messages", [])
                if not msgs and sending_done.is_set():
                    return
                with lock:
                    received.extend(m["Body"] for m in msgs)
                for m in msgs:
                    sqs.delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    rthreads = [threading.Thread(target=receive, daemon=True) for _ in range(receivers)]
    sthreads = [threading.Thread(target=send, args=(n,), daemon=True) for n in range(senders)]
    for t in rthreads + sthreads:
        t.start()
    for t in sthreads:
        t.join(60)
    sending_done.set()
    for t in rthreads:
        t.join(60)
    assert not errors, errors
    assert len(received) == len(set(received)), "a message was handed out twice"
    assert sorted(received) == sorted(f"s{n}-{i}" for n in range(senders) for i in range(per_sender))
    assert "Messages" not in sqs.receive_message(QueueUrl=q, WaitTimeSeconds=0)
