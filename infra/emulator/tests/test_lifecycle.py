"""Process lifecycle: READY line, parent-pid watchdog, SIGTERM, loopback only."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from emulator_testlib import SERVER, start_server, stop_server


# --------------------------------------------------------------------------
# process lifecycle


def test_parent_pid_watchdog_stops_server():
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc, url = start_server(parent_pid=parent.pid)
        urllib.request.urlopen(url + "/").close()
    finally:
        parent.kill()
        parent.wait()
    t = time.monotonic()
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - t < 2.0


def test_sigterm_exits_cleanly():
    proc, _ = start_server()
    assert stop_server(proc) == 0


def test_refuses_non_loopback_host():
    out = subprocess.run([sys.executable, str(SERVER), "--host", "0.0.0.0", "--port", "0"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "loopback" in out.stderr
