"""Headless Chromium through Selenium, for the report's browser tests and its screenshots.

Debian's `chromium` and `chromium-driver` (`.ci/run` installs them); the driver is given by path,
so Selenium Manager never looks anything up on the network.

Screenshots of a built report's head browser (docs/report.md shows them):

    .venv/bin/python tests/browser.py results/demo/report.html docs/img
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
ABSENT = (
    "headless Chromium is absent (Debian: apt-get install chromium chromium-driver; "
    ".ci/run installs both)"
)


def chromium_paths() -> tuple[str, str] | None:
    """(browser, driver) executables, or None when either is missing."""
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def open_driver(width: int = 1280, height: int = 1400):
    """A headless Chrome WebDriver that records the page's console (`get_log("browser")`)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError(ABSENT)
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(paths[1]), options=options)


def console_errors(driver) -> list[dict]:
    """The console entries of level SEVERE since the last call (errors, uncaught exceptions)."""
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _shrink(path: Path) -> None:
    """Quantise a screenshot to 256 colours: a few hundred KB -> well under 200 KB."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def screenshots(report: Path, out_dir: Path) -> list[Path]:
    """`head_browser_index.png` (the index) and `head_browser_card.png` (the card of the
    index's first head with top and bottom images) of `report`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    driver = open_driver(1200, 900)
    try:
        driver.get(report.resolve().as_uri())
        section = driver.find_element("id", "heads")
        driver.execute_script("arguments[0].scrollIntoView()", section)
        index = out_dir / "head_browser_index.png"
        driver.save_screenshot(str(index))  # the viewport: heading, controls, index
        first = driver.find_element("css selector", "#head-index tbody tr a.head-link")
        driver.execute_script("arguments[0].click()", first)
        card_id = driver.execute_script("return decodeURIComponent(location.hash.slice(1))")
        card = driver.find_element("id", card_id)
        driver.execute_script(
            "return Promise.all(Array.from(arguments[0].querySelectorAll('img'))"
            ".map(i => i.decode()))",
            card,
        )
        driver.set_window_size(1200, card.size["height"] + 400)
        driver.execute_script("arguments[0].scrollIntoView()", card)
        card_png = out_dir / "head_browser_card.png"
        card.screenshot(str(card_png))
        errors = console_errors(driver)
        if errors:
            raise RuntimeError(f"console errors in {report}: {errors}")
    finally:
        driver.quit()
    for path in (index, card_png):
        _shrink(path)
    return [index, card_png]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for path in screenshots(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"{path} ({path.stat().st_size // 1024} KB)")
