"""``tara serve`` (what ``make run`` starts) comes up offline, loads the models and answers."""

import os
import socket
import subprocess
import sys
import time
import urllib.request


def test_tara_serve_starts_and_answers_health(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path / "serve.log").open("w+")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TARA_SERVER__PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "server"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            assert process.poll() is None, f"server exited: {log.seek(0) or log.read()[-2000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as response:
                    assert b'"ok": true' in response.read()
                    return
            except OSError:
                time.sleep(0.5)
        raise AssertionError("server did not answer within 180 s")
    finally:
        process.terminate()
        process.wait(15)
