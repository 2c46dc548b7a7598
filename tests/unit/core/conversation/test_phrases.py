from tara.core.conversation.phrases import HOLDING_PHRASE, Speech
from tara.core.emotion import EmotionSettings
from tests.fakes import ToneTTS


async def test_fixed_phrases_are_synthesised_once_per_voice_and_emotion_then_replayed():
    tts = ToneTTS()
    speech = Speech(tts)
    neutral, warm = EmotionSettings.from_preset("neutral"), EmotionSettings.from_preset("warm")
    await speech.record(neutral)
    made = list(tts.said)
    assert HOLDING_PHRASE in made
    for emotion in (neutral, neutral, warm, warm):
        chunks = [c async for c in speech.stream(HOLDING_PHRASE, emotion, "tone")]
        assert chunks and chunks[0].samples.size
    assert tts.said == [*made, HOLDING_PHRASE]  # recorded at start for the default voice; warm once more
    [c async for c in speech.stream("The museum opens at ten.", neutral)]
    [c async for c in speech.stream("The museum opens at ten.", neutral)]
    assert tts.said.count("The museum opens at ten.") == 2  # a reply is always synthesised
