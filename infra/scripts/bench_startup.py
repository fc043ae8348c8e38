#!/usr/bin/env python3
"""Size and start-up time of every function's release `bootstrap`.

For each directory under functions/ (so new functions are measured without a
change here), this reports:

- size: bytes of the release binary that `sam build` packages
  (target/lambda/<name>/bootstrap, built by `cargo lambda build --release`);
- start-up: the time from spawning that binary to receiving its answer to
  one event, against a local Lambda runtime API on 127.0.0.1 (the subset a
  custom runtime uses: GET /2018-06-01/runtime/invocation/next, POST
  .../invocation/{id}/response | /error, POST .../init/error). The clock
  starts just before the process is spawned and stops when the server
  receives /response or /error for the first event: process start, reading
  the config, building the SDK clients, the first poll, and handling one
  event from events/<name>/. AWS calls go to an unreachable loopback port
  with AWS_MAX_ATTEMPTS=1, so they fail at once: the handler's result may
  well be an error response; what is measured is the function's own cost up
  to its first handled event, not AWS's latency. Several runs, median shown.

Usage: bench_startup.py [--runs N] [--target-dir DIR]
Exits non-zero when a function fails to start, or misses a target
(10 MB, 30 ms) and --strict is given.
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# 10 MB as printed (decimal), the stricter reading of the target.
SIZE_TARGET = 10 * 1000 * 1000
START_TARGET_MS = 30.0
# The main case of each function, when its events/ has more than one.
PREFERRED = {
    "scheduler": "scheduled-event.json",
    "processor": "cycle-message.json",
}
UNREACHABLE = "http://127.0.0.1:9"


class Invocation:
    """The state of one measured run, shared with the server thread."""

    def __init__(self, event: bytes):
        self.event = event
        self.request_id = "bench-0000-0000-0000-000000000001"
        self.served = False
        self.done = threading.Event()
        self.stop = threading.Event()
        self.done_at = None
        self.outcome = None
        self.body = b""
        self.next_at = None


class Runtime(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    inv: Invocation = None  # set per run

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        inv = self.server.inv
        if self.path != "/2018-06-01/runtime/invocation/next":
            return self._reply(404)
        if inv.served:
            # Lambda would freeze the process here; the harness kills it.
            inv.stop.wait(10)
            return self._reply(410)
        inv.served = True
        inv.next_at = time.perf_counter()
        deadline = int(time.time() * 1000) + 30_000
        self._reply(
            200,
            inv.event,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(deadline),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                "Lambda-Runtime-Trace-Id": "Root=1-673f0a10-5d1c2f3e4b5a69788796a5b4;Parent=53995c3f42cd8ad8;Sampled=0",
            },
        )

    def do_POST(self):
        inv = self.server.inv
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        now = time.perf_counter()
        if self.path.endswith("/response"):
            outcome = "response"
        elif self.path.endswith("/error"):
            outcome = "error" if "/invocation/" in self.path else "init-error"
        else:
            return self._reply(404)
        if not inv.done.is_set():
            inv.done_at, inv.outcome, inv.body = now, outcome, body
            inv.done.set()
        self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

    def _read_chunked(self):
        data = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()


class _Tagged(yaml.SafeLoader):
    pass


_Tagged.add_multi_constructor("!", lambda loader, suffix, node: None)


def template_functions():
    """binary name -> (logical id, env var names) from template.yaml."""
    with open(os.path.join(REPO, "template.yaml")) as f:
        doc = yaml.load(f, Loader=_Tagged)
    out = {}
    for logical, res in (doc.get("Resources") or {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        binary = ((res.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary")
        env = (((res.get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
        if binary:
            out[binary] = (logical, sorted(env))
    return out


def dummy(name):
    """A value that lets a function start; nothing behind it answers."""
    if name.endswith("_TABLE"):
        return "bench-" + name.lower().replace("_", "-")
    if name == "JOBS_QUEUE_URL":
        return UNREACHABLE + "/123456789012/bench-jobs"
    if name == "WEBSOCKET_ENDPOINT":
        return UNREACHABLE
    if name == "AUTH_ISSUER":
        return UNREACHABLE + "/pool"
    if name == "AUTH_AUDIENCE":
        return "bench-client"
    if name == "PAGE_TOKEN_SECRET":
        return "b" * 64
    if name == "MAX_RECEIVES":
        return "5"
    # Optional channels (Slack, webhook) stay off.
    return ""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The function is killed as soon as its answer is in: its half of
        # the connection may be gone before the 202 is written.
        pass


def measure(binary, event, env, timeout=10.0):
    inv = Invocation(event)
    server = Server(("127.0.0.1", 0), Runtime)
    server.inv = inv
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = dict(env, AWS_LAMBDA_RUNTIME_API="127.0.0.1:%d" % server.server_address[1])
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finished = inv.done.wait(timeout)
    proc.kill()
    out = proc.stdout.read()
    # CPU the process used (user + system): after answering it only waits
    # on /next, so this is the CPU cost of start-up and one event, which a
    # busy machine does not inflate the way it does the wall clock.
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = -9
    cpu_ms = (usage.ru_utime + usage.ru_stime) * 1000.0
    inv.stop.set()
    server.shutdown()
    server.server_close()
    if not finished:
        return None, "no answer within %.0f s" % timeout, out, None
    return (inv.done_at - start) * 1000.0, inv.outcome, out, cpu_ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("FINOPS_BENCH_RUNS", "15")))
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")))
    ap.add_argument("--strict", action="store_true", help="fail when a target is missed")
    args = ap.parse_args()

    declared = template_functions()
    names = sorted(
        os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "functions", "*", "Cargo.toml"))
    )
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_ENDPOINT_URL": UNREACHABLE,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_LOG": "info",
        "FINOPS_STACK": "bench",
    }

    rows, failed, missed = [], False, False
    print("function       size (MB)  start-up to first handled event (ms, %d runs)" % args.runs)
    print("                          median     min     max  cpu-ms  answer    event")
    for name in names:
        binary = os.path.join(args.target_dir, "lambda", name, "bootstrap")
        if not os.path.isfile(binary):
            print("%-14s not built: %s (run cargo lambda build --release)" % (name, binary))
            failed = True
            continue
        size = os.path.getsize(binary)
        files = sorted(glob.glob(os.path.join(REPO, "events", name, "*.json")))
        if not files:
            print("%-14s no events/%s/*.json to send" % (name, name))
            failed = True
            continue
        pick = os.path.join(REPO, "events", name, PREFERRED.get(name, ""))
        event_file = pick if os.path.isfile(pick) else files[0]
        with open(event_file, "rb") as f:
            event = f.read()
        env = dict(base_env, AWS_LAMBDA_FUNCTION_NAME=name)
        for var in declared.get(name, (None, []))[1]:
            env.setdefault(var, dummy(var))
        times, cpus, outcome, out = [], [], None, b""
        for _ in range(args.runs):
            ms, outcome, out, cpu = measure(binary, event, env)
            if ms is None or outcome == "init-error":
                break
            times.append(ms)
            cpus.append(cpu)
        if len(times) < args.runs:
            print("%-14s %8.2f   did not handle its event (%s):" % (name, size / 1e6, outcome))
            print("    " + out.decode(errors="replace")[-1500:].replace("\n", "\n    "))
            failed = True
            continue
        med, cpu_med = statistics.median(times), statistics.median(cpus)
        size_ok, start_ok = size <= SIZE_TARGET, med <= START_TARGET_MS
        missed |= not (size_ok and start_ok)
        print(
            "%-14s %8.2f%s  %7.1f%s %7.1f %7.1f %7.1f  %-9s %s"
            % (
                name,
                size / 1e6,
                " " if size_ok else "!",
                med,
                " " if start_ok else "!",
                min(times),
                max(times),
                cpu_med,
                outcome,
                os.path.relpath(event_file, REPO),
            )
        )
        rows.append(
            {
                "function": name,
                "bytes": size,
                "median_ms": med,
                "min_ms": min(times),
                "max_ms": max(times),
                "cpu_median_ms": cpu_med,
            }
        )
        # The first run's log shows what the function printed (JSON lines
        # with the request id when AWS_LAMBDA_LOG_FORMAT=JSON).
        if os.environ.get("FINOPS_BENCH_SHOW_LOG"):
            print("    " + out.decode(errors="replace").strip().replace("\n", "\n    "))
    print("targets: size <= 10 MB, start-up median <= 30 ms ('!' marks a miss);")
    print("cpu-ms: median user+system CPU of the process up to its answer; load now: %.2f" % os.getloadavg()[0])
    if os.environ.get("FINOPS_BENCH_JSON"):
        with open(os.environ["FINOPS_BENCH_JSON"], "w") as f:
            json.dump(rows, f, indent=2)
    if failed or (args.strict and missed):
        sys.exit(1)


if __name__ == "__main__":
    main()
