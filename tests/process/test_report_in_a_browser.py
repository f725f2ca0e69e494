"""`headseg status --html` as a person opens it: the report rendered by Debian's headless Chromium (.ci/run
installs it), when it was made, its counts with each class explained, failures, the keys not done and
thumbnails read back from the page, and no URL or secret in it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from headseg.cli import main
from headseg.ops.status import MEANINGS
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
    notes = ops.upload("incoming/notes.txt", b"minutes of the meeting", "text/plain")
    assert ops.invoke_key("incoming/notes.txt", notes)["outcomes"][0]["outcome"] == "failed"
    ops.upload_portrait("incoming/<b>new</b>.jpg", [(120, 60, 90, 110)])  # uploaded, not yet processed
    page = tmp_path / "report.html"
    started = datetime.now(timezone.utc).replace(microsecond=0)
    assert main(["status", "--bucket", BUCKET, "--prefix", "incoming/", "--oss-endpoint", ops.oss.url, "--html", str(page), "--quiet"]) == 0
    text = page.read_text(encoding="utf-8")
    for leak in ("http://", "https://", ACCESS_KEY_SECRET, SECURITY_TOKEN, ACCESS_KEY_ID, "Signature", "Expires="):
        assert leak not in text, leak
    browser.get(page.as_uri())
    made = browser.find_element(By.ID, "made")
    assert started <= datetime.fromisoformat(made.get_attribute("datetime").replace("Z", "+00:00")) <= datetime.now(timezone.utc)
    assert made.text.endswith(" UTC")
    rows = [[cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")] for row in browser.find_elements(By.CSS_SELECTOR, "#counts tr")]
    assert {name: count for name, count, _ in rows} == {"done": "3", "pending": "1", "stale": "0", "failed": "2", "retriable": "0", "orphans": "0"}
    assert {name: meaning for name, _, meaning in rows} == {name: MEANINGS[name] for name, _, _ in rows}  # each class explained
    assert "InvalidImage" in browser.find_element(By.ID, "failures").text
    pending = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#keys-pending li")]
    assert pending == ["incoming/<b>new</b>.jpg"]  # a key is text, never markup
    failed = [item.text for item in browser.find_elements(By.CSS_SELECTOR, "#keys-failed li")]  # each with code and reason
    assert [line.partition(": ")[0] for line in failed] == ["incoming/notes.txt InvalidImage.NotImage", "incoming/tiny.jpg InvalidImage.Resolution"]
    assert "not an image" in failed[0] and "20x20" in failed[1]
    assert f"headseg status --bucket {BUCKET} --prefix incoming/ --list failed" in browser.find_element(By.ID, "keys-failed").text
    images = browser.find_elements(By.CSS_SELECTOR, "#thumbnails img")
    assert len(images) == 3 and all(browser.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
