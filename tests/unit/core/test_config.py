from pathlib import Path

import pytest
import yaml

from tara.core.config import DEFAULT_CONFIG, PROJECT_ROOT, ConfigError, backends_of, load_config
from tara.core.stages.llm import LLM_BACKENDS
from tara.core.stages.llm.settings import LlamaCppSettings, OpenAISettings, VLLMSettings
from tara.core.stages.tts import TTS_BACKENDS
from tara.core.stages.tts.settings import CSMSettings, PiperSettings

GPU_CONFIG = PROJECT_ROOT / "config" / "gpu.yaml"


def test_default_profile_loads():
    config = load_config(DEFAULT_CONFIG)
    assert config.llm.backend == "llama-cpp" and isinstance(config.llm, LlamaCppSettings)
    assert isinstance(config.tts, PiperSettings)
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


def test_sections_left_out_are_the_cpu_backends(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("server:\n  port: 9000\n")
    config = load_config(empty)
    assert isinstance(config.llm, LlamaCppSettings) and isinstance(config.tts, PiperSettings)
    assert (config.vad.backend, config.stt.backend, config.rag.backend) == (
        "silero",
        "faster-whisper",
        "llama-index-faiss",
    )


def test_a_section_without_backend_is_the_cpu_backend(tmp_path):
    partial = tmp_path / "partial.yaml"
    partial.write_text("llm:\n  threads: 1\n")
    assert isinstance(load_config(partial).llm, LlamaCppSettings)


def test_environment_overrides_a_backend_field_and_keeps_the_yaml(monkeypatch):
    """pydantic-settings merges ``TARA_LLM__*`` into the YAML's section before the backend is picked."""
    monkeypatch.setenv("TARA_LLM__CONTEXTS", "2")
    monkeypatch.setenv("TARA_LLM__BUSY_MODEL", "")
    config = load_config(DEFAULT_CONFIG)
    assert isinstance(config.llm, LlamaCppSettings)
    assert (config.llm.contexts, config.llm.busy_model, config.llm.quantize) == (2, "", "q4_0")


def test_environment_can_switch_the_backend(monkeypatch, tmp_path):
    monkeypatch.delenv("TARA_LLM__MODEL", raising=False)
    monkeypatch.delenv("TARA_LLM__BUSY_MODEL", raising=False)
    monkeypatch.setenv("TARA_LLM__BACKEND", "openai")
    monkeypatch.setenv("TARA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    bare = tmp_path / "bare.yaml"
    bare.write_text("llm:\n  temperature: 0.3\n")
    config = load_config(bare)
    assert isinstance(config.llm, OpenAISettings)
    assert (config.llm.base_url, config.llm.temperature) == ("http://127.0.0.1:9/v1", 0.3)


def test_unknown_backend_in_the_config_names_the_key_and_the_choices(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm:\n  backend: gpt-cloud\n")
    with pytest.raises(
        ConfigError, match=r"llm\.backend: unknown backend 'gpt-cloud'; choose one of llama-cpp, openai, vllm"
    ):
        load_config(bad)
    bad.write_text("vad:\n  backend: webrtc\n")
    with pytest.raises(ConfigError, match=r"vad\.backend: .*'silero'"):
        load_config(bad)


def test_another_backends_key_says_whose_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("TARA_LLM__MODEL", raising=False)
    monkeypatch.delenv("TARA_LLM__BUSY_MODEL", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "llm:\n  backend: openai\n  busy_model: bundled:qwen2.5-coder-0.5b\ntts:\n  backend: csm\n  voice: bundled:joe\n"
    )
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    assert "llm.busy_model: not a setting of llm.backend openai (a setting of llama-cpp)" in str(error.value)
    assert "tts.voice: not a setting of tts.backend csm (a setting of piper)" in str(error.value)


def test_errors_inside_a_backend_name_the_yaml_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tts:\n  backend: csm\n  model: tiny\n  frames_per_chunk: 0\n")
    with pytest.raises(ConfigError, match=r"\n  tts\.frames_per_chunk: "):
        load_config(bad)


def test_a_section_that_is_not_a_mapping_says_what_it_should_be(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tts: piper\n")
    with pytest.raises(ConfigError, match=r"tts: should be a mapping of settings, with backend: one of piper, csm"):
        load_config(bad)


def test_every_backend_has_settings_and_a_registry_entry():
    assert sorted(backends_of("llm")) == LLM_BACKENDS.names
    assert sorted(backends_of("tts")) == TTS_BACKENDS.names
    assert backends_of("stt") == {}


def test_the_gpu_profile_parses(tmp_path, monkeypatch):
    """gpu.yaml, its /models paths made to exist under tmp_path: every key is one of its backend's."""
    monkeypatch.delenv("TARA_LLM__MODEL", raising=False)
    monkeypatch.delenv("TARA_LLM__BUSY_MODEL", raising=False)
    text = GPU_CONFIG.read_text().replace("/models/", f"{tmp_path}/models/")
    for line in text.splitlines():
        value = line.split("#")[0].split(":", 1)[-1].strip()
        if value.startswith(str(tmp_path)):
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).touch()
    profile = tmp_path / "gpu.yaml"
    profile.write_text(text)
    config = load_config(profile)
    assert isinstance(config.llm, VLLMSettings) and config.llm.gpu_memory_utilization == 0.5
    assert isinstance(config.tts, CSMSettings)
    assert (config.tts.model, config.tts.default_voice, config.tts.device) == ("1b", "tara", "cuda")
    assert config.tts.voices["tara"].prompt is not None
    assert config.stt.device == "cuda"


def test_the_gpu_profile_without_its_files_names_each_missing_key(monkeypatch):
    monkeypatch.delenv("TARA_LLM__MODEL", raising=False)
    monkeypatch.delenv("TARA_LLM__BUSY_MODEL", raising=False)
    if Path(yaml.safe_load(GPU_CONFIG.read_text())["tts"]["weights"]).exists():
        pytest.skip("this machine has the GPU profile's files")
    with pytest.raises(ConfigError) as error:
        load_config(GPU_CONFIG)
    keys = [line.split(":")[0].strip() for line in str(error.value).splitlines()[1:]]
    assert {"stt.model", "llm.model", "tts.weights", "tts.tokenizer", "tts.mimi"} <= set(keys)
    assert all("does not exist" in line for line in str(error.value).splitlines()[1:])


def test_denoise_is_off_by_default_and_can_be_turned_on(monkeypatch, tmp_path):
    assert load_config(DEFAULT_CONFIG).audio.denoise == "off"
    monkeypatch.setenv("TARA_AUDIO__DENOISE", "rnnoise")
    assert load_config().audio.denoise == "rnnoise"
    monkeypatch.delenv("TARA_AUDIO__DENOISE")
    bad = tmp_path / "bad.yaml"
    bad.write_text("audio:\n  denoise: speex\n")
    with pytest.raises(ConfigError, match=r"audio\.denoise"):
        load_config(bad)


@pytest.mark.parametrize("key", ["denoise", "echo_cancel"])
def test_a_bare_yaml_off_in_audio_is_off(tmp_path, key):
    path = tmp_path / "tara.yaml"
    path.write_text(f"audio:\n  {key}: off\n")  # YAML's false
    assert getattr(load_config(path).audio, key) == "off"
