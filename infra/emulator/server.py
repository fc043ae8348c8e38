#!/usr/bin/env python3
"""Local AWS emulator for finops-lambda: moto server with fixes for CloudWatch, DynamoDB and SQS.

Usage:
    infra/.venv/bin/python infra/emulator/server.py --host 127.0.0.1 --port PORT \
        [--parent-pid PID] [--no-patch] [--verbose]

Runs every moto service on one endpoint (like ``moto_server``), bound to a
loopback address only, and prints exactly one line ``READY http://HOST:PORT``
on stdout once it answers HTTP. ``--port 0`` picks a free port (read it from
the READY line). With ``--parent-pid`` the server exits by itself within about
a second after that process is gone, so test runs never leak emulators.
SIGTERM / SIGINT stop it cleanly (exit status 0). ``--no-patch`` runs plain
moto (the "before" of bench_getmetricdata.py and bench_gsi_query.py).

This file is only the entry point, kept so that the command line never
changes (infra/local/src/emulator.rs runs it). The patches, and why each
exists, are in the ``finops_emulator`` package next to it (one module per
patch; see finops_emulator/__init__.py and infra/emulator/README.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finops_emulator.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
