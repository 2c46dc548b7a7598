import numpy as np
import pytest

from tara.core.audio import RollingAudio, StreamResampler, read_audio, resample, rms_dbfs, write_wav


def tone(rate: int, seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 10000).astype(np.int16)


def test_resample_keeps_duration_and_pitch():
    out = resample(tone(22050), 22050, 48000)
    assert abs(len(out) - 48000) < 200
    spectrum = np.abs(np.fft.rfft(out[:48000].astype(np.float32)))
    assert abs(np.argmax(spectrum) * 48000 / len(out[:48000]) - 440) < 5


def test_streaming_resampler_matches_one_shot_length():
    source = tone(48000, 0.5)
    resampler = StreamResampler(48000, 16000)
    pieces = [resampler.push(source[i : i + 960]) for i in range(0, len(source), 960)] + [resampler.flush()]
    assert abs(sum(len(p) for p in pieces) - 8000) < 50


def test_stereo_in_mono_out():
    stereo = np.repeat(tone(48000, 0.1), 2)  # interleaved L R
    out = StreamResampler(48000, 16000, in_layout="stereo").push(stereo)
    assert 1500 < len(out) <= 1600


def test_wav_round_trip_and_loudness(tmp_path):
    path = tmp_path / "tone.wav"
    write_wav(path, tone(16000), 16000)
    back = read_audio(path)
    assert len(back) == 16000 and rms_dbfs(back) > -15
    assert rms_dbfs(np.zeros(100, dtype=np.int16)) < -100


def test_bad_audio_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_audio(tmp_path / "absent.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(ValueError, match="cannot decode"):
        read_audio(junk)


def test_rolling_audio_addresses_samples_by_stream_position():
    audio = RollingAudio()
    for value in range(10):
        audio.append(np.full(100, value, dtype=np.int16))
    assert audio.end == 1000
    assert list(audio.clip(250, 260)) == [2] * 10
    audio.trim(300)
    assert audio.start == 700
    assert list(audio.clip(650, 710)) == [7] * 10  # clamped to what is kept


def test_leading_silence_is_cut_to_a_few_ms():
    from tara.core.audio import AudioChunk, without_leading_silence

    rate = 16000
    speech = (8000 * np.sin(np.arange(rate // 2) * 0.1)).astype(np.int16)
    chunk = AudioChunk(np.concatenate([np.zeros(rate // 10, dtype=np.int16), speech]), rate)
    trimmed = without_leading_silence(chunk)
    assert len(trimmed.samples) == len(speech) + rate // 100  # 10 ms of lead kept
    silent = AudioChunk(np.zeros(rate, dtype=np.int16), rate)
    assert without_leading_silence(silent) is silent
