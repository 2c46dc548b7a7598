"""Talking to Tara from a real browser tab: question → spoken answer, barge-in, two tabs at once."""

import asyncio

from tara.core.audio import rms_dbfs
from tests.e2e.conftest import mic_file, received_audio, utterances, wait_for_agent_text, wait_for_barge_in

TELESCOPE = "What is the name of the observatory's main telescope?"


async def connect(page) -> None:
    await page.click("#connect")
    await page.wait_for_function("document.body.dataset.state === 'listening'", timeout=30000)


async def test_a_spoken_question_gets_a_spoken_answer_in_the_browser(open_page, voice, stack, tmp_path):
    page = await open_page(mic_file(tmp_path / "mic.wav", 1.5, voice(TELESCOPE), 20.0))
    await connect(page)
    await wait_for_agent_text(page, "maple")
    await page.wait_for_function("document.body.dataset.state === 'listening'", timeout=60000)
    assert "observatory" in (await utterances(page, "user"))[0].lower()
    assert await page.locator("#transcript [data-role=user].partial").count() == 0  # finals are solid
    assert (await page.text_content("#latency-last")).endswith("ms")

    await asyncio.sleep(0.5)
    audio = await received_audio(page)
    assert rms_dbfs(audio) > -50  # the agent's voice arrived, not silence
    heard = await stack.stt.transcribe(audio[-16000 * 20 :])
    assert "maple" in heard.text.lower()

    # the words appeared one by one as they were heard, not all at once
    agent = "#transcript [data-role=agent]"
    shown = await page.eval_on_selector_all(f"{agent} .word", "els => els.map(e => Number(e.dataset.shownAt))")
    assert len(shown) >= 4 and shown == sorted(shown)
    assert shown[-1] - shown[0] > 150 * (len(shown) - 1)  # about as fast as Piper speaks them
    assert await page.locator(f"{agent} .word[hidden]").count() == 0
    # and the answer names its source, the passage on hover
    source = page.locator(f"{agent} .sources .source").first
    assert await source.text_content() == "orchid-valley-observatory.md"
    assert "maple" in (await source.get_attribute("title") or "").lower()
    assert (await page.text_content(f"{agent} .sources")).startswith("from ")


async def test_barge_in_stops_the_agent_and_the_new_question_is_answered(open_page, live_server, voice, tmp_path):
    # a question with a long answer, in words espeak-ng says clearly ("Tell me everything" came out as
    # "Tell me I'm racing", whose answer, a short don't-know, was over before the barge-in)
    mic = mic_file(
        tmp_path / "mic.wav",
        1.5,
        voice("Please describe the ferry and its rules in great detail."),
        5.0,
        voice("Sorry, how long does the crossing take?"),
        25.0,
    )
    url, peers = await live_server()
    page = await open_page(mic, url)
    await connect(page)
    # (a pause may split the first question into two turns: whichever reply was talked over counts)
    await wait_for_barge_in(  # the reply to the second question, after the interrupted one
        page,
        "() => { const a = [...document.querySelectorAll('#transcript [data-role=agent]')].at(-1);"
        " return a && !a.classList.contains('interrupted') && /forty|40/i.test(a.textContent); }",
    )
    assert "crossing" in (await utterances(page, "user"))[-1].lower()
    # the interrupted reply shows the words heard before the cut (none, if it had not begun), as the history
    shown = await heard_before_the_cut(page)
    told = [m.content for m in next(iter(peers.peers.values())).session.history if m.content.endswith(" …")]
    assert told[:1] == ([f"{shown} …"] if shown else [])


async def heard_before_the_cut(page) -> str:
    """The words an interrupted reply shows; none of its words may still be waiting to be shown."""
    cut = page.locator("#transcript [data-role=agent].interrupted").first
    assert await cut.locator(".text .cut").count() == 1 and await cut.locator(".word[hidden]").count() == 0
    return " ".join(w.strip() for w in await cut.locator(".word").all_text_contents())


async def test_an_interrupted_reply_shows_and_remembers_only_the_words_heard(open_page, live_server, tmp_path):
    url, peers = await live_server()
    page = await open_page(mic_file(tmp_path / "silence.wav", 40.0), url)
    await connect(page)
    await page.fill("#text-input", "Please describe the ferry and its rules in great detail.")
    await page.press("#text-input", "Enter")
    words = "#transcript [data-role=agent] .word"
    await page.wait_for_function(f"document.querySelectorAll('{words}:not([hidden])').length >= 4", timeout=120000)
    await page.click("#interrupt")
    await page.wait_for_selector("#transcript [data-role=agent].interrupted", timeout=10000)
    shown = await heard_before_the_cut(page)
    assert len(shown.split()) >= 3
    history = next(iter(peers.peers.values())).session.history
    assert [m.content for m in history] == ["Please describe the ferry and its rules in great detail.", f"{shown} …"]


async def test_two_browsers_hold_separate_conversations(open_page, live_server, voice, tmp_path):
    url, peers = await live_server()
    first = await open_page(mic_file(tmp_path / "a.wav", 1.5, voice(TELESCOPE), 30.0), url)
    second = await open_page(
        mic_file(tmp_path / "b.wav", 1.5, voice("How much is a return ticket for the ferry?"), 30.0), url
    )
    await asyncio.gather(connect(first), connect(second))
    assert len(peers.peers) == 2
    await asyncio.gather(wait_for_agent_text(first, "maple"), wait_for_agent_text(second, "nine|\\$9|9 dollars"))
    assert "ferry" not in " ".join(await utterances(first, "user")).lower()
    assert "observatory" not in " ".join(await utterances(second, "user")).lower()


async def test_page_controls_typed_question_emotion_and_mute(open_page, tmp_path):
    page = await open_page(mic_file(tmp_path / "silence.wav", 30.0))
    await connect(page)
    assert await page.eval_on_selector_all("#voice option", "els => els.map(e => e.value)") == ["joe"]
    await page.click("#presets button[data-preset=calm]")
    await page.wait_for_selector("#presets button.active[data-preset=calm]")
    assert await page.input_value("#energy") == "0.2"
    await page.click("#mute")
    await page.wait_for_selector("#mute[aria-pressed=true]")
    await page.fill("#text-input", "How long does the ferry crossing take?")
    await page.press("#text-input", "Enter")
    await wait_for_agent_text(page, "forty|40")
    await page.wait_for_function("document.body.dataset.state === 'listening'", timeout=60000)
    assert (await page.text_content("#latency-last")).endswith("ms")
    mood = await page.text_content("#transcript [data-role=user] .mood[data-label=neutral][data-reply=calm]")
    assert mood.startswith("your words read: neutral") and "(auto)" not in mood  # typed, and calm by hand


async def test_auto_emotion_shows_how_the_user_sounded_and_how_tara_replies(open_page, voice, tmp_path):
    worried = voice(
        "I'm really worried, I think I missed the last ferry. Please help me!", speed=220, pitch=80, amplitude=180
    )
    page = await open_page(mic_file(tmp_path / "mic.wav", 4.0, worried, 25.0))
    await connect(page)
    await page.click("#presets button[data-preset=auto]")  # before the question: the mic file starts silent
    await page.wait_for_selector("#presets button.active[data-preset=auto]")
    mood = "#transcript [data-role=user][data-turn='1'] .mood"
    await page.wait_for_selector(f"{mood}[data-label=anxious][data-reply=calm]", timeout=120000)
    shown = await page.text_content(mood)
    assert "you sounded: anxious" in shown and "replying: calm (auto)" in shown
    assert "worried" in (await utterances(page, "user"))[0].lower()
    await wait_for_agent_text(page, "\\w", selector="[data-role=agent][data-turn='1'] .text")  # Tara answers
    assert await page.locator("#presets button.active[data-preset=auto]").count() == 1  # auto stays chosen
