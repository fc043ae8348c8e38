"""Helpers shared by the emulator tests: start server.py, boto3 clients.

Each test talks to real server.py subprocesses over HTTP with boto3.
CloudWatch clients speak the Query protocol (form-encoded POST, XML answers)
like the Rust aws-sdk-cloudwatch 1.99.0; boto3 itself would pick awsJson1_0,
so its model is re-pointed at Query (and some tests run both).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import botocore
import botocore.session
from botocore.config import Config

EMULATOR_DIR = Path(__file__).resolve().parent.parent
SERVER = EMULATOR_DIR / "server.py"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
NS = "FinOps/Test"


# --------------------------------------------------------------------------
# helpers


def start_server(*extra: str, parent_pid: int | None = None) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0",
           "--parent-pid", str(parent_pid or os.getpid()), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


_QUERY_MODEL_DIR: list[str] = []


def _query_model_dir() -> str:
    """A botocore data dir whose CloudWatch model speaks only Query."""
    if not _QUERY_MODEL_DIR:
        import atexit
        import shutil
        import tempfile

        src = Path(botocore.__file__).parent / "data/cloudwatch/2010-08-01/service-2.json.gz"
        with gzip.open(src) as f:
            model = json.load(f)
        model["metadata"]["protocol"] = "query"
        model["metadata"]["protocols"] = ["query"]
        root = Path(tempfile.mkdtemp(prefix="cw-query-model-"))
        atexit.register(shutil.rmtree, root, True)
        (root / "cloudwatch/2010-08-01").mkdir(parents=True)
        (root / "cloudwatch/2010-08-01/service-2.json").write_text(json.dumps(model))
        _QUERY_MODEL_DIR.append(str(root))
    return _QUERY_MODEL_DIR[0]


@functools.lru_cache(maxsize=None)
def client(url: str, service: str, protocol: str = "query"):
    bs = botocore.session.get_session()
    if service == "cloudwatch" and protocol == "query":
        bs.get_component("data_loader").search_paths.insert(0, _query_model_dir())
    c = boto3.session.Session(botocore_session=bs).client(
        service, endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )
    if service == "cloudwatch":
        # check what goes on the wire, not what the model claims
        want = "application/x-www-form-urlencoded" if protocol == "query" else "application/x-amz-json-1.0"

        def check(request, **_):
            assert request.headers["Content-Type"].decode().startswith(want)

        c.meta.events.register("before-send", check)
    return c


def stat_query(qid, name, dims, period, stat, unit=None, **extra):
    ms = {"Metric": {"Namespace": NS, "MetricName": name,
                     "Dimensions": [{"Name": k, "Value": v} for k, v in dims]},
          "Period": period, "Stat": stat}
    if unit:
        ms["Unit"] = unit
    return {"Id": qid, "MetricStat": ms, **extra}


def all_pages(cw, **kwargs):
    """Every page of one GetMetricData call."""
    pages = []
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        resp = cw.get_metric_data(**args)
        pages.append(resp)
        token = resp.get("NextToken")
        if not token:
            return pages

