"""Streaming speech from CSM: frames are sampled one by one and decoded by Mimi as they come.

Stock CSM decodes a whole utterance at the end, so nothing plays until all of it is made. Here each
frame goes through Mimi's streaming decoder (which keeps its convolution and attention state between
calls and gives exactly the one-shot result), and audio is handed out every ``frames_per_chunk``
frames: the first sound of a sentence is out after two frames (160 ms of audio) by default.

CSM reads one sequence of rows: the context segments (``[speaker]text`` rows, then that speech's
frames and an all-zero end frame), then the new text, then the frames it makes. All of it must fit
in the backbone's positions (2048), so older conversation segments are dropped first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tara.core.stages.tts.csm.model import CSM
from tara.core.stages.tts.csm.sampling import Sampling

FRAME_SAMPLES = 1920  # Mimi: 24 kHz at 12.5 frames per second
SAMPLE_RATE = 24000


@dataclass(frozen=True)
class Segment:
    """Something said, as CSM reads it: ``rows`` tokens and ``mask`` [rows, codebooks + 1]."""

    speaker: int
    text: str
    codes: torch.Tensor  # [codebooks, frames] Mimi codes of the speech
    tokens: torch.Tensor
    mask: torch.Tensor

    @property
    def length(self) -> int:
        return self.tokens.shape[0]


def fit_context(prompt: Segment | None, history: Sequence[Segment], budget: int) -> list[Segment]:
    """The prompt, then as many of the newest ``history`` segments as fit in ``budget`` rows, oldest first.

    The prompt always stays: it carries the voice. A segment that does not fit ends the search, so the
    context stays a contiguous, most recent stretch of the conversation.
    """
    used = prompt.length if prompt else 0
    kept: list[Segment] = []
    for segment in reversed(history):
        if used + segment.length > budget:
            break
        kept.append(segment)
        used += segment.length
    return ([prompt] if prompt else []) + kept[::-1]


def to_int16(pcm: torch.Tensor) -> np.ndarray:
    return (pcm.float().clamp(-1.0, 1.0) * 32767.0).round().to(torch.int16).reshape(-1).cpu().numpy()


class Streamer:
    """One model, codec and tokenizer; generates one utterance at a time (the caller holds a lock)."""

    def __init__(
        self,
        model: CSM,
        mimi,  # moshi.models.compression.MimiModel
        tokenize: Callable[[str], list[int]],  # text -> token ids with begin and end of text
        seed: int | None = None,
    ) -> None:
        self.model, self.mimi, self.tokenize = model, mimi, tokenize
        self.args = model.args
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(self.device)
        if seed is None:
            self.generator.seed()  # a fresh generator's default seed is a constant: every run would sound alike
        else:
            self.generator.manual_seed(seed)
        model.setup_caches()

    def _text_rows(self, speaker: int, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.tensor(self.tokenize(f"[{speaker}]{text}"), dtype=torch.long)
        tokens = torch.zeros(len(ids), self.args.codebooks + 1, dtype=torch.long)
        mask = torch.zeros_like(tokens, dtype=torch.bool)
        tokens[:, -1], mask[:, -1] = ids, True
        return tokens, mask

    def _audio_rows(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[codebooks, frames] codes -> rows with the text column masked out."""
        tokens = torch.zeros(codes.shape[1], self.args.codebooks + 1, dtype=torch.long, device=codes.device)
        tokens[:, :-1] = codes.T
        mask = torch.ones_like(tokens, dtype=torch.bool)
        mask[:, -1] = False
        return tokens, mask

    def segment(self, speaker: int, text: str, codes: torch.Tensor) -> Segment:
        """A context segment; an all-zero end frame follows the speech, as it did when CSM learnt to stop."""
        codes = codes.cpu()
        ended = torch.cat([codes, torch.zeros(codes.shape[0], 1, dtype=torch.long)], dim=1)
        text_tokens, text_mask = self._text_rows(speaker, text)
        audio_tokens, audio_mask = self._audio_rows(ended)
        return Segment(speaker, text, codes, torch.cat([text_tokens, audio_tokens]), torch.cat([text_mask, audio_mask]))

    @torch.inference_mode()
    def encode(self, samples: np.ndarray) -> torch.Tensor:
        """24 kHz int16 speech -> [codebooks, frames] codes."""
        wav = torch.from_numpy(samples.astype(np.float32) / 32768.0).to(self.device).view(1, 1, -1)
        return self.mimi.encode(wav)[0, : self.args.codebooks].cpu()

    def plan(
        self, prompt: Segment | None, history: Sequence[Segment], speaker: int, text: str, max_frames: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Rows to feed (prompt, the history that fits, the text) and how many frames fit after them."""
        text_tokens, text_mask = self._text_rows(speaker, text)
        context = fit_context(prompt, history, self.args.max_positions - len(text_tokens) - max_frames)
        tokens = torch.cat([*(s.tokens for s in context), text_tokens])
        mask = torch.cat([*(s.mask for s in context), text_mask])
        room = self.args.max_positions - tokens.shape[0]
        if room < 1:
            raise ValueError(
                f"CSM prompt and text take {tokens.shape[0]} rows: no room left in {self.args.max_positions}"
            )
        return tokens, mask, min(max_frames, room)

    def frames(
        self, tokens: torch.Tensor, mask: torch.Tensor, max_frames: int, sampling: Sampling
    ) -> Iterator[torch.Tensor]:
        """Sample frames ([codebooks] codes each) until an all-zero frame or ``max_frames``."""
        self.model.reset_caches()
        tokens, mask = tokens.to(self.device).unsqueeze(0), mask.to(self.device).unsqueeze(0)
        positions = torch.arange(tokens.shape[1], device=self.device).unsqueeze(0)
        for _ in range(max_frames):
            frame = self.model.generate_frame(tokens, mask, positions, sampling, self.generator)
            if not frame.any():  # CSM's end of speech
                return
            yield frame[0]
            tokens, mask = (part.unsqueeze(0) for part in self._audio_rows(frame.T))
            positions = positions[:, -1:] + 1

    @torch.inference_mode()
    def decode(self, frames: Iterable[torch.Tensor], frames_per_chunk: int) -> Iterator[np.ndarray]:
        """Decode frames as they arrive; yield int16 PCM every ``frames_per_chunk`` frames (the rest at the end)."""
        pending: list[torch.Tensor] = []
        with self.mimi.streaming(1):
            for frame in frames:
                pending.append(self.mimi.decode(frame.view(1, -1, 1)))
                if len(pending) == frames_per_chunk:
                    yield to_int16(torch.cat(pending, dim=-1))
                    pending.clear()
            if pending:
                yield to_int16(torch.cat(pending, dim=-1))
