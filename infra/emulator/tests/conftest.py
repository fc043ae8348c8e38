"""Fixtures for the emulator tests (run: infra/.venv/bin/python -m pytest -q infra/emulator/).

``patched`` and ``plain`` are one server.py and one ``--no-patch`` twin per
test module, on free loopback ports.
"""

from __future__ import annotations

import pytest

from emulator_testlib import start_server, stop_server


@pytest.fixture(scope="module")
def patched():
    proc, url = start_server()
    yield url
    assert stop_server(proc) == 0


@pytest.fixture(scope="module")
def plain():
    proc, url = start_server("--no-patch")
    yield url
    stop_server(proc)

