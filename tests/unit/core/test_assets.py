import json

import pytest

from tara.core import assets


@pytest.fixture
def quantize_calls(monkeypatch):
    """A stand-in for llama.cpp's quantizer: writes the source's bytes plus the type, records each call."""
    calls = []

    def fake(source, target, ftype):
        calls.append(ftype)
        target.write_bytes(source.read_bytes() + f"|{ftype}".encode())

    monkeypatch.setattr(assets, "_quantize", fake)
    return calls


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"weights")
    return path


def test_makes_the_file_once_and_reuses_it(tmp_path, source, quantize_calls):
    made = assets.requantized(source, "m", "q4_0", tmp_path)
    assert made == tmp_path / "models" / "m" / "m-q4_0.gguf"
    assert made.read_bytes() == b"weights|2"
    stamp = json.loads(made.with_suffix(".json").read_text())
    assert stamp["quant"] == "q4_0" and stamp["source"]["sha256"] == assets.sha256_of(source)
    assert stamp["output"]["sha256"] == assets.sha256_of(made)
    assert assets.requantized(source, "m", "q4_0", tmp_path) == made
    assert quantize_calls == [2]
    assert not list(made.parent.glob(".*partial"))


def test_each_quant_type_is_its_own_file(tmp_path, source, quantize_calls):
    assert assets.requantized(source, "m", "iq4_nl", tmp_path).name == "m-iq4_nl.gguf"
    assert assets.requantized(source, "m", "q4_0", tmp_path).name == "m-q4_0.gguf"
    assert quantize_calls == [25, 2]


@pytest.mark.parametrize(
    "damage",
    [
        "missing file",
        "corrupt file",
        "stamp of another source",
        "stamp of another type",
        "missing stamp",
        "garbled stamp",
        "changed source",
    ],
)
def test_remakes_the_file_when_it_or_its_stamp_is_wrong(tmp_path, source, quantize_calls, damage):
    made = assets.requantized(source, "m", "q4_0", tmp_path)
    stamp = made.with_suffix(".json")
    if damage == "missing file":
        made.unlink()
    elif damage == "corrupt file":
        made.write_bytes(b"truncat")
    elif damage == "stamp of another source":
        recorded = json.loads(stamp.read_text())
        recorded["source"] = {"sha256": "0" * 64, "size": 99, "mtime_ns": 1}
        stamp.write_text(json.dumps(recorded))
    elif damage == "stamp of another type":
        recorded = json.loads(stamp.read_text())
        stamp.write_text(json.dumps({**recorded, "quant": "iq4_nl"}))
    elif damage == "missing stamp":
        stamp.unlink()
    elif damage == "garbled stamp":
        stamp.write_text("{not json")
    else:
        source.write_bytes(b"other weights")
    assert assets.requantized(source, "m", "q4_0", tmp_path) == made
    assert len(quantize_calls) == 2
    assert made.read_bytes() == source.read_bytes() + b"|2"
    assert json.loads(stamp.read_text())["output"]["sha256"] == assets.sha256_of(made)


def test_a_touched_but_unchanged_file_is_hashed_again_and_kept(tmp_path, source, quantize_calls):
    import os

    made = assets.requantized(source, "m", "q4_0", tmp_path)
    os.utime(made, ns=(1, 1))
    os.utime(source, ns=(1, 1))
    assert assets.requantized(source, "m", "q4_0", tmp_path) == made
    assert quantize_calls == [2]


def test_a_failed_quantization_leaves_nothing_behind(tmp_path, source, monkeypatch):
    def broken(source, target, ftype):
        target.write_bytes(b"half")
        raise RuntimeError("llama.cpp could not re-quantize")

    monkeypatch.setattr(assets, "_quantize", broken)
    with pytest.raises(RuntimeError):
        assets.requantized(source, "m", "q4_0", tmp_path)
    assert list((tmp_path / "models" / "m").iterdir()) == []
