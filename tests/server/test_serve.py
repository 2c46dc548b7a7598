"""``tara serve`` (what ``make run`` starts) comes up with no network, loads the models and answers:
HTTPS with a self-signed certificate on all interfaces, plain HTTP on loopback only."""

import json
import os
import subprocess
import sys

from tests.conftest import free_port, without_network

# Runs inside the (network-less) namespace: start the server, poll its health, report, stop it.
PROBE = r"""
import json, os, ssl, subprocess, sys, time, urllib.request
port, local_port = sys.argv[1], sys.argv[2]
server = subprocess.Popen([sys.executable, "-m", "server", "--host", "0.0.0.0", "--port", port],
                          env=os.environ | {"TARA_SERVER__LOCAL_HTTP_PORT": local_port},
                          stdout=open(os.environ["SERVE_LOG"], "w"), stderr=subprocess.STDOUT)
insecure = ssl.create_default_context()
insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
report = {}
try:
    for _ in range(360):
        if server.poll() is not None:
            sys.exit(f"server exited with {server.returncode}")
        try:
            report["https"] = json.loads(urllib.request.urlopen(f"https://127.0.0.1:{port}/api/health", timeout=1, context=insecure).read())
            break
        except OSError:
            time.sleep(0.5)
    else:
        sys.exit("server did not answer within 180 s")
    report["http_local"] = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{local_port}/api/health", timeout=5).read())
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5)
        report["plain_on_tls_port"] = "answered"
    except OSError as exc:
        report["plain_on_tls_port"] = "refused"
    print(json.dumps(report))
finally:
    server.terminate()
    server.wait(15)
"""


def test_tara_serve_starts_offline_with_https_and_local_http(tmp_path):
    log = tmp_path / "serve.log"
    run = subprocess.run(without_network([sys.executable, "-c", PROBE, str(free_port()), str(free_port())]),
                         capture_output=True, text=True, timeout=240,
                         env=os.environ | {"SERVE_LOG": str(log), "HF_HUB_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr + log.read_text()[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["https"]["ok"] and report["http_local"]["ok"]
    assert report["plain_on_tls_port"] == "refused"
    assert "Tara is ready" in log.read_text() and "Admin page: " in log.read_text()
