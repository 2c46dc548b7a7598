"""Real headless Chromium (the Debian package, driven by Playwright) talking to Tara over WebRTC.

Each browser's fake microphone plays a WAV file made with espeak-ng. ICE stays on loopback: the
server side is patched (``loopback_ice``) and the page's offer is trimmed to its 127.0.0.1 candidates.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tara.core.audio import PIPELINE_RATE, resample, write_wav

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


def mic_file(path: Path, *parts: np.ndarray | float) -> Path:
    """A fake-microphone WAV: speech arrays (16 kHz) and pauses (seconds), played once."""
    pieces = [np.zeros(int(p * PIPELINE_RATE), dtype=np.int16) if isinstance(p, float | int) else p for p in parts]
    write_wav(path, resample(np.concatenate(pieces), PIPELINE_RATE, 48000), 48000)
    return path


async def loopback_offers_only(route) -> None:
    """Keep only 127.0.0.1 ICE candidates in the page's offer: tests never use other addresses."""
    body = json.loads(route.request.post_data)
    lines = body["sdp"].split("\r\n")
    body["sdp"] = "\r\n".join(l for l in lines if not l.startswith("a=candidate") or " 127.0.0.1 " in l)
    await route.continue_(post_data=json.dumps(body))


@pytest.fixture
async def open_page(tmp_path, live_server):
    """``open_page(mic_wav, url=None, init_script=None)`` → a Playwright page of the talk page in its own Chromium."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.async_api import async_playwright

    contexts = []
    async with async_playwright() as playwright:

        async def launch(mic_wav: Path, url: str | None = None, init_script: str | None = None):
            if url is None:
                url, _ = await live_server()
            context = await playwright.chromium.launch_persistent_context(
                str(tmp_path / f"profile{len(contexts)}"),
                executable_path=CHROMIUM,
                headless=True,
                args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic_wav}%noloop"],
                bypass_csp=True,  # (the tests' wait_for_function evaluates strings; the page's CSP forbids eval)
            )
            contexts.append(context)
            if init_script:  # runs in the page before its own scripts (e.g. a microphone of its own)
                await context.add_init_script(init_script)
            page = context.pages[0] if context.pages else await context.new_page()
            await page.route("**/offer", loopback_offers_only)
            await page.goto(f"{url}/?raw=1&record=1")
            return page

        yield launch
        for context in contexts:
            await context.close()


async def received_audio(page) -> np.ndarray:
    """Everything the page received from Tara, as 16 kHz int16."""
    return np.frombuffer(base64.b64decode(await page.evaluate("taraTest.recording()")), dtype=np.int16)


async def utterances(page, role: str) -> list[str]:
    return await page.eval_on_selector_all(f"#transcript [data-role={role}]", "els => els.map(e => e.textContent)")


async def wait_for_barge_in(page, answered: str) -> None:
    """Until a reply is interrupted and then the JS predicate ``answered`` holds (the new question's
    reply); on a timeout, an AssertionError that names what was heard and said."""
    from playwright.async_api import TimeoutError as PageTimeout

    try:
        await page.wait_for_selector("#transcript [data-role=agent].interrupted", timeout=120000)
        await page.wait_for_function(answered, timeout=120000, polling=200)
    except PageTimeout:
        heard, said = await utterances(page, "user"), await utterances(page, "agent")
        raise AssertionError(f"heard {heard}, said {said}") from None


async def wait_for_agent_text(page, pattern: str, timeout_s: float = 120, selector: str = "[data-role=agent]") -> None:
    """Until an agent utterance (matching ``selector`` inside #transcript) matches the regex ``pattern``."""
    await page.wait_for_function(
        "([p, s]) => [...document.querySelectorAll('#transcript ' + s)].some(e => new RegExp(p, 'i').test(e.textContent))",
        arg=[pattern, selector],
        timeout=timeout_s * 1000,
        polling=200,
    )


@pytest.fixture
async def open_admin(tmp_path):
    """``open_admin(url)`` → a Playwright page of ``url`` (the admin page) in its own headless Chromium."""
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.async_api import async_playwright

    contexts = []
    async with async_playwright() as playwright:

        async def launch(url: str):
            context = await playwright.chromium.launch_persistent_context(
                str(tmp_path / f"admin-profile{len(contexts)}"),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1200, "height": 1400},
                bypass_csp=True,
            )  # (as above: the tests evaluate strings)
            contexts.append(context)
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(url)
            return page

        yield launch
        for context in contexts:
            await context.close()
