"""``tts.backend: csm``: Sesame's CSM speaking through Mimi, streamed as it is generated.

CSM gives no word times: its chunks carry none, and the reply spreads a piece's words by character count
over the audio its Mimi frames made (80 ms each), once the piece is all made.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from tara.core.audio import PIPELINE_RATE, AudioChunk, read_audio, resample
from tara.core.concurrency import Urgency, iterate_in_thread
from tara.core.config import ConfigError
from tara.core.devices import resolve_device
from tara.core.emotion import EmotionSettings
from tara.core.stages.tts import ConversationalTTS, UnknownVoiceError
from tara.core.stages.tts.csm.files import resolve_files
from tara.core.stages.tts.csm.generator import FRAME_SAMPLES, SAMPLE_RATE, Segment, Streamer
from tara.core.stages.tts.csm.model import CSM, FLAVOURS
from tara.core.stages.tts.csm.sampling import Sampling, sampling_for
from tara.core.stages.tts.settings import CSMPrompt, CSMSettings

USER_SPEAKER = 1  # the [N] tag for the person CSM talks with; voices default to speaker 0


@dataclass
class Voice:
    speaker: int
    prompt: Segment | None
    emotions: dict[str, Segment]  # emotion preset -> prompt spoken in that mood

    def prompt_for(self, emotion: EmotionSettings) -> Segment | None:
        return self.emotions.get(emotion.preset, self.prompt)


@dataclass
class Conversation:
    """One conversation's recent segments, newest last: CSM hears them, so prosody follows the exchange.

    One per session (``CSMTTS.new_context``; the model is shared); pass it to ``CSMTTS.stream`` and add
    the user's turns with ``CSMTTS.hear``. The agent's own sentences are added as they are spoken.
    """

    keep: int = 4
    segments: deque[Segment] = field(default_factory=deque)

    def add(self, segment: Segment) -> None:
        self.segments.append(segment)
        while len(self.segments) > self.keep:
            self.segments.popleft()


class CSMTTS(ConversationalTTS):
    sample_rate = SAMPLE_RATE
    can_clone = True  # a voice is a prompt: a recording's Mimi codes and its transcript

    def __init__(self, config: CSMSettings, data_dir: Path) -> None:
        from moshi.models.loaders import get_mimi
        from safetensors.torch import load_file
        from torchtune.models.llama3 import llama3_tokenizer

        from tara.core.stages.tts.csm.tiny import tiny_mimi_config

        self.settings = config
        files = resolve_files(self.settings, data_dir)
        device = torch.device(resolve_device(self.settings.device, "tts.device"))
        args = FLAVOURS[self.settings.model]
        model = CSM(args)
        try:
            model.load_state_dict(load_file(str(files.weights)))
        except (RuntimeError, OSError) as exc:  # wrong shapes or a damaged file
            raise ConfigError(f"tts.weights: cannot load {files.weights} as CSM {self.settings.model}: {exc}") from exc
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        model = model.to(device=device, dtype=dtype).eval()
        mimi_config = tiny_mimi_config() if self.settings.model == "tiny" else None
        mimi = get_mimi(files.mimi, mimi_config, device=device, num_codebooks=args.codebooks)
        tokenizer = llama3_tokenizer(str(files.tokenizer))
        self._streamer = Streamer(
            model, mimi, lambda text: tokenizer.encode(text, add_bos=True, add_eos=True), self.settings.seed
        )
        self._lock = threading.Lock()  # one utterance at a time: KV caches and Mimi's stream state are shared
        self._voices = {name: self._load_voice(name, voice) for name, voice in self.settings.voices.items()}
        self.default_voice = self.settings.default_voice

    def _prompt(self, speaker: int, text: str, audio: np.ndarray) -> Segment:
        """A voice prompt from 24 kHz speech and its transcript; ValueError when it leaves no room to speak."""
        segment = self._streamer.segment(speaker, text, self._streamer.encode(audio))
        if segment.length > self._streamer.args.max_positions // 2:  # leave room for the conversation and speech
            seconds = segment.codes.shape[1] * FRAME_SAMPLES / SAMPLE_RATE
            raise ValueError(f"{seconds:.0f}s is too long for a prompt; use under 30s")
        return segment

    def _load_voice(self, name: str, voice) -> Voice:
        def segment(prompt: CSMPrompt, key: str) -> Segment:
            try:
                return self._prompt(voice.speaker, prompt.text, read_audio(prompt.audio, SAMPLE_RATE))
            except ValueError as exc:
                raise ConfigError(f"{key}.audio: {exc}") from exc

        key = f"tts.voices.{name}"
        return Voice(
            speaker=voice.speaker,
            prompt=segment(voice.prompt, f"{key}.prompt") if voice.prompt else None,
            emotions={preset: segment(p, f"{key}.emotions.{preset}") for preset, p in voice.emotions.items()},
        )

    @property
    def voices(self) -> list[str]:
        return list(self._voices)

    @property
    def device(self) -> str:
        return self._streamer.device.type

    def add_voice(self, name: str, samples: np.ndarray, sample_rate: int, transcript: str) -> None:
        """A cloned voice: the recording (Mimi-encoded) and its transcript prompt every sentence it speaks."""
        audio = resample(samples, sample_rate, SAMPLE_RATE)
        with self._lock:  # Mimi's state is shared with generation
            prompt = self._prompt(0, transcript, audio)
        self._voices[name] = Voice(speaker=0, prompt=prompt, emotions={})

    def remove_voice(self, name: str) -> None:
        if name == self.default_voice:
            raise ValueError(f"voice {name!r} is the default voice")
        if self._voices.pop(name, None) is None:
            raise UnknownVoiceError(f"unknown voice {name!r}")

    def new_context(self) -> Conversation:
        return Conversation(keep=self.settings.context_segments)

    async def hear(self, context: Conversation, text: str, pcm16k: np.ndarray) -> None:
        """Add what the user said (text and audio) to the conversation."""
        audio = resample(pcm16k, PIPELINE_RATE, SAMPLE_RATE)

        def encode() -> Segment:
            with self._lock:
                return self._streamer.segment(USER_SPEAKER, text, self._streamer.encode(audio))

        context.add(await asyncio.to_thread(encode))

    def stream(
        self,
        text: str,
        emotion: EmotionSettings,
        voice: str | None = None,
        context: Conversation | None = None,
        urgent: Urgency = True,  # (a GPU voice: not scheduled)
    ) -> AsyncIterator[AudioChunk]:
        chosen = self._voices[self.check_voice(voice or self.default_voice)]
        return iterate_in_thread(
            lambda: self._speak(text, chosen, sampling_for(emotion), chosen.prompt_for(emotion), context)
        )

    def _speak(
        self, text: str, voice: Voice, sampling: Sampling, prompt: Segment | None, conversation: Conversation | None
    ) -> Iterator[AudioChunk]:
        streamer = self._streamer
        max_frames = max(1, self.settings.max_audio_ms * SAMPLE_RATE // (1000 * FRAME_SAMPLES))
        with self._lock:
            history = list(conversation.segments) if conversation else []
            tokens, mask, max_frames = streamer.plan(prompt, history, voice.speaker, text, max_frames)
            spoken: list[torch.Tensor] = []

            def frames() -> Iterator[torch.Tensor]:
                for frame in streamer.frames(tokens, mask, max_frames, sampling):
                    spoken.append(frame)
                    yield frame

            for pcm in streamer.decode(frames(), self.settings.frames_per_chunk):
                yield AudioChunk(pcm, SAMPLE_RATE)
            if conversation is not None and spoken:
                conversation.add(streamer.segment(voice.speaker, text, torch.stack(spoken, dim=1)))
