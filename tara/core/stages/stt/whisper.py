"""faster-whisper (CTranslate2): the bundled multilingual base model on CPU, or any local CT2 dir.

Whisper pads every input to a 30 s window, so a 3 s question costs as much as 30 s of audio. Short
utterances are instead padded to a window just long enough (the speech and 2 s) and decoded greedily
in one CTranslate2 call. A window that short sometimes makes Whisper loop or guess, so a decoding the
guards reject or the decoder is unsure of (average log-probability under ``stt.unsure_logprob``) is
decoded again in a 10 s window, which keeps Whisper's end-of-text behaviour intact, with a beam search
(``stt.unsure_beam_size``); a quick transcription (``thorough=False``) redoes only what it doubts more
(``DOUBTFUL_LOGPROB``), greedily. On the held-out questions (108 clips through Opus, 2 cores) that took the
word error rate from 17.3 % to 14.6 % at 0.13 s median instead of 0.12 s (a beam everywhere: 14.1 %
at 0.24 s; a beam in the tight window loops: "What does the Smile Plan cost for months? What does…").
Longer audio takes faster-whisper's regular path.

Sure or unsure is judged with the documents in mind (``guards.fit``: each word they have adds
``stt.vocabulary_bonus`` to the log-probability, each they lack takes it off), and of the beam's readings
the best fit wins ("How much does a lack of cost?" → "… a locker cost?", "… for the first day taught?" →
"… for the Thursday talk?"). On the 144 held-out questions of all four sets, spoken without Opus: word
error rate 13.8 → 13.1 %, and 14.7 → 13.4 % said again slower, at the same median time.

Every decoding is checked (``tara/core/stages/stt/guards.py``): text that reads back the hotword prompt, loops,
or that the decoder itself doubts is decoded once more without the prompt, and if that fails too the
transcript is empty with the reason in ``rejected`` (the session then asks the user to say it again).
"""

from __future__ import annotations

import asyncio
import difflib
import re
import threading
import time
from collections.abc import Collection
from pathlib import Path

import numpy as np

from tara.core.assets import WHISPER_MODELS, resolve_model
from tara.core.audio import PIPELINE_RATE, to_float32
from tara.core.concurrency import Compute, NoCompute
from tara.core.config import ConfigError, STTConfig
from tara.core.conversation.guards import stem, words_of
from tara.core.devices import CTRANSLATE2, resolve_device
from tara.core.stages.stt import STT, Transcript
from tara.core.stages.stt.guards import Decoding, fit, is_silence, most_likely, rejection

MAX_HOTWORDS_CHARS = 160  # a short prompt: a long one is what Whisper reads back when the audio is unclear
RESPELL_WORD = re.compile(r"[A-Za-z]{5,}")
RESPELL_SIMILARITY = 0.8  # difflib's ratio: "discale" and "descale" are 0.86 apart
RARE_WORD_TOKENS = 3  # a document word whisper splits this finely is one it may not know
RARE_WORDS = 6
MIN_PROMPTED_FRAMES = 80  # under 0.8 s of audio the prompt would be most of what the decoder sees
FRAMES_PER_SECOND = 100  # log-mel frames
SAFE_WINDOW_FRAMES = 1000  # 10 s: the window a doubtful decoding is redone in
TAIL_FRAMES = 200  # at least 2 s of padding after the speech
DOUBTFUL_LOGPROB = -0.6  # a quick (not thorough) decoding this unsure is redone in the safe window, greedily
FULL_WINDOW_FRAMES = 3000


class FasterWhisperSTT(STT):
    needs_compute = True  # on the CPU it shares the cores with the other models

    def __init__(self, config: STTConfig, data_dir: Path, compute: Compute) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        model_file = resolve_model(config.model, WHISPER_MODELS, "stt.model", data_dir)
        model_dir = model_file.parent if model_file.is_file() else model_file
        if not (model_dir / "model.bin").exists():
            raise ConfigError(f"stt.model: {model_dir} is not a CTranslate2 whisper directory (no model.bin)")
        device = resolve_device(config.device, "stt.device", CTRANSLATE2)
        self.config = config
        self._model = WhisperModel(
            str(model_dir),
            device=device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
            local_files_only=True,
        )
        self._lock = threading.Lock()
        self._compute = compute if device == "cpu" else NoCompute()
        self._tokenizer = (
            Tokenizer(
                self._model.hf_tokenizer, self._model.model.is_multilingual, task="transcribe", language=config.language
            )
            if config.language
            else None
        )
        self.set_vocabulary([])

    def set_vocabulary(self, terms: list[str], words: Collection[str] = ()) -> None:
        pieces = {piece for word in words for piece in words_of(word)}
        self._known = frozenset(map(stem, pieces))  # what ``fit`` counts: "lockers" knows "locker"
        self._words = sorted(w for w in pieces if RESPELL_WORD.fullmatch(w))  # (long enough to respell)
        # The documents' rarest words ("hygienist": three tokens to whisper) after their names.
        rare = sorted(
            (w for w in self._words if self._token_count(w) >= RARE_WORD_TOKENS),
            key=lambda w: (-self._token_count(w), w),
        )
        # A sentence, not a bare list: a list makes Whisper transcribe short questions as more list items.
        text = ", ".join([*terms, *rare[:RARE_WORDS]])
        if len(text) > MAX_HOTWORDS_CHARS:
            text = text[:MAX_HOTWORDS_CHARS].rsplit(",", 1)[0]
        self._hotwords = f"The conversation mentions {text}." if text else None
        self._prompt = self._prompt_tokens(self._hotwords)
        self._plain_prompt = self._prompt_tokens(None)

    def _prompt_tokens(self, hotwords: str | None) -> list[int]:
        if self._tokenizer is None:
            return []
        return self._model.get_prompt(self._tokenizer, [], without_timestamps=True, hotwords=hotwords)

    async def transcribe(self, audio: np.ndarray, urgent: bool = True, thorough: bool = True) -> Transcript:
        return await asyncio.to_thread(self._transcribe, audio, urgent, thorough)

    def _transcribe(self, audio: np.ndarray, urgent: bool, thorough: bool) -> Transcript:
        started = time.perf_counter()
        samples = to_float32(audio)
        # the CPU slot first: a transcription waiting for it must not hold the lock others queue on
        with self._compute.job(urgent).slot(), self._lock:  # one decode at a time: it uses every core
            frames = len(samples) * FRAMES_PER_SECOND // PIPELINE_RATE
            short = self._tokenizer is not None and frames + TAIL_FRAMES <= FULL_WINDOW_FRAMES
            encoded = self._encode_short(samples, frames, frames + TAIL_FRAMES) if short else None
            prompted = self._hotwords is not None and frames >= MIN_PROMPTED_FRAMES
            decoding = self._decode(samples, frames, encoded, prompted)
            reason = rejection(decoding, self._hotwords if prompted else None)
            beam = self._unsure_beam(thorough)
            # how sure: a thorough reading counts the documents' words in (``fit``), a quick one is judged
            # as the echo guard's rules were set, on the decoder's log-probability alone
            sure, redo_below = (
                (self._fit(decoding), self.config.unsure_logprob) if beam else (decoding.avg_logprob, DOUBTFUL_LOGPROB)
            )
            widen = frames + TAIL_FRAMES < SAFE_WINDOW_FRAMES  # a tight window may have misled it
            if short and (widen or beam) and (reason or sure < redo_below):
                if widen:
                    encoded = self._encode_short(samples, frames, SAFE_WINDOW_FRAMES)
                decoding, reason = self._better(
                    (decoding, reason),
                    self._decode_short(encoded, frames, prompted, beam),
                    self._hotwords if prompted else None,
                )
            if reason and prompted:  # once more, without the names that may have led it astray
                decoding, reason = self._better(
                    (decoding, reason), self._decode(samples, frames, encoded, prompted=False), self._hotwords
                )
        seconds = len(audio) / PIPELINE_RATE
        if is_silence(decoding) or reason:  # (silence is no failure: nobody said anything)
            return Transcript(
                "",
                seconds,
                time.perf_counter() - started,
                rejected=None if is_silence(decoding) else reason,
                doubtful=decoding.text.strip(),
                avg_logprob=decoding.avg_logprob,
            )
        elapsed = time.perf_counter() - started
        return Transcript(self._respell(decoding.text), seconds, elapsed, avg_logprob=decoding.avg_logprob)

    def _unsure_beam(self, thorough: bool) -> int | None:
        """The beam an unsure decoding is searched again with; None: redone greedily, only if doubted more
        (a quick reading: the echo guard's log-probability rule was set on greedy decodings)."""
        wider = thorough and self.config.unsure_beam_size > self.config.beam_size
        return self.config.unsure_beam_size if wider else None

    def _token_count(self, word: str) -> int:
        """How finely whisper's tokenizer splits ``word``, as it may appear (its merges are uneven:
        " tooth" takes three tokens, " Tooth" two): a rough measure of how rare the word is to it."""
        encode = self._model.hf_tokenizer.encode
        return min(
            len(encode(form, add_special_tokens=False).ids) for form in (f" {word}", f" {word.capitalize()}", word)
        )

    def _respell(self, text: str) -> str:
        """Misheard document words put right: "How often do I discale it?" → "... descale it?".

        A word Whisper's own tokenizer splits into pieces is rare in English; when it is one or two
        letters off a word of the documents, that word is what was said. Common words (one token)
        are left alone, so "cleaning" never becomes "leaning".
        """
        if not self._words:
            return text

        def fix(match: re.Match[str]) -> str:
            word = match.group(0)
            lower = word.lower()
            if stem(lower) in self._known or self._token_count(lower) < 2:
                return word
            close = difflib.get_close_matches(lower, self._words, n=1, cutoff=RESPELL_SIMILARITY)
            return (close[0].capitalize() if word[0].isupper() else close[0]) if close else word

        return RESPELL_WORD.sub(fix, text)

    def _decode(self, samples: np.ndarray, frames: int, encoded, prompted: bool) -> Decoding:
        if encoded is None:
            return self._decode_long(samples, prompted)
        return self._decode_short(encoded, frames, prompted)

    def _encode_short(self, samples: np.ndarray, frames: int, window: int):
        self._compute.assert_held()
        window = max(window, frames + TAIL_FRAMES)
        padded_audio = np.pad(samples, (0, window * PIPELINE_RATE // FRAMES_PER_SECOND - len(samples)))
        features = self._model.feature_extractor(padded_audio)
        features = features[:, : features.shape[1] - features.shape[1] % 2]  # the encoder halves the frames
        return self._model.encode(features)

    def _decode_short(self, encoded, frames: int, prompted: bool, beam_size: int | None = None) -> Decoding:
        self._compute.assert_held()
        assert self._tokenizer is not None  # the short path is taken only with one (stt.language set)
        prompt = self._prompt if prompted else self._plain_prompt
        max_new_tokens = 12 * frames // FRAMES_PER_SECOND + 16  # speech rarely exceeds ~5 tokens a second
        beam_size = beam_size or self.config.beam_size
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=beam_size,
            num_hypotheses=beam_size,  # (the beam's other readings cost nothing more)
            max_length=min(448, len(prompt) + max_new_tokens),
            suppress_blank=True,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        # as faster-whisper does: the score is length-normalised; the average counts the end token too
        readings = [
            Decoding(
                self._tokenizer.decode(tokens).strip(), score * len(tokens) / (len(tokens) + 1), result.no_speech_prob
            )
            for tokens, score in zip(result.sequences_ids, result.scores)
        ]
        return most_likely(readings, self._hotwords if prompted else None, self._known, self.config.vocabulary_bonus)

    def _better(
        self, first: tuple[Decoding, str | None], second: Decoding, prompt: str | None
    ) -> tuple[Decoding, str | None]:
        """The more trustworthy of a decoding (with its rejection) and another try: one the guards accept,
        else the one that ``fit``s better. A retry is not always better: the 10 s window once turned "Is
        there a dinosaur skeleton?" (accepted, if doubtful) into nonsense."""
        second_reason = rejection(second, prompt)
        if (first[1] is None) != (second_reason is None):
            return first if first[1] is None else (second, second_reason)
        return first if self._fit(first[0]) >= self._fit(second) else (second, second_reason)

    def _fit(self, decoding: Decoding) -> float:
        return fit(decoding, self._known, self.config.vocabulary_bonus)

    def _decode_long(self, samples: np.ndarray, prompted: bool) -> Decoding:
        self._compute.assert_held()
        segments, _info = self._model.transcribe(
            samples,
            language=self.config.language,
            beam_size=self.config.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            hotwords=self._hotwords if prompted else None,
        )
        segments = list(segments)
        text = " ".join(segment.text.strip() for segment in segments).strip()
        if not segments:
            return Decoding(text)
        return Decoding(
            text, float(np.mean([s.avg_logprob for s in segments])), float(min(s.no_speech_prob for s in segments))
        )
