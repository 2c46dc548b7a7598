"""The CPU default profile never loads the GPU profile's packages."""

import subprocess
import sys

from tara.core.config import PROJECT_ROOT

GPU_ONLY = ("torchtune", "torchao", "moshi", "vllm")

PROBE = f"""
import sys
import tara.cli, tara.core.conversation.session, tara.core.stack, tara.server.app, tara.server.rtc, tara.server.serve
from tara.core.config import load_config
from tara.core.stages.tts import TTS_BACKENDS
config = load_config()
TTS_BACKENDS.resolve(config.tts.backend)
print(",".join(sorted({{name.split(".")[0] for name in sys.modules}} & set({GPU_ONLY!r}))))
"""


def test_default_stack_imports_no_gpu_packages():
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
