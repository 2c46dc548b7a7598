import subprocess
import sys

from tara.core.audio import read_audio, rms_dbfs


def tara(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tara", *args], capture_output=True, text=True, timeout=timeout)


def test_say_writes_speech_and_emotion_changes_it(tmp_path):
    neutral, calm = tmp_path / "neutral.wav", tmp_path / "calm.wav"
    text = "Good morning, how can I help? The library opens at nine, and the ferry leaves at ten."
    assert tara("say", text, "-o", str(neutral)).returncode == 0
    assert tara("say", text, "-o", str(calm), "--emotion", "calm").returncode == 0
    a, b = read_audio(neutral, 22050), read_audio(calm, 22050)
    assert len(a) / 22050 > 1.0 and rms_dbfs(a) > -35
    assert len(b) > len(a) * 1.08  # calm speaks slower (Piper's random durations damp length_scale)


def test_index_reports_documents(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "notes.md").write_text("The garden gate code is 4471.")
    run = tara("index", "--kb", str(kb))
    assert run.returncode == 0, run.stderr
    assert "1 documents" in run.stderr and "notes.md" in run.stderr


def test_doctor_lists_models_and_passes():
    run = tara("doctor")
    assert run.returncode == 0, run.stdout + run.stderr
    for key in ("stt.model", "llm.model", "tts.voice", "rag.embed_model", "llama-cpp-python"):
        assert key in run.stderr


def test_doctor_names_the_key_for_a_missing_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TARA_LLM__MODEL", "bundled:no-such-model")
    run = tara("doctor")
    assert run.returncode == 1
    assert "llm.model" in run.stderr and "no-such-model" in run.stderr


def test_analyze_prints_features_and_label(tmp_path):
    import json

    from tests.conftest import speak

    speak("I'm really worried, I think I missed the last ferry, please help me.", tmp_path / "worried.wav")
    run = tara("analyze", str(tmp_path / "worried.wav"), "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert "worried" in result["transcript"].lower() and result["label"] == "anxious"
    assert result["features"]["syllables_per_s"] > 2 and result["features"]["f0_median_hz"] > 60
    run = tara("analyze", str(tmp_path / "worried.wav"), "--no-stt")
    assert run.returncode == 0 and "rms_db:" in run.stdout and "syllables_per_s: -" in run.stdout
    assert "label: neutral" in run.stdout  # no words and no usual to compare with


def test_analyze_a_bad_file_is_a_clear_error(tmp_path):
    (tmp_path / "noise.wav").write_bytes(b"not audio at all")
    run = tara("analyze", str(tmp_path / "noise.wav"), "--no-stt")
    assert run.returncode == 2 and "cannot decode audio file" in run.stderr
    assert "not found" in tara("analyze", str(tmp_path / "missing.wav")).stderr
