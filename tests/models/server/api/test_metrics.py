"""Prometheus metrics: fed by the sessions' events, one registry per app, behind the admin token."""

from tara.core.conversation.events import ErrorEvent, TurnMetrics
from tests.models.server.api.conftest import ADMIN


async def test_metrics_count_turns_latencies_and_errors_per_app(api):
    from tara.server.api.metrics import METRICS

    first, second = await api(), await api()
    assert (await first.get("/metrics")).status == 401
    metrics = first.app[METRICS]
    metrics.observe(None, TurnMetrics(1, {"transcript": -80.0, "first_token": 210.0, "first_audio": 640.0}))
    metrics.observe(None, ErrorEvent("bad message", stage="message"))
    response = await first.get("/metrics", headers=ADMIN)
    text = await response.text()
    assert response.status == 200 and response.content_type == "text/plain"
    assert "tara_turns_total 1.0" in text
    assert 'tara_stage_latency_seconds_bucket{le="0.75",stage="first_audio"} 1.0' in text
    assert 'tara_stage_latency_seconds_bucket{le="0.5",stage="first_audio"} 0.0' in text
    assert 'tara_stage_latency_seconds_bucket{le="0.05",stage="transcript"} 1.0' in text  # before the end: 0 s
    assert 'tara_errors_total{stage="message"} 1.0' in text and "tara_active_sessions 0.0" in text
    assert "_created" not in text
    assert "tara_turns_total 0.0" in await (await second.get("/metrics", headers=ADMIN)).text()  # its own registry
