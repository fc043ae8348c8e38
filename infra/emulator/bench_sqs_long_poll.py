#!/usr/bin/env python3
"""SendMessage latency while other receivers long-poll, on the emulator.

Starts server.py (or ``--server PATH``, e.g. an older launcher, to measure
"before"), lets ``--pollers`` threads long-poll idle queues with
WaitTimeSeconds=20, like the local event source does, and meanwhile sends
``--sends`` messages one after the other to another queue, then one to a
polled queue. Reports the SendMessage wall clock as seen by boto3 and how
long the polled message took from SendMessage to the poller.

    infra/.venv/bin/python infra/emulator/bench_sqs_long_poll.py
    infra/.venv/bin/python infra/emulator/bench_sqs_long_poll.py --server /tmp/old/server.py
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent


def start(server: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(server), "--host", "127.0.0.1", "--port", "0",
                             "--parent-pid", str(os.getpid())],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", type=Path, default=HERE / "server.py")
    ap.add_argument("--pollers", type=int, default=2)
    ap.add_argument("--sends", type=int, default=10)
    ap.add_argument("--wait", type=int, default=20, help="WaitTimeSeconds of the pollers")
    args = ap.parse_args()

    proc, url = start(args.server)
    try:
        def sqs():
            return boto3.client("sqs", endpoint_url=url, region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"total_max_attempts": 1}, read_timeout=120))

        main_client = sqs()
        polled = [main_client.create_queue(QueueName=f"polled-{i}")["QueueUrl"]
                  for i in range(args.pollers)]
        other = main_client.create_queue(QueueName="other")["QueueUrl"]
        received_at: dict[str, float] = {}
        stop = threading.Event()

        def poll(q: str) -> None:
            c = sqs()
            try:
                while not stop.is_set():
                    for m in c.receive_message(QueueUrl=q, WaitTimeSeconds=args.wait).get("Messages", []):
                        received_at[m["Body"]] = time.perf_counter()
                        c.delete_message(QueueUrl=q, ReceiptHandle=m["ReceiptHandle"])
            except Exception:  # noqa: BLE001 - the server stops under a waiting poll at the end
                if not stop.is_set():
                    raise

        threads = [threading.Thread(target=poll, args=(q,), daemon=True) for q in polled]
        for t in threads:
            t.start()
        time.sleep(0.5)  # the polls are waiting in the server now

        lat = []
        for i in range(args.sends):
            t0 = time.perf_counter()
            main_client.send_message(QueueUrl=other, MessageBody=f"m{i}")
            lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        main_client.send_message(QueueUrl=polled[0], MessageBody="trigger")
        send_done = time.perf_counter() - t0
        deadline = time.perf_counter() + args.wait * (args.pollers + 2)
        while "trigger" not in received_at and time.perf_counter() < deadline:
            time.sleep(0.01)
        delivered = received_at.get("trigger", float("nan")) - t0

        print(f"server: {args.server}")
        print(f"{args.pollers} pollers, WaitTimeSeconds={args.wait}")
        print(f"SendMessage to another queue, {args.sends} calls: median {statistics.median(lat):.3f} s, "
              f"max {max(lat):.3f} s, total {sum(lat):.3f} s")
        print(f"SendMessage to a polled queue: {send_done:.3f} s; "
              f"SendMessage start -> message at the poller: {delivered:.3f} s")
        stop.set()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
