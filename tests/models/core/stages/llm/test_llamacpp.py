import asyncio
import time

import pytest

from tara.core.stages.llm import ChatMessage, GenerationParams
from tara.core.stages.llm.llamacpp import LlamaCppLLM
from tara.core.stages.llm.llamacpp_jobs import UNCONSUMED_DELTAS, Detokenizer, Slot, choose_slot, past_first_clause

SYSTEM = ChatMessage("system", "You are a helpful assistant. Answer briefly.")


@pytest.fixture(scope="module")
def llm(stack):
    assert isinstance(stack.llm, LlamaCppLLM)
    return stack.llm


async def test_streams_an_answer_in_pieces(llm):
    deltas = [
        d
        async for d in llm.stream(
            [SYSTEM, ChatMessage("user", "What is the capital of France?")],
            GenerationParams(temperature=0.0, max_tokens=30),
        )
    ]
    assert len(deltas) > 2
    assert "Paris" in "".join(deltas)


async def test_closing_the_stream_stops_generation_and_frees_the_model(llm):
    messages = [SYSTEM, ChatMessage("user", "Count from one to two hundred, in words.")]
    stream = llm.stream(messages, GenerationParams(max_tokens=400))
    got = []
    async for delta in stream:
        got.append(delta)
        if len(got) == 5:
            break
    await stream.aclose()
    started = time.perf_counter()
    # the next generation needs the model: it starts as soon as the aborted one let go
    first = await anext(aiter(llm.stream([SYSTEM, ChatMessage("user", "Say hi.")], GenerationParams(max_tokens=5))))
    assert first and time.perf_counter() - started < 3.0


async def test_cancelling_the_consumer_aborts(llm):
    async def consume():
        return [
            d
            async for d in llm.stream(
                [SYSTEM, ChatMessage("user", "Write a long story about a cat.")], GenerationParams(max_tokens=300)
            )
        ]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer = "".join(
        [
            d
            async for d in llm.stream(
                [SYSTEM, ChatMessage("user", "What is 2 plus 2? Answer with a digit.")],
                GenerationParams(temperature=0.0, max_tokens=10),
            )
        ]
    )
    assert "4" in answer


def test_counts_tokens_with_the_model_tokenizer(llm):
    assert 1 <= llm.count_tokens("Hello world") <= 4
    assert llm.count_tokens("word " * 100) >= 90


async def test_the_bundled_model_runs_requantized_to_q4_0(llm):
    assert llm.model_path.name == "qwen2.5-coder-0.5b-q4_0.gguf"
    assert llm.model_path.with_suffix(".json").exists()
    answer = "".join(
        [
            d
            async for d in llm.stream(
                [SYSTEM, ChatMessage("user", "What is the capital of France?")],
                GenerationParams(temperature=0.0, max_tokens=30),
            )
        ]
    )
    assert "Paris" in answer


# --- the batched engine, with the real model

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours.",
    "Who wrote Hamlet?",
    "Why is the sky blue? Answer in two sentences.",
]


def conversation(question: str) -> list[ChatMessage]:
    return [SYSTEM, ChatMessage("user", question)]


async def reply(llm, messages, max_tokens=40) -> str:
    return "".join([d async for d in llm.stream(messages, GenerationParams(temperature=0.0, max_tokens=max_tokens))])


@pytest.fixture
async def engine(llm, monkeypatch):
    """The model, counting its steps (``engine.steps``); the test ends once the engine is idle."""
    import llama_cpp

    real = llama_cpp.llama_decode
    llm.steps = 0

    def counting(ctx, batch):
        llm.steps += 1
        return real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", counting)
    yield llm
    deadline = time.perf_counter() + 120
    while (holding(llm) or llm._engine._waiting or llm._engine._inbox) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)  # (what a failed test left running must not reach the next)


async def by_step(llm, condition, steps: int = 2) -> None:
    """Wait for ``condition``: true before the engine has taken ``steps`` more steps (however slow they are)."""
    start = llm.steps
    while not condition():
        assert llm.steps - start <= steps, f"not true after {llm.steps - start} steps"
        await asyncio.sleep(0.005)


def holding(llm) -> int:
    """Conversation sequences held by a reply or prefill."""
    return sum(slot.job is not None for slot in llm._engine._slots if not slot.reserved)


async def test_four_concurrent_streams_give_the_same_greedy_text_as_one_at_a_time(llm):
    alone = [await reply(llm, conversation(q)) for q in QUESTIONS]
    await forget(llm)
    together = await asyncio.gather(*(reply(llm, conversation(q)) for q in QUESTIONS))
    assert together == alone
    assert "Paris" in together[0] and "Shakespeare" in together[2]


async def forget(llm) -> None:
    """Four unrelated short replies take every conversation sequence (what they held is cut back)."""
    await asyncio.gather(*(reply(llm, conversation(f"Say the number {n}."), max_tokens=2) for n in range(4)))


async def test_closing_one_of_four_streams_frees_its_sequence_and_the_other_three_finish(engine):
    llm = engine
    params = GenerationParams(temperature=0.0, max_tokens=60)
    streams = [llm.stream(conversation(f"Count from {n} to {n + 40}, in words."), params) for n in range(4)]
    got: list[list[str]] = [[], [], [], []]

    async def consume(index: int) -> None:
        async for delta in streams[index]:
            got[index].append(delta)

    others = [asyncio.create_task(consume(i)) for i in (1, 2, 3)]
    async for delta in streams[0]:
        got[0].append(delta)
        if len(got[0]) == 3:
            break
    await streams[0].aclose()
    await by_step(llm, lambda: holding(llm) <= 3)  # before the next step
    # the freed sequence serves a new reply while the other three still run
    hi = llm.stream(conversation("Say hi."), GenerationParams(max_tokens=5))
    assert await anext(hi) and not all(task.done() for task in others)
    await hi.aclose()
    await asyncio.gather(*others)
    # whole replies, past where the closed one stopped (not a length in characters: one full run of the
    # suite got "Two to four is 22." for "Count from 2 to 42", a whole reply too)
    assert all(len(g) > 3 for g in got[1:]), ["".join(g) for g in got]
    assert len(got[0]) == 3
    assert holding(llm) == 0


async def test_a_fifth_stream_waits_for_a_sequence_then_runs_and_a_waiting_one_can_be_cancelled(engine):
    llm = engine
    finished: list[float] = []
    first_delta: list[float] = []

    async def run(question: str, max_tokens: int) -> str:
        text = ""
        async for delta in llm.stream(conversation(question), GenerationParams(temperature=0.0, max_tokens=max_tokens)):
            first_delta.append(time.perf_counter()) if not text else None
            text += delta
        finished.append(time.perf_counter())
        return text

    four = [asyncio.create_task(run(f"Count from {n} to {n + 40}, in words.", 40)) for n in range(4)]
    await by_step(llm, lambda: holding(llm) == 4, steps=4)
    fifth = asyncio.create_task(run("What is the capital of France?", 30))
    sixth = asyncio.create_task(run("Tell me a story.", 50))
    await by_step(llm, lambda: len(llm._engine._waiting) == 2)
    assert not finished
    sixth.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sixth
    await by_step(llm, lambda: len(llm._engine._waiting) == 1)
    assert "Paris" in await fifth
    await asyncio.gather(*four)
    assert len(first_delta) == 5 and max(first_delta) > min(finished)  # the fifth began once one of four ended
    assert len(llm._engine._waiting) == 0 and holding(llm) == 0


async def test_prefill_then_stream_gives_the_same_text_as_stream_alone(llm):
    messages = conversation("What is the largest planet in the solar system?")
    alone = await reply(llm, messages)
    await forget(llm)
    prompt = llm._chat_tokens(messages)
    assert not any(slot.tokens[: len(prompt)] == prompt for slot in llm._engine._slots)
    await llm.prefill(messages)
    assert any(slot.tokens == prompt for slot in llm._engine._slots)  # read, waiting for the reply
    assert await reply(llm, messages) == alone


async def test_a_started_answer_is_read_after_the_generation_prompt_and_continued(llm):
    question = conversation("Is Paris the capital of France?")
    started = [*question, ChatMessage("assistant", "The documents say")]
    assert llm._chat_tokens(started) == llm._chat_tokens(question) + llm._model.tokenize(
        b"The documents say", add_bos=False, special=False
    )
    continued = await reply(llm, started, max_tokens=12)
    assert not continued.lstrip().startswith("The documents say") and "Paris" in continued


async def test_a_reply_that_nobody_reads_pauses_until_its_consumer_pulls(engine):
    llm = engine
    stream = llm.stream(conversation("Count from one to a hundred, in words."), GenerationParams(max_tokens=100))
    await anext(stream)
    job = next(slot.job for slot in llm._engine._slots if slot.job is not None)
    await by_step(llm, lambda: job.paused, steps=3 * UNCONSUMED_DELTAS)
    assert job.delivered - job.pulled == UNCONSUMED_DELTAS
    steps, generated = llm.steps, job.generated
    await asyncio.sleep(0.5)
    assert (llm.steps, job.generated) == (steps, generated)  # the engine rests: nothing else to do
    await anext(stream)
    await by_step(llm, lambda: job.generated > generated)
    await stream.aclose()


async def test_a_model_error_inside_a_step_reaches_the_consumer_and_the_next_stream_works(engine, monkeypatch):
    llm = engine
    import llama_cpp

    real, calls = llama_cpp.llama_decode, []

    def failing_once(ctx, batch):
        calls.append(batch.n_tokens)
        return -3 if len(calls) == 1 else real(ctx, batch)

    monkeypatch.setattr(llama_cpp, "llama_decode", failing_once)
    with pytest.raises(RuntimeError, match="llama_decode returned -3"):
        await reply(llm, conversation("What is 3 plus 3?"))
    assert holding(llm) == 0
    assert "Paris" in await reply(llm, conversation("What is the capital of France?"))


# --- the engine's rules, without a model


def test_a_reply_is_urgent_until_its_first_sentence_or_clause():
    assert not past_first_clause("")
    assert not past_first_clause("The capital")
    assert not past_first_clause("The capital of France is Paris.")  # not done until something follows
    assert past_first_clause("The capital of France is Paris. It")
    assert past_first_clause("Sure! Paris")
    assert not past_first_clause("Well, the")  # a comma after fewer than four words
    assert past_first_clause("In the centre of France, there")
    assert past_first_clause("These three things matter; first")


def test_a_sequence_is_chosen_by_the_longest_shared_prefix_then_what_it_would_lose():
    system = [1, 2, 3, 4]
    mine = Slot(0, tokens=[*system, 10, 11], last_used=5.0)
    other = Slot(1, tokens=[*system, 20, 21], last_used=1.0)
    unused = Slot(2)
    everyone = [mine, other, unused]
    # a conversation's next turn finds its own history
    turn = [*system, 10, 11, 12, 13]
    assert choose_slot(everyone, everyone, turn, len(turn) - 1) == (mine, None, 6)
    # ... even if part of what it held is cut (a reply cut short): nobody else has more of it
    cut = [*system, 10, 14]
    assert choose_slot([mine, other], everyone, cut, len(cut) - 1) == (mine, None, 5)
    # a new conversation goes where nothing is lost, its system prompt copied from a slot that has it
    fresh = [*system, 30]
    assert choose_slot(everyone, everyone, fresh, 4) == (unused, mine, 4)
    # with every slot holding a history, the least recently used one gives way
    assert choose_slot([mine, other], everyone, fresh, 4) == (other, None, 4)
    # a busy slot (not a candidate, e.g. a warm-up prompt) still lends its cells
    prefix = Slot(9, reserved=True, tokens=system)
    assert choose_slot([unused], [unused, prefix], fresh, 4) == (unused, prefix, 4)
    # a reply re-reads at least its last prompt token (for its logits); a prompt read ahead is kept
    read_ahead = Slot(3, tokens=[*system, 40, 41], last_used=9.0)
    ahead = [*system, 40, 41]
    assert choose_slot([read_ahead, unused], [read_ahead, unused], ahead, 5) == (read_ahead, None, 5)


def test_detokenizing_keeps_a_character_split_across_tokens_whole():
    pieces = {1: b"caf", 2: b"\xc3", 3: b"\xa9 ", 4: b"\xe2\x82", 5: b"\xac"}
    detokenizer = Detokenizer(pieces.__getitem__)
    assert [detokenizer.push(t) for t in (1, 2, 3, 4, 5)] == ["caf", "", "é ", "", "€"]
    assert detokenizer.flush() == ""
    detokenizer.push(2)
    assert detokenizer.flush() == "\ufffd"  # a reply cut mid-character


def test_a_prompt_is_never_read_one_token_at_a_time():
    """(llama.cpp computes a lone prompt token differently: a reply would depend on how its prompt was cut.)"""
    from types import SimpleNamespace

    from tara.core.stages.llm.llamacpp_engine import CHUNK_SHARED, _Engine
    from tara.core.stages.llm.llamacpp_jobs import Job, Kind

    def job(slot: int, prompt: int, read: int = 0, next_token: int | None = None) -> Job:
        made = Job(Kind.REPLY, list(range(prompt)))
        made.slot, made.read, made.next_token = Slot(slot), read, next_token
        return made

    def plan(*jobs: Job) -> list[tuple[int, int]]:
        engine = SimpleNamespace(_jobs=list(jobs), _seconds_per_token=1.0)  # (slow: chunks of CHUNK_SHARED)
        # a stand-in engine as self: _plan reads only its jobs and speed
        return [(work.slot.id, len(work.tokens)) for work in _Engine._plan(engine)]  # pyright: ignore[reportArgumentType]

    decoding = job(0, 10, read=10, next_token=5)
    assert plan(decoding, job(1, CHUNK_SHARED + 1)) == [(0, 1), (1, CHUNK_SHARED - 1)]  # two left for later
    assert plan(decoding, job(1, 3)) == [(0, 1), (1, 3)]
    # what the first reader leaves of the step's budget is not handed on one token at a time
    assert plan(job(1, CHUNK_SHARED - 1), job(2, 40)) == [(1, CHUNK_SHARED - 1)]
    assert plan(job(1, CHUNK_SHARED - 2), job(2, 40)) == [(1, CHUNK_SHARED - 2), (2, 2)]
