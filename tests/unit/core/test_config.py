from pathlib import Path

import pytest

from tara.core.config import DEFAULT_CONFIG, ConfigError, load_config
from tara.core.stages.llm import LLM_BACKENDS


def test_default_profile_loads():
    config = load_config(DEFAULT_CONFIG)
    assert config.llm.backend == "llama-cpp"
    assert config.stt.model == "bundled:whisper-base"
    assert Path(config.rag.kb_dir).is_absolute()


def test_environment_overrides_yaml(monkeypatch):
    monkeypatch.setenv("TARA_LLM__TEMPERATURE", "0.7")
    monkeypatch.setenv("TARA_VAD__MIN_SILENCE_MS", "600")
    config = load_config()
    assert config.llm.temperature == 0.7
    assert config.vad.min_silence_ms == 600
    assert config.llm.backend == "llama-cpp"  # the rest of the section survives


def test_bad_value_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vad:\n  threshold: 3\n")
    with pytest.raises(ConfigError, match=r"vad\.threshold"):
        load_config(bad)


def test_missing_model_path_names_the_key(tmp_path, monkeypatch):
    monkeypatch.delenv("TARA_LLM__MODEL", raising=False)  # (the suite's choice, which would win)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"llm:\n  model: {tmp_path / 'nope.gguf'}\n")
    with pytest.raises(ConfigError, match=r"llm\.model.*does not exist"):
        load_config(bad)


def test_unknown_section_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stt:\n  modle: x\n")
    with pytest.raises(ConfigError, match=r"stt\.modle"):
        load_config(bad)


def test_unknown_backend_names_the_key():
    with pytest.raises(ConfigError, match=r"llm\.backend.*llama-cpp"):
        LLM_BACKENDS.resolve("gpt-cloud")


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("vad: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_emotion_preset_is_checked_at_start(monkeypatch):
    monkeypatch.setenv("TARA_EMOTION__PRESET", "auto")
    assert load_config().emotion.preset == "auto"
    monkeypatch.setenv("TARA_EMOTION__PRESET", "grumpy")
    with pytest.raises(ConfigError, match=r"emotion\.preset.*grumpy.*auto"):
        load_config()
