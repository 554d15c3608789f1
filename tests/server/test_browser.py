"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against `serve` while a file
source streams at real time."""
from __future__ import annotations

import shutil

from tests.helpers import DEMO_CLIP
from tests.server.conftest import running, source

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def browser(p):
    assert shutil.which(CHROMIUM), "Debian's chromium is needed (.ci/run installs it)"
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)


def test_dashboard_draws_the_heat_map_tags_and_events_of_a_live_file(tmp_path):
    from playwright.sync_api import sync_playwright
    with running(source(DEMO_CLIP, "demo")) as server, sync_playwright() as p:
        b = browser(p)
        page = b.new_page(viewport={"width": 1300, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        card = page.locator('section.source[data-source="demo"]')
        page.wait_for_function("() => +(document.querySelector('.heat')?.dataset.columns || 0) >= 4", timeout=20000)
        page.wait_for_function("() => +(document.querySelector('.mel')?.dataset.frames || 0) > 50", timeout=20000)
        page.wait_for_function("() => [...document.querySelectorAll('.tags li')].some(li => "
                               "li.textContent.startsWith('Speech'))", timeout=20000)
        page.wait_for_function("() => [...document.querySelectorAll('.tags li')].some(li => "
                               "li.textContent.startsWith('Dog'))", timeout=20000)
        page.wait_for_function("() => document.querySelectorAll('.events tbody tr').length > 0", timeout=20000)
        assert "Speech" in card.locator(".heat").get_attribute("data-rows")
        assert card.locator(".state").inner_text() in ("running", "ended")
        assert card.locator(".events tbody tr").first.locator("td").first.inner_text()
        shot = tmp_path / "dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10000
        print(f"screenshot: {shot}")
        assert not errors, errors
        b.close()
