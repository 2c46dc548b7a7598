"""What Tara says when it has no answer of its own, and the audio of it, made once per voice.

A holding phrase is needed exactly when the CPU is busiest (four callers waiting for their models at
once): synthesised then, it waited for the same CPU and came seconds late. Replaying audio made
earlier costs nothing, so these phrases come on time whatever the load.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from tara.core.audio import AudioChunk
from tara.core.concurrency import Urgency
from tara.core.conversation.guards import CUT_NOT_IN_DOCUMENTS, NOT_IN_DOCUMENTS
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import TTS

HOLDING_PHRASE = "Let me check."
NOT_HEARD_PHRASE = "Sorry, I didn't catch that. Could you say it again?"
FAILED_PHRASE = "Sorry, something went wrong there. Could you ask again?"
FIXED_PHRASES = (HOLDING_PHRASE, NOT_IN_DOCUMENTS, CUT_NOT_IN_DOCUMENTS, NOT_HEARD_PHRASE, FAILED_PHRASE)
NO_ANSWERS = frozenset({NOT_IN_DOCUMENTS, NOT_HEARD_PHRASE, FAILED_PHRASE})  # replies that answered nothing
KEPT = 64  # (phrase, voice, emotion) recordings kept: the sliders make emotions many


class Speech:
    """The TTS as a session uses it: fixed phrases replayed from a recording, the rest synthesised."""

    def __init__(self, tts: TTS) -> None:
        self.tts = tts
        self._recordings: OrderedDict[tuple[str, str | None, str], list[AudioChunk]] = OrderedDict()

    async def stream(
        self, text: str, emotion: EmotionSettings, voice: str | None = None, context: Any = None, urgent: Urgency = True
    ) -> AsyncIterator[AudioChunk]:
        if text not in FIXED_PHRASES:
            async for chunk in self.tts.stream(text, emotion, voice, context, urgent=urgent):
                yield chunk
            return
        key = (text, voice or self.tts.default_voice, emotion.model_dump_json())
        if (recording := self._recordings.get(key)) is None:
            recording = [chunk async for chunk in self.tts.stream(text, emotion, voice, context, urgent=urgent)]
            self._recordings[key] = recording
            if len(self._recordings) > KEPT:
                self._recordings.popitem(last=False)
        self._recordings.move_to_end(key)
        for chunk in recording:
            yield chunk

    async def record(self, emotion: EmotionSettings, voice: str | None = None) -> None:
        """Make the fixed phrases' audio now (at start: it is also the voice's first, slowest synthesis)."""
        for text in FIXED_PHRASES:
            async for _ in self.stream(text, emotion, voice):
                pass
