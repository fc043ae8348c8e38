"""Local AWS emulator for finops-lambda: moto server with fixes for CloudWatch, DynamoDB and SQS.

Command line and server loop; ``infra/emulator/server.py`` runs ``main``.
See the package docstring (``finops_emulator/__init__.py``) for the
patches and the README for measurements.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

from . import (
    cloudwatch, dynamodb_query, dynamodb_render, dynamodb_transactions, ec2_tokens, ecs, elasticache, query_parser,
    rds_pending, seed, sqs, sts,
)
from .middleware import SerializedServices
from .seed import SeedEndpoint


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _watch_parent(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass  # exists, owned by someone else
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    ap.add_argument("--port", type=int, default=5000, help="TCP port (0 = pick a free one)")
    ap.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    ap.add_argument("--no-patch", action="store_true", help="plain moto (benchmark baseline)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    if not _is_loopback(args.host):
        ap.error(f"--host must be a loopback address, got {args.host!r}")

    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()

    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    if not args.no_patch:
        query_parser.install_query_parser_patch()
        cloudwatch.install_cloudwatch_patch()
        dynamodb_transactions.install_dynamodb_transaction_patch()
        dynamodb_query.install_dynamodb_query_patch()
        dynamodb_render.install_dynamodb_render_patch()
        elasticache.install_elasticache_patch()
        ec2_tokens.install_ec2_tokens_patch()
        ecs.install_ecs_patch()
        rds_pending.install_rds_pending_patch()
        sts.install_sts_assume_role_patch()
        seed._PATCHED = True

    # Belongs to SerializedServices (its SQS lock), so installed in every mode.
    sqs.install_sqs_long_poll_patch()
    app = SeedEndpoint(SerializedServices(DomainDispatcherApplication(create_backend_app)))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    url = f"http://{shown}:{port}"

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    serving.start()

    stop = threading.Event()

    def _on_signal(signum, frame):  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    # READY only once a real HTTP request has been answered.
    deadline = time.monotonic() + 30
    while not stop.is_set():
        try:
            urllib.request.urlopen(url + "/", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer will do
        except OSError:
            if time.monotonic() > deadline:
                print(f"emulator: no HTTP answer on {url}", file=sys.stderr)
                return 1
            time.sleep(0.05)
    if not stop.is_set():
        print(f"READY {url}", flush=True)

    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    return 0
