import ast
import asyncio
import inspect
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tara.core.stages.llm.llamacpp_engine as llamacpp_engine
import tara.core.stages.stt.whisper as whisper
import tara.core.stages.tts.piper as piper
from tara.core.concurrency import (
    Cancelled,
    Compute,
    ComputeJob,
    ComputeNotHeld,
    NoCompute,
    iterate_in_thread,
    quiet_onnx_options,
)
from tara.core.registry import Registry
from tara.core.stages.llm.llamacpp import LlamaCppLLM


async def test_a_consumer_that_stops_pulling_pauses_the_producer():
    produced = []

    def produce():
        for index in range(100):
            produced.append(index)
            yield index

    stream = iterate_in_thread(produce, max_ahead=3)
    assert await anext(stream) == 0
    await asyncio.sleep(0.3)
    assert len(produced) <= 5  # the one consumed, three waiting, one being offered
    assert [item async for item in stream] == list(range(1, 100))


def holding(compute: Compute) -> tuple[threading.Thread, threading.Event]:
    """A thread that holds ``compute``'s slot until the returned event is set."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with compute.job().slot():
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    return holder, release


def queued(compute: Compute, job: ComputeJob, name: str, order: list[str]) -> threading.Thread:
    """A thread whose ``job`` asks for a slot and, once given it, writes ``name`` into ``order``."""

    def work() -> None:
        with job.slot():
            order.append(name)

    queue = compute._urgent if job.urgent else compute._later
    waiting = len(queue)
    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 5
    while len(queue) == waiting:  # (queued: a thread started next queues behind it)
        assert time.monotonic() < deadline, f"{name} never queued"
        time.sleep(0.005)
    return thread


def test_urgent_work_goes_before_work_that_can_wait():
    compute = Compute()
    order: list[str] = []
    holder, release = holding(compute)
    later = queued(compute, compute.job(urgent=False), "later sentence", order)
    first = queued(compute, compute.job(urgent=True), "first sentence", order)
    release.set()
    for thread in (holder, later, first):
        thread.join(5)
    assert order == ["first sentence", "later sentence"]


def test_slots_go_first_come_first_served_so_a_busy_loop_cannot_hog_the_cpu():
    compute = Compute()
    order: list[str] = []
    generation = compute.job()
    held, release = threading.Event(), threading.Event()

    def generate() -> None:  # asks again right after each step
        with generation.slot():
            held.set()
            release.wait()
        with generation.slot():
            order.append("generation's next step")

    threads = [threading.Thread(target=generate)]
    threads[0].start()
    held.wait()
    threads.append(queued(compute, compute.job(), "transcription", order))
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["transcription", "generation's next step"]


def test_a_lowered_job_lets_urgent_work_go_first_from_its_next_unit():
    compute = Compute()
    order: list[str] = []
    reply = compute.job(urgent=True)
    with reply.slot():  # its first sentence, urgent
        pass
    reply.urgency = False  # the rest has seconds of playback in hand
    holder, release = holding(compute)
    later = queued(compute, reply, "second sentence", order)
    first = queued(compute, compute.job(urgent=True), "another session's first sentence", order)
    release.set()
    for thread in (holder, later, first):
        thread.join(5)
    assert order == ["another session's first sentence", "second sentence"]


def test_a_waiting_job_raised_by_its_urgency_goes_before_work_that_can_wait():
    compute = Compute()
    order: list[str] = []
    running_dry = threading.Event()
    holder, release = holding(compute)
    other = queued(compute, compute.job(urgent=False), "another session's partial transcript", order)
    later = queued(compute, compute.job(urgent=running_dry.is_set), "a reply whose voice runs dry", order)
    first = queued(compute, compute.job(urgent=True), "another session's first sentence", order)
    running_dry.set()  # read at the next release
    release.set()
    for thread in (holder, other, later, first):
        thread.join(5)
    assert order == [
        "another session's first sentence",
        "a reply whose voice runs dry",
        "another session's partial transcript",
    ]


class RecordingCondition(threading.Condition):
    """Counts waits with a timeout: waking by polling would show here."""

    def __init__(self) -> None:
        super().__init__()
        self.timed_waits = 0

    def wait(self, timeout: float | None = None) -> bool:
        self.timed_waits += timeout is not None
        return super().wait(timeout)


def test_cancel_wakes_a_waiting_job_at_once_without_polling():
    compute = Compute()
    compute._condition = condition = RecordingCondition()
    holder, release = holding(compute)
    job = compute.job()
    outcome: list[object] = []

    def wait() -> None:
        try:
            with job.slot():
                outcome.append("got the slot")
        except Cancelled:
            outcome.append(time.perf_counter())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    cancelled_at = time.perf_counter()
    job.cancel()
    waiter.join(5)
    assert isinstance(outcome[0], float) and outcome[0] - cancelled_at < 0.5
    assert condition.timed_waits == 0
    with pytest.raises(Cancelled):  # and it stays cancelled
        with job.slot():
            pass
    release.set()
    holder.join(5)
    with compute.job().slot():  # the cancelled waiter left the queue: the CPU is free for others
        pass


async def test_a_closed_stream_stops_waiting_for_the_cpu_and_releases_what_it_holds():
    compute = Compute()
    released = threading.Event()
    holder, release = holding(compute)
    job = compute.job()

    def produce():
        try:
            yield "first"
            with job.slot():  # queued behind the holder
                yield "second"
        finally:
            released.set()

    stream = iterate_in_thread(produce, job)
    assert await anext(stream) == "first"
    await stream.aclose()
    assert await asyncio.to_thread(released.wait, 2), "the worker kept waiting for the CPU after its stream closed"
    release.set()
    holder.join(5)


async def test_a_closed_stream_wakes_a_producer_waiting_for_its_consumer():
    stopped = threading.Event()

    def produce():
        try:
            yield from range(10)
        finally:
            stopped.set()

    stream = iterate_in_thread(produce, max_ahead=1)
    assert await anext(stream) == 0
    await asyncio.sleep(0.05)  # the producer now waits for room
    await stream.aclose()
    assert await asyncio.to_thread(stopped.wait, 2)


def test_the_guard_tells_whether_the_calling_thread_holds_the_slot():
    compute = Compute()
    with pytest.raises(ComputeNotHeld):
        compute.assert_held()
    with compute.job().slot():
        compute.assert_held()
        other: list[BaseException] = []

        def check() -> None:
            try:
                compute.assert_held()
            except ComputeNotHeld as exc:
                other.append(exc)

        thread = threading.Thread(target=check)
        thread.start()
        thread.join(5)
        assert other, "another thread passed the guard while this one held the slot"
    with pytest.raises(ComputeNotHeld):
        compute.assert_held()
    NoCompute().assert_held()  # a GPU: nothing to hold


class ScriptedCPUVoice:
    """A CPU backend as the real ones are built: a job per call, its model call checked by the guard."""

    needs_compute = True

    def __init__(self, compute: Compute, take_slot: bool = True) -> None:
        self._compute = compute
        self._take_slot = take_slot

    def stream(self, text: str, urgent: bool = True):
        job = self._compute.job(urgent)
        return iterate_in_thread(lambda: self._speak(text, job), job)

    def _speak(self, text: str, job: ComputeJob) -> Iterator[str]:
        for word in text.split():
            if self._take_slot:
                with job.slot():
                    yield self._model(word)
            else:
                yield self._model(word)

    def _model(self, word: str) -> str:
        self._compute.assert_held()
        return word.upper()


async def test_a_cpu_backend_that_computes_outside_a_slot_fails():
    compute = Compute()
    assert [w async for w in ScriptedCPUVoice(compute).stream("all in order")] == ["ALL", "IN", "ORDER"]
    with pytest.raises(ComputeNotHeld):
        [w async for w in ScriptedCPUVoice(compute, take_slot=False).stream("no slot taken")]


def test_the_registry_gives_compute_to_the_backends_that_need_it():
    registry: Registry[ScriptedCPUVoice] = Registry("tts.backend", {"cpu": f"{__name__}:ScriptedCPUVoice"})
    compute = Compute()
    assert registry.create("cpu", compute=compute)._compute is compute
    with pytest.raises(TypeError, match="computes on the CPU"):
        registry.create("cpu")


@pytest.mark.parametrize("backend", [whisper.FasterWhisperSTT, piper.PiperTTS, LlamaCppLLM])
def test_the_cpu_backends_must_be_given_compute(backend):
    assert backend.needs_compute
    assert inspect.signature(backend).parameters["compute"].default is inspect.Parameter.empty


MODEL_CALLS = {  # each CPU backend's blocking model calls
    whisper: {"self._model.encode", "self._model.model.generate", "self._model.transcribe"},
    piper: {"next"},
    llamacpp_engine: {"self._ll.llama_decode"},
}


@pytest.mark.parametrize("module", list(MODEL_CALLS), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_the_cpu_backends_check_the_slot_before_each_model_call(module):
    """(Read from the source: running the models here would take minutes.)"""
    tree = ast.parse(Path(module.__file__).read_text())
    found = 0
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        calls = [n for n in ast.walk(function) if isinstance(n, ast.Call)]
        guards = [c.lineno for c in calls if ast.unparse(c.func).endswith("._compute.assert_held")]
        for call in calls:
            if ast.unparse(call.func) in MODEL_CALLS[module]:
                found += 1
                assert guards and min(guards) <= call.lineno, f"{function.name} calls the model without the guard"
    assert found, "no model call found: update MODEL_CALLS"


def test_onnx_models_under_the_cpu_slot_do_not_spin_after_a_run():
    options = quiet_onnx_options(threads=2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
