#!/usr/bin/env python3
"""DynamoDB Query on a GSI, before and after the emulator's index patch.

Run: infra/.venv/bin/python infra/emulator/bench_gsi_query.py [--items 10000]

Builds the ConnectionsTable of template.yaml (pk/sk, GSI ``byTopic`` =
topic HASH + connectionId RANGE, projection ALL) with ITEMS subscriptions,
90 % of them on one topic ("fleet", the fan-out case) and the rest on topics
of 10 subscribers each, in an unpatched moto server (server.py --no-patch)
and in the patched one, then times, as seen by boto3:
  * the subscriber Query the notifier makes (shared/src/dynamo/connections.rs:
    ``topic = :t``, the TTL filter, Limit 1000) on a 10-subscriber topic;
  * the same on the fleet topic, every page (ExclusiveStartKey);
  * 20 x (one PutItem on the fleet topic, then its first page): the index
    re-sorts a bucket after a write to it;
  * a Query on the table key, for reference.
Both servers must return the same items (checked). A call over --timeout
seconds is reported as timed out. ``--server PATH`` measures another
launcher (an older checkout) instead of this directory's server.py.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

SERVER = Path(__file__).resolve().with_name("server.py")
TABLE = "connections"
FILTER = dict(FilterExpression="attribute_not_exists(#ttl) OR #ttl > :now",
              ExpressionAttributeNames={"#ttl": "ttl"})


def start(server: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(server), "--host", "127.0.0.1", "--port", "0",
                             "--parent-pid", str(os.getpid()), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()


def client(url: str, timeout: float):
    return boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=timeout))


def item(conn: int, topic: str) -> dict:
    cid = f"c{conn:05d}"
    return {"pk": {"S": f"CONN#{cid}"}, "sk": {"S": f"TOPIC#{topic}"}, "topic": {"S": topic},
            "connectionId": {"S": cid}, "ttl": {"N": str(2_000_000_000 + conn)}}


def dataset(n: int) -> list[dict]:
    fleet = n * 9 // 10
    out = [item(i, "fleet") for i in range(fleet)]
    out += [item(i, f"t{(i - fleet) // 10:03d}") for i in range(fleet, n)]
    return out


def create(ddb, items: list[dict]) -> float:
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                              for a in ("pk", "sk", "topic", "connectionId")],
        GlobalSecondaryIndexes=[{
            "IndexName": "byTopic", "Projection": {"ProjectionType": "ALL"},
            "KeySchema": [{"AttributeName": "topic", "KeyType": "HASH"},
                          {"AttributeName": "connectionId", "KeyType": "RANGE"}]}])
    t = time.perf_counter()
    for i in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": it}}
                                                   for it in items[i:i + 25]]})
    return time.perf_counter() - t


def subscribers(ddb, topic: str, first_page_only: bool = False) -> tuple[list, int]:
    """Every page of the notifier's subscriber Query: (items, pages)."""
    kw = dict(TableName=TABLE, IndexName="byTopic", KeyConditionExpression="topic = :t",
              ExpressionAttributeValues={":t": {"S": topic}, ":now": {"N": "1700000000"}},
              Limit=1000, **FILTER)
    items, pages = [], 0
    while True:
        out = ddb.query(**kw)
        items += out["Items"]
        pages += 1
        if first_page_only or "LastEvaluatedKey" not in out:
            return items, pages
        kw["ExclusiveStartKey"] = out["LastEvaluatedKey"]


def timed(fn, *args):
    t = time.perf_counter()
    try:
        result = fn(*args)
    except ReadTimeoutError:
        return None, None
    return time.perf_counter() - t, result


def run(mode: str, items: list[dict], timeout: float, server: Path) -> dict:
    proc, url = start(server, *(("--no-patch",) if mode == "plain" else ()))
    try:
        ddb = client(url, timeout)
        res: dict = {"load": create(ddb, items)}
        res["small"] = timed(subscribers, ddb, "t000")
        res["fleet"] = timed(subscribers, ddb, "fleet")
        if res["fleet"][0] is not None:
            def writes_then_first_page():
                for k in range(20):
                    ddb.put_item(TableName=TABLE, Item=item(900_000 + k, "fleet"))
                    subscribers(ddb, "fleet", first_page_only=True)
            res["write+page"] = timed(writes_then_first_page)
        res["table"] = timed(lambda: ddb.query(
            TableName=TABLE, KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "CONN#c00001"}})["Items"])
        return res
    finally:
        stop(proc)


def fmt(t: float | None) -> str:
    return "timed out" if t is None else f"{t:.3f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per call")
    ap.add_argument("--patched-only", action="store_true")
    ap.add_argument("--server", type=Path, default=SERVER,
                    help="launcher to measure (e.g. an older server.py)")
    args = ap.parse_args()
    items = dataset(args.items)
    fleet = sum(1 for i in items if i["topic"]["S"] == "fleet")
    modes = ["patched"] if args.patched_only else ["plain", "patched"]
    results = {m: run(m, items, args.timeout, args.server) for m in modes}

    if "plain" in results:
        for key in ("small", "fleet"):
            a, b = results["plain"][key], results["patched"][key]
            if a[0] is not None and b[0] is not None and a[1] != b[1]:
                raise SystemExit(f"different answers for {key}")

    def pages(r) -> str:
        return "" if r[0] is None else f" ({len(r[1][0])} items, {r[1][1]} pages)"

    rows = [
        (f"Load: {args.items:,} items, BatchWriteItem x 25", lambda r: fmt(r["load"])),
        ("Subscriber Query, 10-subscriber topic", lambda r: fmt(r["small"][0]) + pages(r["small"])),
        (f"Subscriber Query, fleet topic ({fleet:,}), all pages of 1,000",
         lambda r: fmt(r["fleet"][0]) + pages(r["fleet"])),
        ("20 x (PutItem on the fleet topic + its first page)",
         lambda r: fmt(r.get("write+page", (None,))[0])),
        ("Query on the table key (1 item)", lambda r: fmt(r["table"][0])),
    ]
    print(f"| Operation | {' | '.join(modes)} |")
    print("|---|" + "---|" * len(modes))
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(results[m]) for m in modes) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
