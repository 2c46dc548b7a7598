"""Recent log lines for the admin page."""

import logging

from tests.models.server.api.conftest import ADMIN


async def test_recent_log_lines_are_kept_bounded_and_read_incrementally(api):
    client = await api(api={"log_lines": 10})
    log = logging.getLogger("tara.test")
    log.setLevel(logging.INFO)
    for n in range(15):
        log.info("line %d", n)
    body = await (await client.get("/api/logs", headers=ADMIN)).json()
    messages = [line["message"] for line in body["lines"] if line["logger"] == "tara.test"]
    assert messages == [f"line {n}" for n in range(5, 15)]  # the last 10
    log.warning("one more")
    newer = await (await client.get(f"/api/logs?after={body['last']}", headers=ADMIN)).json()
    ours = [(line["level"], line["message"]) for line in newer["lines"] if line["logger"] == "tara.test"]
    assert ours == [("WARNING", "one more")]  # (the server logs too: its access lines, at INFO)
    assert (await client.get("/api/logs?after=x", headers=ADMIN)).status == 400
    assert (await client.get("/api/logs")).status == 401
