"""``/api/openapi.json`` is generated from the route table: every API route is in it, correctly guarded."""

from tests.models.server.api.conftest import ADMIN

OPEN = {
    ("GET", "/api/health"),
    ("GET", "/api/config"),
    ("GET", "/api/voices"),
    ("GET", "/api/openapi.json"),
    ("POST", "/offer"),
}


async def test_every_api_route_is_described_with_its_schemas(api):
    client = await api()
    response = await client.get("/api/openapi.json")
    spec = await response.json()
    assert response.status == 200 and spec["openapi"].startswith("3.")
    routes = {
        (r.method, r.resource.canonical)
        for r in client.app.router.routes()
        if r.method != "HEAD" and r.resource.canonical.startswith(("/api/", "/offer", "/metrics"))
    }
    described = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert routes == described
    for method, path in described:
        operation = spec["paths"][path][method.lower()]
        assert operation["summary"]
        assert ("security" in operation) == ((method, path) not in OPEN), (method, path)
        if (method, path) not in OPEN:
            assert "401" in operation["responses"]
    schemas = spec["components"]["schemas"]
    tts = spec["paths"]["/api/tts"]["post"]
    assert tts["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/SpeechRequest"
    assert {"text", "voice", "emotion", "device"} <= schemas["SpeechRequest"]["properties"].keys()
    assert {"202", "400", "429"} <= tts["responses"].keys()
    upload = spec["paths"]["/api/voices"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schemas[upload["$ref"].rsplit("/", 1)[1]]["properties"]["audio"]["format"] == "binary"
    assert spec["paths"]["/api/kb"]["post"]["parameters"][0]["name"] == "replace"
    refs = {value for value in _walk(spec) if isinstance(value, str) and value.startswith("#/components/schemas/")}
    assert all(ref.rsplit("/", 1)[1] in schemas for ref in refs)


async def test_the_description_needs_no_admin_token_but_what_it_describes_does(api):
    client = await api()
    assert (await client.get("/api/openapi.json")).status == 200
    assert (await client.get("/api/kb")).status == 401
    assert (await client.get("/api/kb", headers=ADMIN)).status == 200


def _walk(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    else:
        yield node
