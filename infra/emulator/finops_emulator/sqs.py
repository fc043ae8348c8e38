"""SQS ReceiveMessage long polls that never block another SQS call.

Why: SerializedServices (``middleware``) runs SQS requests one at a time so
that no message is handed to two receivers inside its visibility timeout.
moto waits out ``WaitTimeSeconds`` inside the ReceiveMessage call (it looks
at the queue once a second), so a long poll held that lock for up to 20 s
and every SendMessage queued behind it. The local event source long-polls
with WaitTimeSeconds up to 20: measured, one trigger took 4.6 s to arrive and
once more than 30 s.

Fix: the SQS lock is the lock of the condition variable ``CHANGED``. A
ReceiveMessage makes moto's receive pass without waiting (moto's own
``receive_message`` with ``wait_seconds_timeout=0``), under the lock; if that
found nothing and time is left, it waits on ``CHANGED``, which releases the
lock, so any other SQS call goes through meanwhile. It is woken when a
message is added to any queue (SendMessage, SendMessageBatch, and deliveries
from other services: ``Queue.add_message`` itself notifies), deleted (frees
a FIFO group) or changes visibility, and in any case at the next time a
message of its queue becomes visible or ends its delay (at most 1 s later,
moto's own interval). Each pass runs entirely under the lock, as do
DeleteMessage, ChangeMessageVisibility, PurgeQueue and add_message, so a
receive and a delete are never interleaved: no message is handed out twice
within its visibility timeout and none is lost.

Installed in every mode (also ``--no-patch``), because the lock it releases
is the emulator's own, not moto's.
"""

from __future__ import annotations

import threading
import time
from typing import Any

LOCK = threading.RLock()  # SerializedServices' SQS lock (re-entrant: see add_message)
CHANGED = threading.Condition(LOCK)
MAX_WAIT_SLICE = 1.0  # seconds; moto re-checks a waiting queue once a second too

_INSTALLED = False


def _next_change(queue: Any, now_ms: float) -> float | None:
    """Seconds until a message of ``queue`` becomes visible or ends its delay."""
    soonest = None
    for m in queue._messages:
        for t in (m.visible_at, m.delayed_until):
            if t > now_ms and (soonest is None or t < soonest):
                soonest = t
    if soonest is None:
        return None
    return (soonest - now_ms) / 1000 + 0.002  # moto: visible once now > visible_at


def install_sqs_long_poll_patch() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    from moto.core.utils import unix_time_millis
    from moto.sqs import models

    Backend = models.SQSBackend
    Queue = models.Queue
    orig_receive = Backend.receive_message
    orig_add = Queue.add_message

    def add_message(self: Any, message: Any) -> None:
        # Re-entrant: a SendMessage holds LOCK already; an SNS or EventBridge
        # delivery does not, and now is atomic with SQS requests too. (A
        # Lambda event source mapping on the queue receives from inside
        # add_message; that receive finds the message it was called for.)
        with CHANGED:
            orig_add(self, message)
            CHANGED.notify_all()

    def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                        visibility_timeout: int, message_attribute_names: list[str] | None = None
                        ) -> list:
        wait = int(wait_seconds_timeout or 0)
        with CHANGED:
            deadline = time.monotonic() + wait
            while True:
                result = orig_receive(self, queue_name, count, 0, visibility_timeout,
                                      message_attribute_names)
                remaining = deadline - time.monotonic()
                if result or remaining <= 0:
                    return result
                soon = _next_change(self.get_queue(queue_name), unix_time_millis())
                CHANGED.wait(min(remaining, MAX_WAIT_SLICE, soon if soon is not None else remaining))

    def locked_and_notifying(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with CHANGED:
                try:
                    return fn(*args, **kwargs)
                finally:
                    CHANGED.notify_all()

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    Queue.add_message = add_message
    Backend.receive_message = receive_message
    for name in ("delete_message", "change_message_visibility", "purge_queue"):
        setattr(Backend, name, locked_and_notifying(getattr(Backend, name)))
