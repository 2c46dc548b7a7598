"""``GET /metrics`` (admin token, as Prometheus scrapers send it): turns, per-stage latency histograms,
active sessions, errors by stage, TTS tasks. One ``CollectorRegistry`` per app, fed by the sessions'
own events (``TurnMetrics``, ``ErrorEvent``) as the peers forward them."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from tara.core.conversation.events import ErrorEvent, Event, TurnMetrics
from tara.server.api.routes import Api
from tara.server.api.tts import TASKS, Task
from tara.server.keys import PEERS
from tara.server.protocol import Hello
from tara.server.rtc import Peer

disable_created_metrics()  # no *_created series: start times say nothing a scraper needs

# Stage timings count from the end-of-turn decision; earlier ones (during the silence) are counted as 0.
BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class Metrics:
    def __init__(self, app: web.Application) -> None:
        self.registry = registry = CollectorRegistry()
        self.sessions = Counter("tara_sessions", "Sessions whose call came up", registry=registry)
        self.turns = Counter("tara_turns", "Turns answered (interrupted ones included)", registry=registry)
        self.latency = Histogram(
            "tara_stage_latency_seconds",
            "Per turn: seconds from the end of the user's speech to each stage",
            ["stage"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "tara_errors", "Errors reported to sessions or by TTS tasks, by stage", ["stage"], registry=registry
        )
        self.tts_tasks = Counter("tara_tts_tasks", "Finished TTS tasks by outcome", ["state"], registry=registry)
        active = Gauge("tara_active_sessions", "Sessions open now", registry=registry)
        active.set_function(lambda: len(app[PEERS].peers))
        waiting = Gauge("tara_tts_tasks_waiting", "TTS tasks in the queue", registry=registry)
        waiting.set_function(lambda: app[TASKS].waiting)

    def observe(self, peer: Peer, event: Event) -> None:
        if isinstance(event, TurnMetrics):
            self.turns.inc()
            for stage, ms in event.stages.items():
                self.latency.labels(stage).observe(max(0.0, ms) / 1000)
        elif isinstance(event, ErrorEvent):
            self.errors.labels(event.stage or "unknown").inc()
        elif isinstance(event, Hello):
            self.sessions.inc()

    def task_finished(self, task: Task) -> None:
        self.tts_tasks.labels(task.state).inc()
        if task.state == "failed":
            self.errors.labels("tts_task").inc()


METRICS = web.AppKey("metrics", Metrics)


def install(app: web.Application) -> None:
    metrics = app[METRICS] = Metrics(app)
    app[PEERS].observers.append(metrics.observe)
    app[TASKS].on_finished.append(metrics.task_finished)


async def scrape(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup(api: Api) -> None:
    api.add(
        "GET",
        "/metrics",
        scrape,
        "Prometheus metrics: turns, stage latencies, sessions, errors, TTS tasks",
        media="text/plain",
    )
