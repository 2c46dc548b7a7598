"""Health (open), diagnostics (admin): what is loaded where, and no secret in it."""

from tara.core.stages.llm.settings import OpenAISettings
from tests.models.server.api.conftest import ADMIN, ADMIN_TOKEN


async def test_health_is_open_and_says_ok(api):
    client = await api()
    response = await client.get("/api/health")
    body = await response.json()
    assert response.status == 200 and body["ok"] and body["models_loaded"] and body["uptime_s"] >= 0


async def test_diagnostics_names_devices_models_versions_and_hides_secrets(api, config):
    client = await api(server={"access_token": "my-secret-access", "admin_token": "my-secret-admin"})
    response = await client.get("/api/diagnostics", headers=ADMIN)
    text = await response.text()
    body = await response.json()
    assert response.status == 200
    assert body["devices"]["cpu_cores"] >= 1 and body["devices"]["cuda"] == []
    assert body["models"]["tts"]["class"] == "PiperTTS" and body["models"]["tts"]["voices"] == ["joe"]
    assert body["models"]["llm"]["backend"] == "llama-cpp" and body["models"]["llm"]["load_s"] > 0
    assert body["models"]["rag"]["documents"] == 2 and body["models"]["rag"]["chunks"] >= 2
    assert body["versions"]["aiohttp"] and body["versions"]["python"]
    assert body["memory"]["rss_mb"] > 100
    assert body["sessions"] == {"active": 0, "max": config.server.max_sessions}
    assert body["config"]["server"]["access_token"] == "***"
    for secret in ("my-secret-access", "my-secret-admin", ADMIN_TOKEN):
        assert secret not in text


async def test_diagnostics_show_the_configured_backends_settings_and_hide_its_key(api):
    client = await api(llm=OpenAISettings(base_url="http://127.0.0.1:9/v1", api_key="sk-secret"))
    response = await client.get("/api/diagnostics", headers=ADMIN)
    text = await response.text()
    body = await response.json()
    assert body["models"]["llm"]["backend"] == "openai" and body["models"]["llm"]["base_url"] == "http://127.0.0.1:9/v1"
    assert "busy_model" not in body["models"]["llm"]  # llama-cpp's, not this backend's
    assert body["config"]["llm"]["api_key"] == "***" and "sk-secret" not in text


async def test_diagnostics_needs_the_admin_token(api):
    client = await api()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer test-token"}):
        response = await client.get("/api/diagnostics", headers=headers)
        assert response.status == 401 and "admin token" in (await response.json())["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
