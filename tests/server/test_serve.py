"""``tara serve`` (what ``make run`` starts) comes up with no network, loads the models and answers."""

import os
import subprocess
import sys

from tests.conftest import free_port, without_network

# Runs inside the (network-less) namespace: start the server, poll its health, report, stop it.
PROBE = r"""
import os, subprocess, sys, time, urllib.request
port = sys.argv[1]
server = subprocess.Popen([sys.executable, "-m", "server", "--port", port], stdout=subprocess.DEVNULL,
                          stderr=open(os.environ["SERVE_LOG"], "w"))
try:
    for _ in range(360):
        if server.poll() is not None:
            sys.exit(f"server exited with {server.returncode}")
        try:
            print(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1).read().decode())
            break
        except OSError:
            time.sleep(0.5)
    else:
        sys.exit("server did not answer within 180 s")
finally:
    server.terminate()
    server.wait(15)
"""


def test_tara_serve_starts_offline_and_answers_health(tmp_path):
    log = tmp_path / "serve.log"
    run = subprocess.run(without_network([sys.executable, "-c", PROBE, str(free_port())]), capture_output=True, text=True,
                         timeout=240, env=os.environ | {"SERVE_LOG": str(log), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr + log.read_text()[-2000:]
    assert '"ok": true' in run.stdout
