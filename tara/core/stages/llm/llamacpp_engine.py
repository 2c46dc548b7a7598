"""The engine thread behind ``LlamaCppLLM``: sequences, jobs and the batched step loop (see llamacpp.py)."""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from tara.core.concurrency import Cancelled, Compute, ComputeJob
from tara.core.stages.llm.llamacpp_jobs import (
    UNCONSUMED_DELTAS,
    Detokenizer,
    Job,
    Kind,
    Slot,
    choose_slot,
    past_first_clause,
)
from tara.core.stages.llm.settings import LlamaCppSettings

log = logging.getLogger(__name__)

CHUNK_SHARED = 16  # prompt tokens per step while other sequences decode
STEP_ALONE_S = 0.25  # while none decodes, prompts are read in steps of about this long (a reply arriving waits one)
BATCH = 512  # tokens per step, at most
PREFIX_SEQUENCES = 4  # reserved for warm-up prompts: the current ones and those a reindex replaces
TOP_K = 40  # sampling with a temperature: the candidates top_p chooses from


@dataclass
class _Work:
    job: Job
    tokens: list[int]
    logits: bool  # sample after this step
    index: int = -1  # of its last token in the batch

    @property
    def slot(self) -> Slot:
        """The job's sequence: a job is planned only once it holds one."""
        assert self.job.slot is not None
        return self.job.slot


_END = object()


class _Engine:
    """The step loop over one llama.cpp context, in its own thread.

    Only that thread changes its state, so the event loop never waits for a lock the engine might hold:
    a consumer posts jobs to ``_inbox``, counts what it pulled, marks a job closed, and sets ``_wake``.
    """

    def __init__(self, llama_cpp: Any, model: Any, config: LlamaCppSettings, compute: Compute) -> None:
        from llama_cpp._internals import LlamaContext

        self._ll = llama_cpp
        self._vocab = model.vocab
        self._n_vocab = model.n_vocab()
        self._n_ctx = config.n_ctx
        params = LlamaContext.default_params()
        params.n_seq_max = config.contexts + PREFIX_SEQUENCES
        params.n_ctx = config.n_ctx * params.n_seq_max  # llm.n_ctx for each sequence
        params.n_batch = params.n_ubatch = BATCH
        params.kv_unified = False  # a cache per sequence: batch-invariant logits (module docstring)
        params.n_threads = params.n_threads_batch = config.threads
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED  # as llama_cpp.Llama's default
        self._context = LlamaContext(model=model, params=params, verbose=False)
        self._memory = self._context.memory
        self._batch = llama_cpp.llama_batch_init(BATCH, 0, 1)
        self._slots = [Slot(i) for i in range(config.contexts)]
        self._slots += [Slot(config.contexts + i, reserved=True) for i in range(PREFIX_SEQUENCES)]
        self._compute = compute
        self._inbox: deque[Job] = deque()  # submitted, not seen by the engine yet
        self._wake = threading.Event()
        self._waiting: deque[Job] = deque()  # without a slot yet
        self._copying: set[int] = set()  # sequences whose copied cache llama.cpp writes at the next decode
        self._jobs: list[Job] = []  # holding a slot
        self._generation = 0
        self._cpu_wait: ComputeJob | None = None  # the step waiting for the CPU (a reply coming in may cancel it)
        # how fast prompts are read, measured as it runs (2 shared AVX2 cores: ~57 tok/s, and no faster in
        # chunks over 16; CPUs with wider vectors gain from bigger chunks)
        self._seconds_per_token = STEP_ALONE_S / CHUNK_SHARED
        threading.Thread(target=self._run, name="tara-llm", daemon=True).start()

    # --- called from the event loop

    def next_generation(self) -> int:
        self._generation += 1
        return self._generation

    def submit(self, job: Job) -> None:
        job.detokenizer = Detokenizer(self._piece)
        self._inbox.append(job)
        waiting = self._cpu_wait
        if job.kind is Kind.REPLY and waiting is not None and not waiting.urgent:
            waiting.cancel()  # stop waiting as work that can wait: plan again with the reply in
        self._wake.set()

    def consumed(self, job: Job) -> None:
        job.pulled += 1
        if job.delivered - job.pulled == UNCONSUMED_DELTAS - 1:
            self._wake.set()

    def close(self, job: Job) -> None:
        if not job.closed:
            job.closed = True
            self._wake.set()

    # --- the engine thread

    def _run(self) -> None:
        while True:
            try:
                self._iterate()
            except Exception as exc:  # (a bug, not a model error): fail what was running, keep serving
                log.exception("llama.cpp engine")
                for slot in self._slots:
                    self._ll.llama_memory_seq_rm(self._memory, slot.id, len(slot.tokens), -1)
                for job in [*self._waiting, *self._jobs]:
                    self._finish(job, exc)
                self._waiting.clear()

    def _iterate(self) -> None:
        while True:
            self._wake.clear()
            while self._inbox:
                self._waiting.append(self._inbox.popleft())
            if self._ready():
                break
            self._wake.wait()
        plan = self._organize()
        if not plan:
            return
        cpu = self._cpu_wait = self._compute.job(urgent=lambda: any(work.job.urgent for work in plan))
        if self._inbox and not cpu.urgent:
            cpu.cancel()  # (a reply submitted just now did not see it waiting)
        try:
            with cpu.slot():
                self._cpu_wait = None
                while self._inbox:
                    self._waiting.append(self._inbox.popleft())
                plan = self._organize()  # what changed while it waited
                if plan:
                    self._step(plan)
        except Cancelled:
            pass  # a more urgent reply came in: plan again
        finally:
            self._cpu_wait = None

    def _ready(self) -> bool:
        """Whether there is anything to do (else the thread sleeps until a submit, a pull or a close)."""
        for job in self._waiting:
            if job.closed or job.kind is not Kind.REPLY or self._candidates():
                return True
        return any(job.closed or job.kind is not Kind.REPLY or not job.paused for job in self._jobs)

    def _candidates(self) -> list[Slot]:
        return [s for s in self._slots if not s.reserved and (s.job is None or s.job.kind is Kind.PREFILL)]

    def _organize(self) -> list[_Work]:
        """Release the slots of closed jobs, give slots to waiting ones, and plan the next step."""
        for job in [j for j in self._jobs if j.closed]:
            self._release(job)
        self._waiting = deque(j for j in self._waiting if not j.closed)
        still: deque[Job] = deque()
        while self._waiting:
            job = self._waiting.popleft()
            if job.kind is Kind.WARM:
                self._admit_warm(job)
            elif candidates := self._candidates():
                limit = len(job.prompt) - (2 if job.kind is Kind.REPLY else 0)  # a reply needs its last token's logits
                donors = [s for s in self._slots if s.id not in self._copying]  # (no copies of a copy not made yet)
                self._assign(job, *choose_slot(candidates, donors, job.prompt, limit))
            elif job.kind is Kind.PREFILL:
                self._finish(job)  # no free sequence: dropped
            else:
                still.append(job)
        self._waiting = still
        for job in [j for j in self._jobs if j.kind is not Kind.REPLY and j.read == len(j.prompt)]:
            self._finish(job)
        return self._plan()

    def _admit_warm(self, job: Job) -> None:
        for slot in self._slots:
            if slot.reserved and slot.tokens == job.prompt and slot.job is None:
                slot.generation = job.generation  # read already (an unchanged prompt after a reindex)
                return self._finish(job)
        free = [s for s in self._slots if s.reserved and s.job is None and s.generation < job.generation]
        if not free:
            log.warning(
                "llama.cpp: more warm-up prompts than the %d reserved sequences; one is not cached", PREFIX_SEQUENCES
            )
            return self._finish(job)
        slot, _, reused = choose_slot(free, [], job.prompt, len(job.prompt))
        slot.generation = job.generation
        self._assign(job, slot, None, reused)

    def _assign(self, job: Job, slot: Slot, donor: Slot | None, reused: int) -> None:
        if slot.job is not None:
            self._finish(slot.job)  # a prefill gives way
        if len(job.prompt) - reused == 1:
            reused -= 1  # (no prompt is read one token at a time: see _plan)
        ll = self._ll
        if donor is not None:  # (llama.cpp copies a whole cache between sequences, at the next decode)
            ll.llama_memory_seq_rm(self._memory, slot.id, 0, -1)
            ll.llama_memory_seq_cp(self._memory, donor.id, slot.id, -1, -1)
            ll.llama_memory_seq_rm(self._memory, slot.id, reused, -1)
            slot.tokens = donor.tokens[:reused]
            self._copying.add(slot.id)
        elif ll.llama_memory_seq_rm(self._memory, slot.id, reused, -1):
            del slot.tokens[reused:]
        else:  # (a cache that cannot drop part of a sequence)
            ll.llama_memory_seq_rm(self._memory, slot.id, 0, -1)
            slot.tokens, reused = [], 0
        job.slot, job.read, job.reused, slot.job, slot.last_used = slot, reused, reused, job, time.monotonic()
        self._jobs.append(job)

    def _plan(self) -> list[_Work]:
        """Every decoding reply's next token, and prompt tokens for the readers in the order they came.

        Urgent replies' prompts first; prefill and warm-up only while no reply waits for a first clause.
        A prompt is read at least two tokens at a time: llama.cpp computes a sequence's single prompt
        token differently from the same token among others of its prompt (logits moved by 0.3), which
        would make a reply depend on how its prompt happened to be cut. (Replies' one-token decode
        steps compute the same alone or batched.)
        """
        replies = [j for j in self._jobs if j.kind is Kind.REPLY and not j.paused]
        replies.sort(key=lambda j: not j.urgent)  # (stable: in the order they came)
        jobs = (
            replies if any(j.urgent for j in replies) else replies + [j for j in self._jobs if j.kind is not Kind.REPLY]
        )
        plan = [_Work(j, [j.next_token], logits=True) for j in jobs if j.next_token is not None]
        reading = CHUNK_SHARED if plan else max(CHUNK_SHARED, int(STEP_ALONE_S / self._seconds_per_token))
        reading = min(reading, BATCH - len(plan) - 1)
        for job in jobs:
            left = len(job.prompt) - job.read  # (never 1: see _assign)
            if job.next_token is None and reading >= 2:
                take = min(reading, left)
                if left - take == 1:  # leave two, or take the last one along
                    take = take - 1 if take > 2 else take + 1
                reading -= take
                last = take == left
                plan.append(_Work(job, job.prompt[job.read : job.read + take], logits=job.kind is Kind.REPLY and last))
        return plan

    def _step(self, plan: list[_Work]) -> None:
        """One decode over ``plan``; a failure fails the jobs in it, never the engine."""
        try:
            started = time.perf_counter()
            status = self._decode(plan)
            self._copying.clear()
            tokens = sum(len(work.tokens) for work in plan)
            if status == 0 and tokens >= CHUNK_SHARED:
                self._seconds_per_token = 0.7 * self._seconds_per_token + 0.3 * (time.perf_counter() - started) / tokens
            if status != 0:
                raise RuntimeError(f"llama.cpp could not decode (llama_decode returned {status})")
            for work in plan:
                work.slot.tokens.extend(work.tokens)
            sampled = [(work, self._sample(work)) for work in plan if work.logits]
        except Exception as exc:
            log.exception("llama.cpp step failed")
            for work in plan:
                self._ll.llama_memory_seq_rm(self._memory, work.slot.id, len(work.slot.tokens), -1)  # half written
                self._finish(work.job, exc)
            return
        for work in plan:
            if work.job.next_token is None:
                work.job.read += len(work.tokens)
        for work, token in sampled:
            self._advance(work.job, token)

    def _decode(self, plan: list[_Work]) -> int:
        self._compute.assert_held()
        batch, n = self._batch, 0
        for work in sorted(plan, key=lambda w: w.slot.id):  # (in sequence order: a 4-reply step 157 -> 137 ms)
            start, seq = len(work.slot.tokens), work.slot.id
            for offset, token in enumerate(work.tokens):
                batch.token[n], batch.pos[n], batch.n_seq_id[n], batch.logits[n] = token, start + offset, 1, 0
                batch.seq_id[n][0] = seq
                n += 1
            if work.logits:
                batch.logits[n - 1], work.index = 1, n - 1
        batch.n_tokens = n
        return self._ll.llama_decode(self._context.ctx, batch)

    def _sample(self, work: _Work) -> int:
        logits = np.ctypeslib.as_array(
            self._ll.llama_get_logits_ith(self._context.ctx, work.index), shape=(self._n_vocab,)
        )
        params = work.job.params
        if params.temperature <= 0.0:
            return int(np.argmax(logits))
        top = np.argpartition(logits, -TOP_K)[-TOP_K:]
        weights = np.exp((logits[top] - logits[top].max()) / params.temperature)
        order = np.argsort(-weights)
        probabilities = weights[order] / weights.sum()
        keep = min(int(np.searchsorted(np.cumsum(probabilities), params.top_p)) + 1, TOP_K)  # the top_p nucleus
        rng = work.job.rng = work.job.rng or np.random.default_rng()
        return int(top[order[rng.choice(keep, p=probabilities[:keep] / probabilities[:keep].sum())]])

    def _advance(self, job: Job, token: int) -> None:
        """A reply's next token: hand over its text, or end the reply."""
        if job.closed or job.slot is None:
            return
        if self._ll.llama_vocab_is_eog(self._vocab, token):
            return self._finish(job)
        job.generated += 1
        job.next_token = token
        assert job.detokenizer is not None  # submit() gives every job one
        if delta := job.detokenizer.push(token):
            job.text += delta
            job.before_first_clause = job.before_first_clause and not past_first_clause(job.text)
            if not job.delivered:
                log.debug(
                    "llama.cpp: first text %.0f ms after submit; %d prompt tokens read, %d cached",
                    (time.perf_counter() - job.submitted) * 1000,
                    len(job.prompt) - job.reused,
                    job.reused,
                )
            job.delivered += 1  # (before the consumer can pull it)
            self._deliver(job, delta)
        if job.generated >= job.params.max_tokens or len(job.slot.tokens) + 1 >= self._n_ctx:
            self._finish(job)

    def _finish(self, job: Job, error: BaseException | None = None) -> None:
        assert job.detokenizer is not None  # submit() gives every job one
        if job.kind is Kind.REPLY and error is None and (tail := job.detokenizer.flush()):
            self._deliver(job, tail)
        self._release(job)  # (before the consumer hears of the end)
        self._deliver(job, error if error is not None else _END)
        job.closed = True

    def _release(self, job: Job) -> None:
        if job.slot is not None:
            job.slot.job, job.slot.last_used, job.slot = None, time.monotonic(), None
            self._jobs.remove(job)

    def _deliver(self, job: Job, item: object) -> None:
        if job.closed:
            return
        try:
            job.deliver(item)
        except RuntimeError:  # the consumer's loop has closed
            job.closed = True

    def _piece(self, token: int) -> bytes:
        buffer = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        if n < 0:
            buffer = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
        return buffer.raw[:n]
