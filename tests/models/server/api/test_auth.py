"""The admin token guards the whole admin surface, from this machine too; the talk page's rules stay."""

import hashlib
from unittest.mock import Mock

from aiohttp.test_utils import make_mocked_request

from tara.server.api.routes import API
from tara.server.app import create_app
from tara.server.auth import load_or_create_token
from tests.models.server.api.conftest import ADMIN, ADMIN_TOKEN

SAMPLE_IDS = {"{id}": "joe", "{name}": "ferry-timetable.txt"}


def folder_digest(folder) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


async def test_every_admin_endpoint_refuses_a_missing_or_wrong_token_and_changes_nothing(api, kb_stack, kb_copy):
    client = await api(stack=kb_stack)
    before = folder_digest(kb_copy)
    admin_routes = [(e.method, e.path) for e in client.app[API].endpoints if e.admin]
    assert len(admin_routes) >= 15
    for method, path in admin_routes:
        for key, value in SAMPLE_IDS.items():
            path = path.replace(key, value)
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Bearer test-token"},
            {"Authorization": ADMIN_TOKEN},
            {"Cookie": f"tara_token={ADMIN_TOKEN}"},
        ):
            response = await client.request(method, path, headers=headers, params={"token": ADMIN_TOKEN})
            assert response.status == 401, (method, path, headers)
            assert "admin token" in (await response.json())["error"]
    assert folder_digest(kb_copy) == before
    assert (await (await client.get("/api/kb", headers=ADMIN)).json())["index"]["state"] == "ready"
    assert (await client.get("/api/tasks", headers=ADMIN)).status == 200


async def test_open_endpoints_keep_the_talk_page_rules(api):
    client = await api()
    for path in ("/api/health", "/api/voices", "/api/config", "/api/openapi.json", "/"):
        assert (await client.get(path)).status == 200, path


async def test_from_another_machine_the_admin_token_opens_what_the_access_token_opens(config, stack, tmp_path):
    app = create_app(
        config.model_copy(update={"data_dir": str(tmp_path)}),
        stack=stack,
        access_token="access",
        admin_token=ADMIN_TOKEN,
    )
    app.freeze()

    async def status(path: str, headers: dict) -> int:
        transport = Mock()
        transport.get_extra_info.side_effect = lambda name, default=None: (
            ("192.168.1.20", 5000) if name == "peername" else default
        )
        request = make_mocked_request("GET", path, headers=headers, transport=transport, app=app)
        return (await app._handle(request)).status  # noqa: SLF001 - the full middleware chain, an injected peer

    assert await status("/api/health", {}) == 401
    assert await status("/api/health", {"Authorization": "Bearer access"}) == 200
    assert await status("/api/health", ADMIN) == 200
    assert await status("/api/sessions", {"Authorization": "Bearer access"}) == 401  # the access token is no admin
    assert await status("/api/sessions", ADMIN) == 200


def test_the_admin_token_is_generated_once_with_mode_600(tmp_path):
    token = load_or_create_token("", tmp_path, "admin_token")
    assert len(token) >= 16 and load_or_create_token("", tmp_path, "admin_token") == token
    assert (tmp_path / "admin_token").stat().st_mode & 0o077 == 0
    assert token != load_or_create_token("", tmp_path)  # the access token is another one
