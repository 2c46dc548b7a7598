"""Recent log lines for the admin page: a bounded in-memory handler on the root logger."""

from __future__ import annotations

import logging
from collections import deque
from itertools import count

from aiohttp import web
from pydantic import BaseModel, Field

from tara.server.api.routes import Api, reply
from tara.server.keys import CONFIG


class LogLine(BaseModel):
    seq: int
    time: float
    level: str
    logger: str
    message: str


class LogLines(BaseModel):
    lines: list[LogLine]
    last: int = Field(description="pass it as ?after= to get only newer lines")


class LogQuery(BaseModel):
    after: int = Field(default=0, ge=0, description="only lines with a larger seq")
    limit: int = Field(default=200, ge=1, le=1000, description="at most this many (the newest)")


class LogBuffer(logging.Handler):
    """Keeps the last ``size`` records as plain lines."""

    def __init__(self, size: int, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.lines: deque[LogLine] = deque(maxlen=size)
        self._seq = count(1)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            self.lines.append(
                LogLine(
                    seq=next(self._seq),
                    time=record.created,
                    level=record.levelname,
                    logger=record.name,
                    message=message[:2000],
                )
            )
        except Exception:  # a log handler must never raise
            self.handleError(record)

    def since(self, after: int, limit: int) -> list[LogLine]:
        return [line for line in list(self.lines) if line.seq > after][-limit:]


LOGS = web.AppKey("logs", LogBuffer)


def install(app: web.Application) -> None:
    """Attach the buffer to the root logger for the app's lifetime (tests make many apps)."""
    app[LOGS] = LogBuffer(app[CONFIG].api.log_lines)

    async def attached(app: web.Application):
        root = logging.getLogger()
        root.addHandler(app[LOGS])
        yield
        root.removeHandler(app[LOGS])

    app.cleanup_ctx.append(attached)


async def recent(request: web.Request) -> web.Response:
    try:
        query = LogQuery(
            after=int(request.query.get("after", 0)), limit=max(1, min(1000, int(request.query.get("limit", 200))))
        )
    except ValueError:
        raise web.HTTPBadRequest(reason="after and limit must be integers") from None
    lines = request.app[LOGS].since(query.after, query.limit)
    buffer = request.app[LOGS].lines
    return reply(LogLines(lines=lines, last=buffer[-1].seq if buffer else 0))


def setup(api: Api) -> None:
    api.add(
        "GET",
        "/api/logs",
        recent,
        "Recent log lines (INFO and above)",
        query=LogQuery,
        response=LogLines,
        errors=(400,),
    )
