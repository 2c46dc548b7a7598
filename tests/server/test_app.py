from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app


async def test_serves_the_page_and_health(config, stack):
    async with TestClient(TestServer(create_app(config, stack=stack))) as client:
        page = await client.get("/")
        assert page.status == 200 and "Tara" in await page.text()
        health = await client.get("/api/health")
        body = await health.json()
        assert health.status == 200 and body["ok"] and body["models_loaded"]
        missing = await client.get("/no-such-page")
        assert missing.status == 404
