"""A session's voice context: a conversational TTS hears the user and gets its context back; others are left alone."""

from __future__ import annotations

import numpy as np

from tara.core.stages.tts import ConversationalTTS, VoiceContext
from tests.fakes import ToneTTS


class ListeningTone(ToneTTS, ConversationalTTS):
    """A tone voice that records what it heard in each conversation's context."""

    def new_context(self) -> list[str]:
        return []

    async def hear(self, context: list[str], text: str, pcm16k: np.ndarray) -> None:
        context.append(text)


async def test_a_conversational_voice_hears_the_user_in_its_own_context():
    tts = ListeningTone()
    first, second = VoiceContext(tts), VoiceContext(tts)
    await first.hear("What time is it?", np.zeros(160, dtype=np.int16))
    assert first.state == ["What time is it?"] and second.state == []


async def test_any_other_voice_keeps_no_context_and_ignores_what_it_hears():
    context = VoiceContext(ToneTTS())
    await context.hear("Hello?", np.zeros(160, dtype=np.int16))
    assert context.state is None
