import pytest
from aiohttp.test_utils import TestClient, TestServer

from tara.core.config import ConfigError
from tara.server.app import create_app
from tara.server.serve import tls_context


async def test_serves_the_page_and_health(config, stack):
    async with TestClient(TestServer(create_app(config, stack=stack))) as client:
        page = await client.get("/")
        assert page.status == 200 and "Tara" in await page.text()
        health = await client.get("/api/health")
        body = await health.json()
        assert health.status == 200 and body["ok"] and body["models_loaded"]
        missing = await client.get("/no-such-page")
        assert missing.status == 404


async def test_ice_servers_from_config_reach_the_page(config, stack):
    servers = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org"], "username": "u", "credential": "p"},
    ]
    app_config = config.model_copy(update={"server": config.server.model_validate({"ice_servers": servers})})
    async with TestClient(TestServer(create_app(app_config, stack=stack, access_token="t"))) as client:
        body = await (await client.get("/api/config")).json()
        assert body["ice_servers"] == servers
        unknown = await client.get("/api/nothing-here")
        assert unknown.status == 404 and "error" in await unknown.json()


def test_plain_http_is_refused_on_a_lan_host(config):
    lan_plain = config.model_copy(update={"server": config.server.model_copy(update={"tls": "off"})})
    with pytest.raises(ConfigError, match="server.tls"):
        tls_context(lan_plain, "0.0.0.0", [])
    assert tls_context(lan_plain, "127.0.0.1", []) is None


def test_refused_requests_are_logged_at_warning_one_line_per_spell_with_a_count(caplog, monkeypatch):
    import logging
    from types import SimpleNamespace
    from typing import Any

    from tara.server import app as app_module
    from tara.server.app import RefusalLog

    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(app_module.time, "monotonic", lambda: clock.now)
    refusals = RefusalLog(every_s=10.0)
    request: Any = SimpleNamespace(method="POST", path="/offer", remote="192.168.1.9")  # what note() reads
    with caplog.at_level(logging.WARNING, logger="tara.server.app"):
        for _ in range(50):
            refusals.note(request, 403)
            clock.now += 0.1
        clock.now += 10
        refusals.note(request, 401)
    lines = [r for r in caplog.records if r.name == "tara.server.app"]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert lines[0].getMessage() == "refused POST /offer from 192.168.1.9: 403"
    assert "401 (and 49 more refused in the last 15 s)" in lines[1].getMessage()
