"""Running blocking model code off the event loop, and sharing a small CPU between sessions."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


# Whether the caller's work is on the way to some turn's first audio; a session clears it for the
# sentences after the first (they have seconds of playback in hand).
URGENT: contextvars.ContextVar[bool] = contextvars.ContextVar("urgent_cpu_work", default=True)


# Set by ``iterate_in_thread`` for its worker: the consumer has gone, so work waiting for a CPU slot gives
# up (and releases what it holds, e.g. a llama.cpp context) instead of queueing behind others.
STREAM_STOPPED: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("stream_stopped", default=None)


class StreamStopped(Exception):
    """The stream this work belongs to was closed while it waited for the CPU."""


class ComputeScheduler:
    """One model computation at a time on the CPU, latency-critical work first.

    Whisper, llama.cpp and Piper each use every core; run side by side on two cores they slow each
    other down, and a session's first sentence waits behind another's fifth. So CPU backends take a
    slot per unit of work (a transcription, a token, a synthesised sentence): *urgent* units — on the
    way to some turn's first audio — go before the rest, which yield between units. Within each class
    slots go first come, first served, so a generation that asks again right after its token queues
    behind those already waiting.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._urgent: deque[object] = deque()
        self._later: deque[object] = deque()

    def _my_turn(self, ticket: object, urgent: bool) -> bool:
        if self._busy:
            return False
        if urgent:
            return self._urgent[0] is ticket
        return not self._urgent and self._later[0] is ticket

    @contextmanager
    def slot(self, urgent: bool | None = None, give_up: threading.Event | None = None) -> Iterator[None]:
        """Hold the CPU for one unit of work.

        ``urgent`` defaults to ``URGENT`` of the calling context (streams carry their caller's). Waiting
        stops with ``StreamStopped`` once ``give_up`` is set (default: the calling stream's ``STREAM_STOPPED``)."""
        urgent = URGENT.get() if urgent is None else urgent
        ticket = object()
        queue = self._urgent if urgent else self._later
        with self._condition:
            queue.append(ticket)
            stopped = give_up if give_up is not None else STREAM_STOPPED.get()
            try:
                while not self._my_turn(ticket, urgent):
                    if stopped is not None and stopped.is_set():
                        raise StreamStopped
                    self._condition.wait(timeout=0.05 if stopped is not None else None)
            except BaseException:
                queue.remove(ticket)
                self._condition.notify_all()  # leaving the queue: the next in line may be at its head now
                raise
            queue.remove(ticket)
            self._busy = True
        try:
            yield
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()


CPU = ComputeScheduler()  # the process's cores, shared by every session
# Streams (an LLM reply, a voice) keep a worker for as long as they last, mostly waiting for their
# consumer or a CPU slot; in asyncio's small default pool four sessions' replies would leave no thread
# for the next transcription. The CPU scheduler, not the thread count, decides what computes.
_STREAM_WORKERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="tara-stream")


async def iterate_in_thread(produce: Callable[[], Iterator[T]], max_ahead: int | None = None) -> AsyncIterator[T]:
    """Drive a blocking iterator in a worker thread and yield its items on the event loop.

    Closing or cancelling the consumer stops the worker after the item it is producing, and the
    worker closes the iterator in its own thread (so locks it holds are released there). With
    ``max_ahead`` the worker waits while that many items are unconsumed: a consumer that stops pulling
    pauses the producer (and frees the CPU for others).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(max_ahead) if max_ahead else None

    def put(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop closed under us; nobody is listening any more
            stop.set()

    def work() -> None:
        STREAM_STOPPED.set(stop)
        try:
            iterator = produce()
            try:
                for item in iterator:
                    while room is not None and not room.acquire(timeout=0.05):
                        if stop.is_set():
                            break
                    if stop.is_set():
                        break
                    put(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except StreamStopped:
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_DONE, exc)
        else:
            put(_DONE)

    loop.run_in_executor(_STREAM_WORKERS, contextvars.copy_context().run, work)
    try:
        while True:
            item, error = await queue.get()
            if room is not None:
                room.release()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
