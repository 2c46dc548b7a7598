"""The models a process loads once and every session shares."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from rich.console import Console

from tara.core.audio import PIPELINE_RATE
from tara.core.concurrency import Callers, Compute
from tara.core.config import TaraConfig
from tara.core.conversation.phrases import Speech
from tara.core.conversation.prompt import PromptBuilder
from tara.core.emotion import EmotionSettings
from tara.core.stages.endpointing import TURN_MODELS, TurnModel, WordsOnly
from tara.core.stages.llm import LLM
from tara.core.stages.llm.tiered import load_llm
from tara.core.stages.mic import MIC_FILTERS, MicChain, mic_filter_names, new_mic_chain
from tara.core.stages.mic.echo import EchoReference
from tara.core.stages.rag import RETRIEVERS, Retriever
from tara.core.stages.rag.documents import document_words, vocabulary
from tara.core.stages.stt import STT, STT_BACKENDS
from tara.core.stages.tts import TTS, TTS_BACKENDS
from tara.core.stages.vad import VAD_BACKENDS, Endpointer, new_endpointer


class HearingStack(Protocol):
    """What a ``Listener`` needs of the stack: hearing alone (``tara/tools/endpointing.py`` loads just this)."""

    config: TaraConfig
    stt: STT
    turn_model: TurnModel
    callers: Callers

    def new_vad(self) -> Endpointer: ...


@dataclass
class AgentStack:
    config: TaraConfig
    stt: STT
    retriever: Retriever
    llm: LLM
    tts: TTS
    prompts: PromptBuilder
    compute: Compute  # the CPU the backends share (they were given it when made)
    load_seconds: dict[str, float] = field(default_factory=dict)
    turn_model: TurnModel = field(default_factory=WordsOnly)  # how likely the user is done (``endpointing.backend``)
    callers: Callers = field(default_factory=Callers)  # the calls in progress (sessions join; the LLM counts them)
    speech: Speech = field(init=False)  # the TTS as sessions use it (fixed phrases recorded)

    def __post_init__(self) -> None:
        self.speech = Speech(self.tts)

    def new_vad(self) -> Endpointer:
        """VADs are per stream: Silero keeps recurrent state."""
        return new_endpointer(self.config.vad)

    def new_mic_chain(self, echo_reference: EchoReference | None = None) -> MicChain:
        """Mic filters are per stream too: the echo canceller follows one call's echo path, RNNoise keeps
        recurrent state. ``echo_reference``: what the call's speaker sent (no echo canceller without it)."""
        return new_mic_chain(self.config.audio, echo_reference)


async def load_stack(config: TaraConfig, kb_dir: Path | None = None, console: Console | None = None) -> AgentStack:
    """Load every stage named by ``config``, index the knowledge base and warm the LLM's prompt cache."""
    console = console or Console(stderr=True)
    timings: dict[str, float] = {}
    data_dir = config.data_path

    def timed(label: str, build):
        started = time.perf_counter()
        with console.status(f"loading {label}..."):
            value = build()
        timings[label] = round(time.perf_counter() - started, 2)
        console.log(f"{label} ready in {timings[label]:.1f}s")
        return value

    VAD_BACKENDS.resolve(config.vad.backend)  # fail at start on an unknown name
    for name in mic_filter_names(config.audio):
        MIC_FILTERS.resolve(name)  # and on a mic filter whose library is missing
    compute = Compute()  # the process's cores, shared by every session's models
    stt = timed(
        "speech recognition", lambda: STT_BACKENDS.create(config.stt.backend, config.stt, data_dir, compute=compute)
    )
    retriever = timed("knowledge base", lambda: RETRIEVERS.create(config.rag.backend, config.rag, data_dir, kb_dir))
    callers = Callers()
    llm = timed("language model", lambda: load_llm(config.llm, data_dir, compute, callers))
    tts = timed("voice", lambda: TTS_BACKENDS.create(config.tts.backend, config.tts, data_dir, compute=compute))
    turn_model = timed(
        "end-of-turn model",
        lambda: TURN_MODELS.create(config.endpointing.backend, config.endpointing, compute=compute),
    )
    if config.stt.hotwords_from_kb:
        stt.set_vocabulary(vocabulary(retriever.documents), document_words(retriever.documents))
    prompts = PromptBuilder(config.llm, config.rag, retriever.documents, llm.count_tokens)
    started = time.perf_counter()
    with console.status("warming up (speech recognition, prompt cache, voice)..."):
        await stt.transcribe(np.zeros(PIPELINE_RATE, dtype=np.int16))  # the first decode is the slowest
        await turn_model.probability_done(np.zeros(PIPELINE_RATE, dtype=np.int16))
        await llm.warm_up(prompts.warm_up_prefixes())
        stack = AgentStack(config, stt, retriever, llm, tts, prompts, compute, timings, turn_model, callers)
        await stack.speech.record(EmotionSettings.from_preset(config.emotion.preset))
    timings["warm-up"] = round(time.perf_counter() - started, 2)
    console.log(
        f"warm-up done in {timings['warm-up']:.1f}s (knowledge base {'in prompt' if prompts.inline else 'retrieved'})"
    )
    return stack
