"""Every preset is heard: ``tara say`` with Piper differs from neutral in pace, pitch range or loudness.

Measured with ``tara.core.emotion.prosody`` on the written files. Piper draws random durations, so the text is
three sentences long and the margins sit well above the run-to-run spread (about 1 % in pace, 0.2 dB).
"""

import pytest

from tara.cli import main
from tara.core.audio import read_audio
from tara.core.emotion import PRESETS
from tara.core.emotion.prosody import ProsodyFeatures, analyze
from tara.tools.evaluate import EMOTION_TEXT as TEXT
from tara.tools.evaluate import ProsodyChange


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict[str, ProsodyFeatures]:
    folder = tmp_path_factory.mktemp("say")
    measured = {}
    for preset in PRESETS:
        path = folder / f"{preset}.wav"
        assert main(["say", TEXT, "-o", str(path), "--emotion", preset]) == 0
        measured[preset] = analyze(read_audio(path, 22050), 22050, TEXT)
    return measured


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "neutral"])
def test_preset_differs_audibly_from_neutral(spoken, preset):
    change = ProsodyChange.between(spoken["neutral"], spoken[preset])
    assert change.audible, f"{preset}: {change}"


def test_presets_move_the_way_their_names_say(spoken):
    rate = {name: f.syllables_per_s for name, f in spoken.items()}
    energy = {name: f.rms_db for name, f in spoken.items()}
    assert max(rate["calm"], rate["warm"], rate["serious"]) < rate["neutral"] < rate["cheerful"] < rate["excited"]
    assert min(energy["calm"], energy["serious"]) < energy["neutral"] < energy["cheerful"] < energy["excited"]
