"""``device: auto|cpu|cuda`` is honoured the same way by every stage."""

import pytest

from tara.core.concurrency import Compute
from tara.core.config import ConfigError, load_config
from tara.core.devices import CTRANSLATE2, Runtime, cuda_available, resolve_device
from tara.core.stages.llm import LLM_BACKENDS


def test_auto_follows_the_hardware_and_cpu_is_kept():
    assert resolve_device("auto", "x.device") == ("cuda" if cuda_available() else "cpu")
    assert resolve_device("cpu", "x.device") == "cpu"


@pytest.mark.skipif(cuda_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="rag.device"):
        resolve_device("cuda", "rag.device")
    config = load_config(**{"llm.device": "cuda"})
    with pytest.raises(ConfigError, match="llm.device"):
        LLM_BACKENDS.create(config.llm.backend, config.llm, config.data_path, compute=Compute())


def test_each_runtime_answers_for_itself():
    """Whisper asks CTranslate2, not torch: either can be a CPU-only build where the other sees a GPU."""
    blind, sighted = Runtime("blind", lambda: False), Runtime("sighted", lambda: True)
    assert resolve_device("auto", "stt.device", blind) == "cpu"
    assert resolve_device("auto", "stt.device", sighted) == resolve_device("cuda", "stt.device", sighted) == "cuda"
    with pytest.raises(ConfigError, match=r"stt\.device: cuda requested but blind sees no CUDA device"):
        resolve_device("cuda", "stt.device", blind)


def test_ctranslate2_counts_its_own_devices():
    import ctranslate2

    expected = "cuda" if ctranslate2.get_cuda_device_count() else "cpu"
    assert resolve_device("auto", "stt.device", CTRANSLATE2) == expected
