"""`headseg status --html` as a person opens it: the report rendered by Debian's headless Chromium (.ci/run
installs it), its counts, failures and thumbnails read back from the page, and no URL or secret in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from headseg.cli import main
from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, SECURITY_TOKEN

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path):
    """Debian's headless Chromium through its ChromeDriver (.ci/run installs both), console messages kept."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no Chromium here: apt-get install chromium chromium-driver (.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_the_html_report_renders_in_a_real_browser_and_holds_no_url_or_secret(ops, browser, tmp_path, capsys):
    from selenium.webdriver.common.by import By

    for i in range(3):
        key = f"incoming/p{i}.jpg"
        assert ops.invoke_key(key, ops.upload_portrait(key, [(120, 60, 90, 110)]))["outcomes"][0]["outcome"] == "done"
    tiny = ops.upload_portrait("incoming/tiny.jpg", [], size=(20, 20))
    assert ops.invoke_key("incoming/tiny.jpg", tiny)["outcomes"][0]["outcome"] == "failed"
    page = tmp_path / "report.html"
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--html", str(page), "--quiet"]) == 0
    text = page.read_text(encoding="utf-8")
    for leak in ("http://", "https://", ACCESS_KEY_SECRET, SECURITY_TOKEN, ACCESS_KEY_ID, "Signature", "Expires="):
        assert leak not in text, leak
    browser.get(page.as_uri())
    counts = {row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
              for row in browser.find_elements(By.CSS_SELECTOR, "#counts tr")}
    assert counts == {"done": "3", "pending": "0", "stale": "0", "failed": "1", "retriable": "0", "orphans": "0"}
    assert "InvalidImage" in browser.find_element(By.ID, "failures").text
    images = browser.find_elements(By.CSS_SELECTOR, "#thumbnails img")
    assert len(images) == 3 and all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
