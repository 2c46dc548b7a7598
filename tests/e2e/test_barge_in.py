"""A cough and an "uh-huh" over Tara's voice, from a real browser: Tara falls silent for a moment each
time and goes on where it stopped; neither is a turn, and the reply is not marked interrupted."""

import numpy as np
from playwright.async_api import TimeoutError as PageTimeout

from tara.core.audio import PIPELINE_RATE
from tests.e2e.conftest import mic_file, utterances
from tests.e2e.test_talk_page import connect

QUESTION = "Please describe the ferry and all its rules in great detail."


def cough(seed: int = 0) -> np.ndarray:
    """A synthetic cough: two bursts of brownish noise, 350 ms, about -26 dBFS (Silero never scores it
    0.7; whisper-base hears nothing in it)."""
    rng = np.random.default_rng(seed)
    noise = np.cumsum(rng.normal(0, 1, PIPELINE_RATE))
    noise -= np.convolve(noise, np.ones(40) / 40, "same")  # no rumble or DC
    t = np.arange(PIPELINE_RATE) / PIPELINE_RATE
    envelope = np.exp(-(((t - 0.05) / 0.04) ** 2)) + 0.6 * np.exp(-(((t - 0.22) / 0.05) ** 2))
    burst = (noise * envelope)[: int(0.35 * PIPELINE_RATE)]
    return (burst / np.abs(burst).max() * 12000).astype(np.int16)


async def test_a_cough_and_uh_huh_over_tara_pause_it_and_it_goes_on(open_page, live_server, voice, tmp_path):
    url, peers = await live_server()
    # the typed question is answered a second or two after connecting: these land on the answer's voice
    page = await open_page(
        mic_file(tmp_path / "mic.wav", 7.0, cough(), 2.5, voice("Uh huh.", lead_silence=0.0), 40.0), url
    )
    await connect(page)
    peer = next(iter(peers.peers.values()))
    moves: list[tuple[str, str]] = []  # (pause | resume, the agent's state then)
    pause, resume = peer.speaker.pause, peer.speaker.resume
    peer.speaker.pause = lambda: (moves.append(("pause", peer.session.state.agent.value)), pause())[-1]
    peer.speaker.resume = lambda: (moves.append(("resume", peer.session.state.agent.value)), resume())[-1]

    await page.fill("#text-input", QUESTION)
    await page.press("#text-input", "Enter")
    try:
        await page.wait_for_function("document.body.dataset.state === 'speaking'", timeout=60000)
        await page.wait_for_function("document.body.dataset.state === 'listening'", timeout=120000)
    except PageTimeout:
        raise AssertionError(f"said {await utterances(page, 'agent')}, moves {moves}") from None
    said, heard = await utterances(page, "agent"), await utterances(page, "user")
    assert await page.locator("#transcript [data-role=agent].interrupted").count() == 0, (heard, moves, said)
    assert len(heard) == 1 and heard[0].startswith(QUESTION), (heard, moves)  # neither sound was a turn
    assert len([m for m in moves if m == ("pause", "speaking")]) >= 2, moves  # both were heard over the voice
    assert moves[-1][0] == "resume", moves
