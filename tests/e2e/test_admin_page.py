"""The admin page in headless Chromium: a live session is listed with its state and latency chart."""

import os

from tara.tools.caller import TaraClient
from tests.conftest import ADMIN_TOKEN


async def test_the_admin_page_lists_a_live_session_and_charts_its_latency(live_server, open_admin, tmp_path):
    url, _ = await live_server()
    async with TaraClient(url) as caller:
        caller.send({"type": "text", "text": "How long does the ferry crossing take?"})
        await caller.wait_for("metrics", timeout=90)

        page = await open_admin(f"{url}/admin")
        assert await page.is_visible("#login") and not await page.is_visible("#dashboard")
        await page.fill("#token", "wrong-token")
        await page.click("#login button")
        await page.wait_for_function("document.querySelector('#login-error').textContent.includes('refused')")
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("#login button")

        row = f"#sessions tr[data-session='{caller.session_id}']"
        await page.wait_for_selector(row, timeout=10000)
        assert await page.text_content(f"{row} td.state") == "listening"
        assert await page.locator(f"{row} svg.latency rect.bar").count() == 1
        assert "127.0.0.1" in await page.text_content(row)

        caller.send({"type": "text", "text": "What is the name of the observatory's main telescope?"})
        await page.wait_for_function(  # the page polls: the new turn shows up as a second bar
            f'document.querySelectorAll("{row} svg.latency rect.bar").length === 2', timeout=90000, polling=250
        )

        await page.wait_for_selector("#models tr >> text=tts", timeout=10000)
        assert "PiperTTS" in await page.text_content("#models")
        assert "joe" in await page.text_content("#voices")
        assert "ferry-timetable.txt" in await page.text_content("#kb-documents")
        assert "Piper" in await page.text_content("#clone-note")  # it cannot clone, and says so
        if os.environ.get("TARA_SCREENSHOTS"):
            await page.screenshot(path=os.environ["TARA_SCREENSHOTS"] + "/admin.png", full_page=True)

    await page.wait_for_selector(row, state="detached", timeout=10000)  # hung up: gone from the list
