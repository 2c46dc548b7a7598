"""Spoken questions about documents Tara has never seen, through the whole pipeline from a file."""

import json
import re
import subprocess
import sys

import pytest

from tara.core.audio import read_audio
from tara.tools.filechat import NoSpeechError, converse
from tests.conftest import TEST_KB, speak, without_network

DONT_KNOW = re.compile(r"\b(don't|do not|not sure|no information|cannot|can't|unable|sorry|not (?:have|know))\b", re.I)


async def test_tara_chat_json_answers_from_an_unseen_kb_and_speaks_the_answer(tmp_path, stack):
    question = tmp_path / "question.wav"
    reply = tmp_path / "reply.wav"
    speak("What is the name of the main telescope at the observatory?", question)
    run = subprocess.run(  # with no network at all: the default profile must not need one
        without_network(
            [
                sys.executable,
                "-m",
                "tara",
                "chat",
                "--in",
                str(question),
                "--out",
                str(reply),
                "--kb",
                str(TEST_KB),
                "--json",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert "telescope" in result["transcript"].lower()
    assert "big maple" in result["answer"].lower()
    assert result["grounded"] and result["sources"][0]["source"] == "orchid-valley-observatory.md"
    timings = result["timings_ms"]
    assert {"transcript", "retrieval", "first_token", "first_sentence", "first_audio"} <= set(timings)
    # the spoken reply, transcribed back, carries the answer
    heard = (await stack.stt.transcribe(read_audio(reply))).text.lower()
    assert "maple" in heard


@pytest.mark.parametrize(
    ("question", "facts"),
    [
        ("On which hill is the observatory?", ["heron"]),
        ("How long does the ferry crossing take?", ["forty", "40"]),
        ("What is the rooftop cafe at the observatory called?", ["stardust"]),
    ],
)
async def test_spoken_document_questions_get_the_fact(stack, voice, question, facts):
    turn = await converse(stack, voice(question))
    assert turn.grounded, turn.transcript
    assert any(fact in turn.answer.lower() for fact in facts), f"{turn.transcript!r} -> {turn.answer!r}"
    assert turn.reply is not None and turn.reply.duration > 0.5


async def test_a_question_the_documents_cannot_answer_gets_dont_know(stack, voice):
    turn = await converse(stack, voice("What is the phone number of the city hospital?"))
    assert DONT_KNOW.search(turn.answer), turn.answer


async def test_small_talk_is_friendly(stack, voice):
    turn = await converse(stack, voice("Hello, how are you today?"))
    assert turn.answer and not DONT_KNOW.search(turn.answer)


async def test_silence_is_a_clear_error(stack):
    import numpy as np

    with pytest.raises(NoSpeechError):
        await converse(stack, np.zeros(32000, dtype=np.int16))


def test_cli_errors_are_clear(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "tara", "chat", "--in", str(tmp_path / "absent.wav")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and "audio file not found" in run.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm:\n  temperature: hot\n")
    run = subprocess.run(
        [sys.executable, "-m", "tara", "--config", str(bad), "doctor"], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2 and "llm.temperature" in run.stderr
