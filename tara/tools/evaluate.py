"""``tara eval``: is Tara right, intelligible and expressive? Measured with the real models.

- accuracy: questions about the shipped knowledge base, spoken with espeak-ng, through the whole
  pipeline; an answer counts when it contains the fact;
- round trip: sentences like Tara's replies, spoken by the TTS and transcribed again by the STT;
  the word error rate says how intelligible the voice is (and how well the two agree);
- emotion: every preset spoken and measured with ``tara.core.emotion.prosody``: speaking rate, pitch range and
  energy against neutral, and whether the difference is audible.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from tara.core.audio import PIPELINE_RATE, resample
from tara.core.emotion import PRESETS, EmotionSettings
from tara.core.emotion.prosody import ProsodyFeatures, analyze
from tara.core.stack import AgentStack
from tara.core.stages.tts import synthesize
from tara.tools.measure import spoken

# (question, any of these in the answer): facts from knowledge_base/
QUESTIONS: list[tuple[str, list[str]]] = [
    ("How much water does the Brightline kettle hold?", ["1.7", "one point seven"]),
    ("How long is the warranty on the kettle?", ["two years", "2 years"]),
    ("What temperature is best for green tea?", ["80", "eighty"]),
    ("How often should I descale the kettle?", ["four weeks", "4 weeks"]),
    ("What is the phone number for kettle support?", ["478"]),
    ("When does the library open on Saturday?", ["10", "ten"]),
    ("How many items can I borrow from the library at once?", ["twelve", "12"]),
    ("How much is the late fee per item per day?", ["20 cents", "twenty cents", "0.20", "0.2"]),
    ("Is the library open on Sundays?", ["closed", "not open"]),
    ("How long does a slot in the maker space last?", ["ninety", "90"]),
]
ROUND_TRIP = [
    "The library opens at nine in the morning on weekdays.",
    "You can borrow up to twelve items at a time for three weeks.",
    "Fill the kettle with water and white vinegar, boil it, then rinse it twice.",
    "I'm sorry, I don't know that. It isn't in my documents.",
    "The reading cafe on the ground floor serves coffee until six in the evening.",
    "Hold the start button for three seconds to keep the water warm.",
]
EMOTION_TEXT = (
    "Good morning, and welcome to the harbour office. The next ferry to the island leaves at ten, "
    "and the crossing takes about forty minutes. Tickets are sold at the desk by the gate."
)
# A preset is audible when it moves at least one of these past the run-to-run spread.
MIN_RATE_CHANGE = 0.05  # relative
MIN_RANGE_CHANGE_ST = 1.0
MIN_ENERGY_CHANGE_DB = 1.5
_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass(frozen=True)
class ProsodyChange:
    rate: float  # relative change in syllables per second
    pitch_range_st: float
    energy_db: float

    @classmethod
    def between(cls, neutral: ProsodyFeatures, voiced: ProsodyFeatures) -> ProsodyChange:
        # measured with their text, over voiced speech: rate and pitch range are known
        assert neutral.syllables_per_s is not None and voiced.syllables_per_s is not None
        assert neutral.f0_range_semitones is not None and voiced.f0_range_semitones is not None
        return cls(
            voiced.syllables_per_s / neutral.syllables_per_s - 1,
            voiced.f0_range_semitones - neutral.f0_range_semitones,
            voiced.rms_db - neutral.rms_db,
        )

    @property
    def audible(self) -> bool:
        return (
            abs(self.rate) >= MIN_RATE_CHANGE
            or abs(self.pitch_range_st) >= MIN_RANGE_CHANGE_ST
            or abs(self.energy_db) >= MIN_ENERGY_CHANGE_DB
        )


def word_error_rate(reference: str | list[str], hypothesis: str | list[str]) -> float:
    """Of one sentence, or of a list of them together (errors over all their words)."""
    return float(jiwer.wer(reference, hypothesis, reference_transform=_NORMALISE, hypothesis_transform=_NORMALISE))


async def accuracy(stack: AgentStack, folder: Path) -> list[dict[str, Any]]:
    from tara.tools.filechat import converse

    results = []
    for question, facts in QUESTIONS:
        turn = await converse(stack, spoken(question, folder))
        correct = any(fact.lower() in turn.answer.lower() for fact in facts)
        results.append({"question": question, "heard": turn.transcript, "answer": turn.answer, "correct": correct})
    return results


async def round_trip(stack: AgentStack) -> list[dict[str, Any]]:
    results = []
    neutral = EmotionSettings.from_preset("neutral")
    for sentence in ROUND_TRIP:
        voiced = await synthesize(stack.tts, sentence, neutral)
        heard = (await stack.stt.transcribe(resample(voiced.samples, voiced.sample_rate, PIPELINE_RATE))).text
        results.append({"sentence": sentence, "heard": heard, "wer": round(word_error_rate(sentence, heard), 3)})
    return results


async def emotions(stack: AgentStack) -> dict[str, dict[str, Any]]:
    measured = {}
    for preset in PRESETS:
        voiced = await synthesize(stack.tts, EMOTION_TEXT, EmotionSettings.from_preset(preset))
        measured[preset] = analyze(voiced.samples, voiced.sample_rate, EMOTION_TEXT)
    results = {}
    for preset, features in measured.items():
        change = ProsodyChange.between(measured["neutral"], features)
        results[preset] = {
            "syllables_per_s": round(features.syllables_per_s, 2),
            "f0_range_semitones": round(features.f0_range_semitones, 2),
            "rms_db": round(features.rms_db, 2),
            "rate_change": round(change.rate, 3),
            "pitch_range_change_st": round(change.pitch_range_st, 2),
            "energy_change_db": round(change.energy_db, 2),
            "audible": preset == "neutral" or change.audible,
        }
    return results


async def evaluate(stack: AgentStack) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        answers = await accuracy(stack, Path(tmp))
    trips = await round_trip(stack)
    return {
        "accuracy": {"correct": sum(a["correct"] for a in answers), "asked": len(answers), "questions": answers},
        "round_trip": {"mean_wer": round(float(np.mean([t["wer"] for t in trips])), 3), "sentences": trips},
        "emotions": await emotions(stack),
    }


def markdown(report: dict[str, Any]) -> str:
    """The report as short markdown tables, for notes and READMEs."""
    accuracy_, trips = report["accuracy"], report["round_trip"]
    lines = [
        f"**Spoken-question accuracy**: {accuracy_['correct']}/{accuracy_['asked']}",
        "",
        "| question | heard | answer | right |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {q['question']} | {q['heard']} | {q['answer']} | {'yes' if q['correct'] else 'no'} |"
        for q in accuracy_["questions"]
    ]
    lines += [
        "",
        f"**Round trip TTS → STT**: mean WER {trips['mean_wer']:.1%}",
        "",
        "| sentence | heard | WER |",
        "|---|---|---|",
    ]
    lines += [f"| {t['sentence']} | {t['heard']} | {t['wer']:.0%} |" for t in trips["sentences"]]
    lines += [
        "",
        "**Emotion presets against neutral** (speaking rate, pitch range, energy)",
        "",
        "| preset | syllables/s | rate | pitch range (st) | Δ range | energy (dBFS) | Δ energy | audible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {e['syllables_per_s']:.2f} | {e['rate_change']:+.1%} | {e['f0_range_semitones']:.2f} | "
        f"{e['pitch_range_change_st']:+.2f} | {e['rms_db']:.1f} | {e['energy_change_db']:+.2f} | "
        f"{'yes' if e['audible'] else 'NO'} |"
        for name, e in report["emotions"].items()
    ]
    return "\n".join(lines)
