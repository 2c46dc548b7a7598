"""Running blocking model code off the event loop, and sharing a small CPU between sessions."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    import onnxruntime

T = TypeVar("T")
# urgent now, or urgent whenever this says so (a reply's voice about to run out of words): read each time
# a unit of the job asks for the CPU, and at every release while it waits
Urgency = bool | Callable[[], bool]
_DONE = object()


class Cancelled(Exception):
    """The job was cancelled (its stream closed, its owner gave up) before it got the CPU."""


class ComputeNotHeld(AssertionError):
    """Model code ran on a shared CPU without holding its slot: a backend skipped ``job.slot()``."""


class ComputeJob:
    """One backend call's claim on the CPU: a transcription, a voiced sentence, a decode step's wait.

    ``slot()`` holds the CPU for one unit of its work. ``urgent`` (on the way to audio some user waits
    for) is read each time a unit asks for the CPU, so its owner may lower or raise it between units; a
    callable ``Urgency`` may also raise it while the unit waits.
    ``cancel()`` makes a wait in ``slot()`` end at once with ``Cancelled``, as will any later one.
    """

    def __init__(self, compute: Compute, urgent: Urgency) -> None:
        self.urgency = urgent
        self.cancelled = False
        self._compute = compute

    @property
    def urgent(self) -> bool:
        return self.urgency() if callable(self.urgency) else self.urgency

    def slot(self) -> AbstractContextManager[None]:
        return self._compute._slot(self)

    def cancel(self) -> None:
        self._compute._cancel(self)


@dataclass(eq=False)
class _Ticket:
    """A job's place in a line for the CPU (one per unit of work that waits)."""

    job: ComputeJob


class Compute:
    """One model computation at a time on the CPU, latency-critical work first.

    Whisper, llama.cpp and Piper each use every core; run side by side on two cores they slow each
    other down, and a session's first sentence waits behind another's fifth. So CPU backends take a
    slot per unit of work (a transcription, a decode step, a synthesised sentence): *urgent* units — on
    the way to some turn's first audio — go before the rest, which yield between units. Within each class
    slots go first come, first served, so a generation that asks again right after its step queues
    behind those already waiting.

    One is made by the composition root (``load_stack``) and handed to the backends that compute on
    the CPU (those with ``needs_compute``); they check with ``assert_held`` that their model calls run
    inside a slot.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._holder: int | None = None  # the thread computing now
        self._urgent: deque[_Ticket] = deque()
        self._later: deque[_Ticket] = deque()

    def job(self, urgent: Urgency = True) -> ComputeJob:
        return ComputeJob(self, urgent)

    def assert_held(self) -> None:
        """Raise ``ComputeNotHeld`` unless the calling thread holds the slot (cheap: call it before a model call)."""
        if self._holder != threading.get_ident():
            raise ComputeNotHeld("model code ran on the shared CPU outside a compute slot")

    def _raise_waiting(self) -> None:
        """Move waiting jobs whose callable urgency turned true to the end of the urgent line.

        Run by whichever waiter asks whose turn it is (under the lock), not only by the raised job's
        own thread: else a job that can wait, woken first by a release, took the CPU before the raised
        one had moved.
        """
        for ticket in [ticket for ticket in self._later if ticket.job.urgent]:
            self._later.remove(ticket)
            self._urgent.append(ticket)

    def _my_turn(self, ticket: _Ticket) -> bool:
        if self._holder is not None:
            return False
        self._raise_waiting()
        line = self._urgent or self._later
        return line[0] is ticket

    @contextmanager
    def _slot(self, job: ComputeJob) -> Iterator[None]:
        ticket = _Ticket(job)
        with self._condition:
            (self._urgent if job.urgent else self._later).append(ticket)
            try:
                while not self._my_turn(ticket):
                    if job.cancelled:
                        raise Cancelled
                    self._condition.wait()  # woken by a release, a waiter leaving, or a cancel
            except BaseException:
                self._leave(ticket)
                self._condition.notify_all()  # leaving the queue: the next in line may be at its head now
                raise
            self._leave(ticket)
            self._holder = threading.get_ident()
        try:
            yield
        finally:
            with self._condition:
                self._holder = None
                self._condition.notify_all()

    def _leave(self, ticket: _Ticket) -> None:
        (self._urgent if ticket in self._urgent else self._later).remove(ticket)

    def _cancel(self, job: ComputeJob) -> None:
        with self._condition:
            job.cancelled = True
            self._condition.notify_all()


def quiet_onnx_options(threads: int | None = None) -> onnxruntime.SessionOptions:
    """onnxruntime settings for a model computing under ``Compute``: its threads sleep once a run ends.

    By default they spin a while for the next run. Under ``Compute`` the next computation is another
    model's, and the spinning took the CPU from it: a llama.cpp decode step right after a Piper sentence
    took 69 ms instead of 32 (2 cores).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return options


class Call(Protocol):
    @property
    def busy(self) -> bool:
        """Whether the call has a turn in progress: its user talking, a transcription or a reply."""
        ...


class Callers:
    """The calls in progress, so that a choice made as a reply starts sees the turns sharing the CPU.

    Four callers asking at once: the first reply starts while the other three are still being heard
    and transcribed, so counting only the replies already written takes them for a lone caller.
    """

    def __init__(self) -> None:
        self._calls: weakref.WeakSet[Call] = weakref.WeakSet()  # (a call dropped without leaving is gone too)

    def join(self, call: Call) -> None:
        self._calls.add(call)

    def leave(self, call: Call) -> None:
        self._calls.discard(call)

    def busy(self) -> int:
        """How many calls have a turn in progress now."""
        return sum(1 for call in list(self._calls) if call.busy)


class NoCompute(Compute):
    """For models on a GPU: no CPU to share, so a slot never waits and nothing is checked."""

    def assert_held(self) -> None:
        pass

    @contextmanager
    def _slot(self, job: ComputeJob) -> Iterator[None]:
        yield

    def _cancel(self, job: ComputeJob) -> None:
        job.cancelled = True


# Streams (an LLM reply, a voice) keep a worker for as long as they last, mostly waiting for their
# consumer or a CPU slot; in asyncio's small default pool four sessions' replies would leave no thread
# for the next transcription. The CPU scheduler, not the thread count, decides what computes.
_STREAM_WORKERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="tara-stream")


async def iterate_in_thread(
    produce: Callable[[], Iterator[T]], job: ComputeJob | None = None, max_ahead: int | None = None
) -> AsyncGenerator[T, None]:
    """Drive a blocking iterator in a worker thread and yield its items on the event loop.

    Closing or cancelling the consumer stops the worker after the item it is producing, and the
    worker closes the iterator in its own thread (so locks it holds are released there). It also
    cancels ``job``, the compute job the iterator works under: a wait for the CPU ends at once (and
    the iterator releases what it holds, e.g. a voice's lock) instead of queueing behind others. With
    ``max_ahead`` the worker waits while that many items are unconsumed: a consumer that stops pulling
    pauses the producer (and frees the CPU for others).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
    flow = threading.Condition()  # guards the two below; the worker waits on it for room or the stop
    ahead = 0  # items handed over, not yet taken by the consumer
    stopped = False

    def stop() -> None:
        nonlocal stopped
        with flow:
            stopped = True
            flow.notify_all()
        if job is not None:
            job.cancel()

    def put(item: object, error: BaseException | None = None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (item, error))
        except RuntimeError:  # the loop closed under us; nobody is listening any more
            stop()

    def work() -> None:
        nonlocal ahead
        try:
            iterator = produce()
            try:
                for item in iterator:
                    with flow:
                        while max_ahead and ahead >= max_ahead and not stopped:
                            flow.wait()
                        if stopped:
                            break
                        ahead += 1
                    put(item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
        except Cancelled:
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(_DONE, exc)
        else:
            put(_DONE)

    loop.run_in_executor(_STREAM_WORKERS, work)
    try:
        while True:
            item, error = await queue.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            with flow:
                ahead -= 1
                flow.notify_all()
            yield item  # type: ignore[misc]
    finally:
        stop()
