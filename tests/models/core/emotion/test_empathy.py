"""A session hears how the user sounds: every turn is labelled, and ``auto`` answers anxiety with calm."""

import numpy as np

from tara.core.conversation.events import TurnMetrics, UserEmotion
from tara.core.conversation.session import Session
from tara.core.conversation.sink import BufferSink
from tara.core.emotion import EmotionSettings, empathy
from tara.core.emotion.empathy import Empathy
from tara.core.stages.tts.piper import piper_style
from tara.tools.filechat import feed
from tests.fakes import events_until

USUAL = "Can you tell me when the ferry leaves for the island in the morning?"
WORRIED = "I'm really worried, I think I missed the last ferry. Please help me!"


async def spoken_turn(session: Session, audio: np.ndarray) -> UserEmotion:
    await feed(session, audio, realtime=False)
    events = await events_until(session, TurnMetrics, timeout=120)
    heard = [e for e in events if isinstance(e, UserEmotion)]
    assert len(heard) == 1, events  # one label per committed turn, none for dropped speculative ones
    return heard[0]


async def test_auto_replies_calmly_to_an_anxious_user_and_a_manual_choice_wins(stack, voice, monkeypatch):
    styles, voiced = [], []
    build, stream = stack.prompts.build, stack.speech.stream

    def recording_build(history, question, passages, style, *rest):
        styles.append(style)
        return build(history, question, passages, style, *rest)

    def recording_stream(text, emotion, voice=None, context=None, urgent=True):
        voiced.append(emotion)
        return stream(text, emotion, voice, context, urgent=urgent)

    monkeypatch.setattr(stack.prompts, "build", recording_build)
    # every piece voiced, a fixed phrase replayed from its recording too ("I don't know" recorded earlier)
    monkeypatch.setattr(stack.speech, "stream", recording_stream)
    session = Session(stack, BufferSink(), EmotionSettings.from_preset("auto"))

    usual = await spoken_turn(session, voice(USUAL))
    assert usual.auto and usual.label == "neutral" and usual.features and usual.features["syllables_per_s"] > 2
    assert usual.reply["preset"] == "neutral" and styles[-1] == ""

    anxious = await spoken_turn(session, voice(WORRIED, speed=220, pitch=80, amplitude=180))
    assert anxious.label == "anxious" and anxious.confidence > 0.5 and anxious.auto
    assert anxious.reply["preset"] == "calm"
    assert "calm" in styles[-1] and "warm" in styles[-1]  # the LLM is asked for a calm, warm answer
    assert voiced[-1].preset == "calm" and piper_style(voiced[-1]).length_scale > 1.1  # and it is spoken slower
    assert any("higher" in reason or "faster" in reason or "louder" in reason for reason in anxious.reasons)
    assert session.emotion.preset == "auto"  # auto stays on: the next turn chooses again

    session.set_emotion(EmotionSettings.from_preset("cheerful"))  # the user picks: that wins
    manual = await spoken_turn(session, voice(WORRIED, speed=220, pitch=80, amplitude=180))
    assert manual.label == "anxious" and not manual.auto and manual.reply["preset"] == "cheerful"
    assert "cheerful" in styles[-1] and voiced[-1].preset == "cheerful"
    await session.close()


async def test_typed_turns_are_judged_by_their_words():
    heard = await Empathy().hear(None, None, "Ugh, this is ridiculous.")
    assert heard.features is None and heard.estimate.label == "frustrated"


async def test_a_failing_analysis_falls_back_to_the_words(monkeypatch):
    def broken(*args):
        raise ValueError("bad audio")

    monkeypatch.setattr(empathy, "analyze", broken)
    ear = Empathy()
    heard = await ear.hear(np.ones(16000, dtype=np.int16), None, "I'm so worried.")
    assert heard.features is None and heard.estimate.label == "anxious"
    event = ear.remember(1, heard, EmotionSettings(), EmotionSettings())
    assert event.features is None and not ear.baseline.stats  # nothing measured, nothing learnt
    assert event.to_dict()["type"] == "user_emotion"
