import numpy as np

from tara.core.config import VADConfig
from tara.core.stages.vad import WINDOW, Endpointer, VADKind, new_endpointer

ONSETS = (VADKind.ONSET, VADKind.ONSET_LOST)


def feed_in_frames(vad: Endpointer, audio: np.ndarray, frame: int = 320, onsets: bool = False):
    events = []
    for offset in range(0, len(audio), frame):
        events += [e for e in vad.feed(audio[offset : offset + frame]) if onsets or e.kind not in ONSETS]
    return events


def test_speech_start_pause_and_end_are_found(voice):
    speech = voice("The kettle holds one point seven litres of water.", lead_silence=1.0)
    audio = np.concatenate([speech, np.zeros(16000, dtype=np.int16)])
    vad = new_endpointer(VADConfig(min_silence_ms=400, pause_ms=120, start_pad_ms=100, end_pad_ms=100))
    events = feed_in_frames(vad, audio)
    kinds = [e.kind for e in events]
    assert kinds[0] is VADKind.START and kinds[-1] is VADKind.END
    assert kinds.count(VADKind.START) == 1 and kinds.count(VADKind.END) == 1
    start, end = events[0].sample, events[-1].sample
    voiced = np.flatnonzero(np.abs(speech) > 500)
    assert abs(start - voiced[0]) < 0.25 * 16000
    assert abs(end - voiced[-1]) < 0.3 * 16000
    pause = [e for e in events if e.kind is VADKind.PAUSE][-1]
    assert pause.sample == end  # the final pause covers exactly the audio the turn ends with


def test_silence_and_noise_blips_are_not_speech():
    rng = np.random.default_rng(0)
    vad = new_endpointer(VADConfig())
    quiet = (rng.standard_normal(3 * 16000) * 30).astype(np.int16)
    assert feed_in_frames(vad, quiet) == []
    click = np.zeros(16000, dtype=np.int16)
    click[8000:8080] = 20000
    assert feed_in_frames(vad, click) == []


def test_short_pause_inside_speech_resumes(voice):
    first = voice("Tell me about the kettle.", lead_silence=0.5)
    second = voice("And the library.", lead_silence=0.0)
    gap = np.zeros(int(0.3 * 16000), dtype=np.int16)
    audio = np.concatenate([first, gap, second, np.zeros(16000, dtype=np.int16)])
    events = feed_in_frames(new_endpointer(VADConfig(min_silence_ms=600, pause_ms=120)), audio)
    kinds = [e.kind for e in events]
    assert kinds.count(VADKind.START) == 1 and kinds.count(VADKind.END) == 1
    assert VADKind.RESUME in kinds


def test_any_chunk_size_is_accepted(voice):
    audio = np.concatenate([voice("Hello there, how are you?"), np.zeros(16000, dtype=np.int16)])
    for frame in (100, WINDOW, 1234):
        kinds = [e.kind for e in feed_in_frames(new_endpointer(VADConfig()), audio, frame)]
        assert kinds[0] is VADKind.START and kinds[-1] is VADKind.END


def test_the_barge_in_guard_ignores_quiet_echo_but_not_a_near_voice(voice):
    speech = voice("The ferry crosses the lake in forty minutes.")
    echo = (speech * 10 ** (-35 / 20)).astype(np.int16)  # about -55 dBFS: what leaks back from a speaker
    open_vad = new_endpointer(VADConfig())
    assert VADKind.START in [e.kind for e in feed_in_frames(open_vad, echo)]  # Silero alone takes it for speech

    guarded = new_endpointer(VADConfig())
    guarded.set_sensitivity(0.7, 200, -45.0)
    assert not feed_in_frames(guarded, echo)
    assert VADKind.START in [e.kind for e in feed_in_frames(guarded, speech)]
    guarded.set_sensitivity()
    assert (guarded.threshold, guarded.min_speech_ms, guarded.min_level_dbfs) == (0.5, 150, None)


def test_the_session_can_shorten_or_lengthen_the_end_of_turn_silence(voice):
    speech = voice("How long is the warranty?", lead_silence=0.5)
    audio = np.concatenate([speech, np.zeros(2 * 16000, dtype=np.int16)])

    def end_after_pause(end_silence_ms: int | None) -> int:
        vad = new_endpointer(VADConfig(min_silence_ms=400, pause_ms=120))
        events: list = []
        for offset in range(0, len(audio), 320):
            for event in vad.feed(audio[offset : offset + 320]):
                events.append(event)
                if event.kind is VADKind.PAUSE:
                    vad.set_end_silence(end_silence_ms)
                if event.kind is VADKind.END:
                    return offset
        raise AssertionError(f"no end of turn: {events}")

    default, quick, patient = end_after_pause(None), end_after_pause(200), end_after_pause(1000)
    assert abs((default - quick) / 16 - 200) <= 40  # ms: the end comes when the shorter silence has run
    assert abs((patient - default) / 16 - 600) <= 40


def test_a_speech_onset_is_reported_at_once_and_withdrawn_if_it_stops_short(voice):
    """The session ducks the agent's voice on the first window of speech, before an utterance is sure."""
    speech = voice("Wait.", lead_silence=0.0)
    voiced = np.flatnonzero(np.abs(speech) > 1000)
    blip = speech[voiced[0] : voiced[0] + 160 * 16]  # 160 ms of a word
    audio = np.concatenate([np.zeros(8000, dtype=np.int16), blip, np.zeros(16000, dtype=np.int16)])
    events = feed_in_frames(new_endpointer(VADConfig(min_speech_ms=400)), audio, onsets=True)
    assert [e.kind for e in events] == [VADKind.ONSET, VADKind.ONSET_LOST]
    assert abs(events[0].sample - 8000) <= 2 * WINDOW  # within a window or two of the sound
    kinds = [e.kind for e in feed_in_frames(new_endpointer(VADConfig()), np.concatenate([audio, speech]), onsets=True)]
    assert kinds.index(VADKind.ONSET) < kinds.index(VADKind.START)
