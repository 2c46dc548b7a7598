import asyncio
import threading
import time

from agent.concurrency import ComputeScheduler, iterate_in_thread


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
