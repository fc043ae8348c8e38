"""WSGI middleware: one request at a time per stateful service."""

from __future__ import annotations

import threading
from typing import Any

from . import sqs


class SerializedServices:
    """WSGI middleware: one request at a time per stateful service.

    DynamoDB applies each conditional write and each transaction atomically,
    and SQS never hands one message to two receivers inside its visibility
    timeout. moto's threaded server checks and applies without a lock, so two
    racing requests can both pass a condition (measured: 2 of 20 racing
    approval transactions succeeded). Serialising per service restores the
    guarantees the code under test relies on; CloudWatch and the rest stay
    concurrent.

    The SQS lock is ``sqs.LOCK``: a ReceiveMessage long poll releases it
    while it waits (``sqs.install_sqs_long_poll_patch``), so a poll never
    holds up SendMessage and the rest; each receive pass still runs under it.
    """

    PREFIXES = (("DynamoDB_", "dynamodb"), ("AmazonSQS.", "sqs"))

    def __init__(self, app: Any) -> None:
        self.app = app
        self.locks = {"dynamodb": threading.Lock(), "sqs": sqs.LOCK}

    def __call__(self, environ: dict, start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        for prefix, name in self.PREFIXES:
            if target.startswith(prefix):
                with self.locks[name]:
                    # Materialise the body inside the lock: the response is
                    # the state as of this request.
                    return list(self.app(environ, start_response))
        return self.app(environ, start_response)
