"""``tara serve`` (what ``make run`` starts) comes up with no network, loads the models and answers:
HTTPS with a self-signed certificate on all interfaces, plain HTTP on loopback only; a server on all
interfaces offers ICE candidates on the LAN address only, never loopback."""

import json
import os
import subprocess
import sys

from tests.conftest import free_port, without_network

# Runs inside the (network-less) namespace: start the server, poll its health, report, stop it.
PROBE = r"""
import asyncio, json, os, ssl, subprocess, sys, time, urllib.error, urllib.request
port, local_port, isolated = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if isolated:  # a documentation-range "LAN" address, inside this namespace only
    subprocess.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "lo"], check=True)
server = subprocess.Popen([sys.executable, "-m", "tara", "serve", "--host", "0.0.0.0", "--port", port],
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
    if isolated:
        from aiortc import RTCPeerConnection
        from tara.server.ice import candidate_addresses, gather_ice_on

        async def answer_candidates(caller_addresses):
            gather_ice_on(caller_addresses)  # this caller's; the server gathers as it was started
            pc = RTCPeerConnection()
            pc.addTransceiver("audio")
            await pc.setLocalDescription(await pc.createOffer())
            body = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
            request = urllib.request.Request(f"https://127.0.0.1:{port}/offer", body, {"Content-Type": "application/json"})
            try:
                answer = json.loads(urllib.request.urlopen(request, timeout=30, context=insecure).read())
                return candidate_addresses(answer["sdp"])
            except urllib.error.HTTPError as exc:
                return f"{exc.code} {json.loads(exc.read())['error']}"
            finally:
                await pc.close()

        report["answer_to_a_lan_caller"] = asyncio.run(answer_candidates(["192.0.2.1"]))
        report["answer_to_a_loopback_caller"] = asyncio.run(answer_candidates(["127.0.0.1"]))
    print(json.dumps(report))
finally:
    server.terminate()
    server.wait(15)
"""


def test_tara_serve_starts_offline_with_https_and_local_http(tmp_path):
    log = tmp_path / "serve.log"
    command = without_network([sys.executable, "-c", PROBE, str(free_port()), str(free_port())])
    isolated = command[0] == "unshare"  # only there may the server gather on a (made-up) LAN address
    run = subprocess.run(
        command + ["1" if isolated else "0"],
        capture_output=True,
        text=True,
        timeout=240,
        env=os.environ | {"SERVE_LOG": str(log), "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr + log.read_text()[-2000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["https"]["ok"] and report["http_local"]["ok"]
    assert report["plain_on_tls_port"] == "refused"
    assert "Tara is ready" in log.read_text() and "Admin page: " in log.read_text()
    if isolated:
        assert report["answer_to_a_lan_caller"] == ["192.0.2.1"]  # the LAN address it serves on, not 127.0.0.1
        # a caller with no candidate on that network would get a dead call: a clear 400 instead
        assert report["answer_to_a_loopback_caller"].startswith("400 none of the offer's ICE candidates")
