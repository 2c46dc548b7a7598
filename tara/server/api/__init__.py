"""Tara's REST API: one module per resource, each registering its endpoints on the shared ``Api``
route table (which guards the admin ones and generates ``/api/openapi.json``).

=====================  ======================================================  ===========
module                 endpoints                                               token
=====================  ======================================================  ===========
``health``             GET /api/health, GET /api/config                        access rules
                       GET /api/diagnostics                                    admin
``voices``             GET /api/voices                                         access rules
                       POST /api/voices, DELETE /api/voices/{id},              admin
                       GET /api/voices/{id}/sample
``tts``                POST /api/tts, GET /api/tasks[/{id}[/audio]]            admin
``kb``                 GET/POST /api/kb, DELETE /api/kb/{name},                admin
                       POST /api/kb/reindex
``sessions``           GET /api/sessions, DELETE /api/sessions/{id}            admin
``logs``               GET /api/logs                                           admin
``metrics``            GET /metrics (Prometheus)                               admin
``openapi``            GET /api/openapi.json                                   access rules
=====================  ======================================================  ===========
"""

from __future__ import annotations

from aiohttp import web

from tara.server.api import health, kb, logs, metrics, openapi, sessions, tts, voices
from tara.server.api.routes import API, Api

RESOURCES = (health, voices, tts, kb, sessions, logs, metrics, openapi)


def install(app: web.Application, api: Api) -> None:
    """Register every resource's endpoints on ``api``, then install them, with the services they need."""
    tts.install(app)  # the TTS task queue and its worker
    logs.install(app)  # recent log lines
    metrics.install(app)  # after tts: it counts finished tasks
    for resource in RESOURCES:
        resource.setup(api)
    api.install(app)
    app[API] = api
