"""``GET /api/openapi.json``: the OpenAPI 3.1 description, generated from the route table and the
pydantic models the handlers use (so it cannot drift from what they do)."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from tara.server.api.routes import Api, Endpoint, Error

_PATH_PARAMETER = re.compile(r"{(\w+)}")
_NOT_WORD = re.compile(r"\W+")


def describe(api: Api, version: str) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": Error.model_json_schema()}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in api.endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation(endpoint, ref)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tara",
            "version": version,
            "description": "Tara's REST API. Admin operations need `Authorization: Bearer <admin token>` "
            "(server.admin_token, or the one in <data_dir>/admin_token).",
        },
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}}},
    }


def operation(endpoint: Endpoint, ref) -> dict[str, Any]:
    path_words = _NOT_WORD.sub("_", endpoint.path).strip("_")
    item: dict[str, Any] = {"summary": endpoint.summary, "operationId": f"{endpoint.method.lower()}_{path_words}"}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        for name, field in endpoint.query.model_fields.items():
            schema = endpoint.query.model_json_schema()["properties"][name]
            parameters.append(
                {
                    "name": name,
                    "in": "query",
                    "required": field.is_required(),
                    "description": field.description or "",
                    "schema": schema,
                }
            )
    if parameters:
        item["parameters"] = parameters
    if endpoint.body is not None:
        item["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(endpoint.body)}}}
    elif endpoint.form is not None:
        item["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": ref(endpoint.form)}}}
    success: dict[str, Any] = {"description": HTTPStatus(endpoint.status).phrase}
    if endpoint.response is not None:
        success["content"] = {endpoint.media: {"schema": ref(endpoint.response)}}
    elif endpoint.media.startswith("audio/"):
        success["content"] = {endpoint.media: {"schema": {"type": "string", "format": "binary"}}}
    elif endpoint.media.startswith("text/"):
        success["content"] = {endpoint.media: {"schema": {"type": "string"}}}
    responses = {str(endpoint.status): success}
    errors = set(endpoint.errors) | ({401} if endpoint.admin else set())
    if endpoint.body is not None:
        errors |= {400, 413}
    for status in sorted(errors):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    item["responses"] = responses
    if endpoint.admin:
        item["security"] = [{"adminToken": []}]
    return item


def setup(api: Api) -> None:
    async def openapi(request: web.Request) -> web.Response:
        from tara.server.api.health import versions

        return web.json_response(describe(api, versions().get("tara", "dev")))

    api.add("GET", "/api/openapi.json", openapi, "This description", admin=False)
