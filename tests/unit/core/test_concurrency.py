import asyncio
import threading
import time

from tara.core.concurrency import ComputeScheduler, iterate_in_thread


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


def test_urgent_work_goes_before_work_that_can_wait():
    scheduler = ComputeScheduler()
    order: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with scheduler.slot():
            holding.set()
            release.wait()

    def work(name: str, urgent: bool) -> None:
        with scheduler.slot(urgent):
            order.append(name)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    later = threading.Thread(target=work, args=("later sentence", False))
    later.start()
    time.sleep(0.05)
    first = threading.Thread(target=work, args=("first sentence", True))
    first.start()
    time.sleep(0.05)
    release.set()
    for thread in (holder, later, first):
        thread.join(5)
    assert order == ["first sentence", "later sentence"]


def test_slots_go_first_come_first_served_so_a_busy_loop_cannot_hog_the_cpu():
    scheduler = ComputeScheduler()
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def generation() -> None:  # asks again right after each token
        with scheduler.slot():
            holding.set()
            release.wait()
        with scheduler.slot():
            order.append("generation's next token")

    def transcription() -> None:
        with scheduler.slot():
            order.append("transcription")

    threads = [threading.Thread(target=generation)]
    threads[0].start()
    holding.wait()
    threads.append(threading.Thread(target=transcription))
    threads[1].start()
    time.sleep(0.05)
    release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["transcription", "generation's next token"]


async def test_a_closed_stream_stops_waiting_for_the_cpu_and_releases_what_it_holds():
    scheduler = ComputeScheduler()
    released = threading.Event()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with scheduler.slot():
            holding.set()
            release.wait()

    def produce():
        try:
            yield "first"
            with scheduler.slot():  # queued behind the holder
                yield "second"
        finally:
            released.set()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait()
    stream = iterate_in_thread(produce)
    assert await anext(stream) == "first"
    await stream.aclose()  # pyright: ignore[reportAttributeAccessIssue] - typed AsyncIterator; an async generator
    assert await asyncio.to_thread(released.wait, 2), "the worker kept waiting for the CPU after its stream closed"
    release.set()
    holder.join(5)
