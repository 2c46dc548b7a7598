"""What the user heard: pieces shown as they start playing, with word times; a cut reply keeps the words played."""

import asyncio

import numpy as np

from tara.core.audio import AudioChunk, TimedWord
from tara.core.conversation.events import AgentText, AgentTurnDone
from tara.core.conversation.heard import SpokenPiece, heard_text
from tara.core.conversation.session import Session
from tara.core.stages.rag import Document
from tests.fakes import PlayedSink, ScriptedLLM, WordTTS, events_until, fake_stack, queued_events, words

KETTLE = [Document("brightline-kettle.md", "The Brightline kettle costs 40 dollars and has a two year warranty.")]
RATE = 16000


def chunk(seconds: float, *timed: tuple[str, float]) -> AudioChunk:
    return AudioChunk(np.full(int(seconds * RATE), 1000, dtype=np.int16), RATE, tuple(TimedWord(*t) for t in timed))


def test_a_word_is_heard_once_half_of_it_has_played():
    piece = SpokenPiece("It costs forty.")
    piece.add(chunk(1.0, ("It", 0.125), ("costs", 0.375)), trimmed=0.125)  # 0.125 s of silence cut from it
    piece.add(chunk(0.5, ("forty.", 0.0)))
    piece.finished = True
    assert piece.words == (TimedWord("It", 0.0), TimedWord("costs", 0.25), TimedWord("forty.", 1.0))
    piece.start = 2.0  # its first sample played when the sink had played 2 s
    assert piece.heard(2.12) == [] and piece.heard(2.125) == ["It"]
    assert piece.heard(2.625) == ["It", "costs"]
    assert heard_text([piece, SpokenPiece("Never played.")], 4.0) == "It costs forty."


def test_a_voice_without_word_times_has_its_words_spread_over_its_audio():
    piece = SpokenPiece("one two three")
    piece.add(chunk(1.4))
    piece.finished = True
    assert [round(w.start, 2) for w in piece.words] == [0.0, 0.4, 0.8]


async def test_each_piece_is_shown_as_it_starts_playing_with_its_word_times(config):
    sink = PlayedSink()
    llm = ScriptedLLM(words("The kettle costs forty dollars. It has a two year warranty."))
    session = Session(fake_stack(config, llm, documents=KETTLE, tts=WordTTS()), sink)
    session.say_text("Tell me about the kettle.")
    while len(sink.chunks) < 5:  # both sentences synthesised and queued, nothing played
        await asyncio.sleep(0.01)
    assert not [e for e in queued_events(session) if isinstance(e, AgentText)]
    sink.play(0.01)
    first = (await events_until(session, AgentText, timeout=5))[-1]
    assert first.text == "The kettle costs forty dollars."
    assert first.words == [{"text": w, "start_ms": 250 * i} for i, w in enumerate(first.text.split())]
    assert first.played_ms == 10 and first.to_dict()["words"][1] == {"text": "kettle", "start_ms": 250}
    sink.play(1.25)  # into the second sentence: it is shown with its own offsets
    second = (await events_until(session, AgentText, timeout=5))[-1]
    assert second.text == "It has a two year warranty." and second.words[1] == {"text": "has", "start_ms": 250}
    sink.play(5.0)
    await session.close()


async def test_a_reply_cut_off_keeps_only_the_words_heard_in_the_page_and_the_history(config):
    sink = PlayedSink()
    llm = ScriptedLLM(words("The kettle costs forty dollars. It has a two year warranty."))
    session = Session(fake_stack(config, llm, documents=KETTLE, tts=WordTTS()), sink)
    session.say_text("Tell me about the kettle.")
    while len(sink.chunks) < 5:
        await asyncio.sleep(0.01)
    sink.play(1.25 + 0.3)  # the first sentence and "It" of the second (half of "has" not yet)
    assert session.interrupt()
    done = (await events_until(session, AgentTurnDone, timeout=5))[-1]
    assert done.interrupted and done.text == "The kettle costs forty dollars. It"
    assert [m.content for m in session.history] == ["Tell me about the kettle.", "The kettle costs forty dollars. It …"]
    await session.close()


async def test_a_reply_cut_off_before_a_word_played_leaves_nothing_in_the_history(config):
    sink = PlayedSink()
    session = Session(fake_stack(config, ScriptedLLM(words("It costs forty dollars.")), tts=WordTTS()), sink)
    session.say_text("How much?")
    while not sink.chunks:
        await asyncio.sleep(0.01)
    sink.play(0.05)
    session.interrupt()
    done = (await events_until(session, AgentTurnDone, timeout=5))[-1]
    assert done.interrupted and done.text == "" and session.history == []
    await session.close()
