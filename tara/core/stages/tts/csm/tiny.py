"""A tiny, randomly initialised CSM + Mimi + byte-level tokenizer: the real code paths on a CPU in seconds.

It says nothing (random weights make noise), but it has CSM-1B's shape where the code cares: 32
codebooks of 2048 codes, 2048 positions, a Llama-3 tiktoken tokenizer with Llama-3's special tokens.
Used by tests and ``config/csm-tiny.yaml``; made on first use, so a fresh machine needs no files.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import torch
from moshi.models.loaders import _mimi_config, get_mimi
from safetensors.torch import save_file

from tara.core.stages.tts.csm.files import CSMFiles
from tara.core.stages.tts.csm.model import CSM, FLAVOURS

_VERSION = 1  # bump when the tiny shapes change, so old files are rebuilt


def tiny_mimi_config() -> dict:
    """Mimi's own layout with every width cut down (~215k parameters instead of ~80M)."""
    config = copy.deepcopy(_mimi_config)
    config["seanet"] |= {"dimension": 64, "n_filters": 4}
    config["transformer"] |= {
        "d_model": 64,
        "num_heads": 4,
        "num_layers": 1,
        "dim_feedforward": 128,
        "input_dimension": 64,
        "output_dimensions": [64],
    }
    config["quantizer"] |= {"dimension": 16, "input_dimension": 64, "output_dimension": 64}
    return config


def build_tiny(out_dir: Path, seed: int = 0) -> CSMFiles:
    """Write tiny weights, Mimi and tokenizer into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = CSMFiles(out_dir / "model.safetensors", out_dir / "tokenizer.model", out_dir / "mimi.safetensors")
    torch.manual_seed(seed)
    save_file(CSM(FLAVOURS["tiny"]).state_dict(), str(files.weights))
    mimi = get_mimi(None, tiny_mimi_config(), num_codebooks=FLAVOURS["tiny"].codebooks)
    for name, buffer in mimi.named_buffers():
        # Fresh codebooks are all zeros (they are learnt by k-means), so every code would decode alike.
        if name.endswith("embedding_sum"):
            buffer.normal_()
        elif name.endswith("_initialized"):
            buffer.fill_(1.0)
    save_file({k: v.contiguous() for k, v in mimi.state_dict().items()}, str(files.mimi))
    # tiktoken's format: one base64 token and its rank per line; bytes only, so text encodes byte by byte.
    files.tokenizer.write_text("".join(f"{base64.b64encode(bytes([i])).decode()} {i}\n" for i in range(256)))
    return files


def ensure_tiny(data_dir: Path) -> CSMFiles:
    """The tiny files in ``data_dir/models/csm-tiny``, built once."""
    out_dir = data_dir / "models" / "csm-tiny"
    stamp = out_dir / ".built.json"
    if stamp.exists() and json.loads(stamp.read_text()) == {"version": _VERSION}:
        return CSMFiles(out_dir / "model.safetensors", out_dir / "tokenizer.model", out_dir / "mimi.safetensors")
    files = build_tiny(out_dir)
    stamp.write_text(json.dumps({"version": _VERSION}))
    return files
