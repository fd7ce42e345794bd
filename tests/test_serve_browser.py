"""`medicalrec serve` in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven by
Selenium; nothing is downloaded at run time): home page, a table, a facet, a canned query, a chart,
and one review decision in `--curate` mode that then shows in `kb export`.

Screenshots go to $MEDICALREC_SCREENSHOT_DIR when set (the README's come from
`MEDICALREC_SCREENSHOT_DIR=docs/img pytest tests/test_serve_browser.py`), else to the test's tmp dir.
Skipped, saying why, where Chromium, its driver or Selenium is missing; .ci/run installs them."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from test_serve import SNIPPET, exported, extracted_kb, running_server, waiting

from medicalrec.kb import db
from medicalrec.kb.serve_metadata import CHARTS, chart_url

CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser",
                             shutil.which("chromium")) if p and Path(p).exists()), None)
CHROMEDRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver")) if p and Path(p).exists()),
                    None)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[dev]'")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium: apt-get install chromium chromium-driver (.ci/run does) to run the browser tests")

from selenium.webdriver.common.by import By  # noqa: E402 - after the skip: selenium may be absent
from selenium.webdriver.support import expected_conditions as ready  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 90  # seconds; the shared CI machine may be slow, a page that never comes fails


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not try to fetch a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1366,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("MEDICALREC_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def wait_for(driver, css: str):
    return WebDriverWait(driver, WAIT).until(ready.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_browse_facet_query_and_chart(browser, screenshots, tmp_path):
    with running_server(db.seed_path(), env_home=tmp_path / "xdg") as base:
        browser.get(base + "/")
        assert "medicalrec KB" in browser.title
        assert "Why a value is missing" in browser.find_element(By.TAG_NAME, "body").text

        browser.get(base + "/kb")
        browser.find_element(By.LINK_TEXT, "experiment_wide").click()  # open a table
        wait_for(browser, "table.rows-and-columns")
        assert browser.current_url.endswith("/kb/experiment_wide")
        total = int(wait_for(browser, "h3").text.split()[0].replace(",", ""))

        facet = WebDriverWait(browser, WAIT).until(ready.presence_of_element_located(
            (By.XPATH, "//div[@data-column='model_family']//li/a[text()='ResNet']")))
        expected = int(facet.find_element(By.XPATH, "..").text.split()[-1])
        facet.click()  # apply a facet
        WebDriverWait(browser, WAIT).until(lambda d: "model_family=ResNet" in d.current_url)
        heading = wait_for(browser, "h3").text
        assert heading.startswith(f"{expected} row") and 0 < expected < total, heading
        families = {cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "td.col-model_family")}
        assert families == {"ResNet"}
        faceted_png = screenshots / "serve_faceted_table.png"
        browser.save_screenshot(str(faceted_png))

        browser.get(base + "/kb")
        browser.find_element(By.LINK_TEXT, "Best reported result per domain and model").click()  # a canned query
        wait_for(browser, "table.rows-and-columns tbody tr")
        assert "/kb/best_result" in browser.current_url
        rows = browser.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")
        assert len(rows) > 10
        link = rows[0].find_element(By.CSS_SELECTOR, "td.col-value a")
        assert "/kb/provenance?experiment_id=" in link.get_attribute("href")

        chart = next(c for c in CHARTS if c["query"] == "accuracy_by_family")
        browser.get(chart_url(chart, base))  # a chart: datasette-vega draws it from the URL's settings
        marks = wait_for(browser, ".vega-embed canvas, .vega-embed svg.marks")
        WebDriverWait(browser, WAIT).until(lambda d: marks.size["height"] > 100)
        chart_png = screenshots / "serve_chart.png"
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", marks)
        browser.save_screenshot(str(chart_png))

    for png in (faceted_png, chart_png):
        width, height = png_size(png)
        assert width >= 1000 and height >= 600 and png.stat().st_size > 20_000, png


def test_a_curator_accepts_a_number_in_the_browser_and_export_has_it(browser, cli, screenshots, tmp_path):
    path = tmp_path / "kb.db"
    extracted_kb(path)
    ids = waiting(path)
    with running_server(path, "--curate", "--by", "bob", env_home=tmp_path / "xdg") as base:
        browser.get(base + "/-/medicalrec/review")
        item = wait_for(browser, f"#review-{ids['accuracy']}")
        assert SNIPPET in item.text and "page 3" in item.text
        item.find_element(By.CSS_SELECTOR, "button.accept").click()
        message = wait_for(browser, ".message-info")
        assert message.text == f"accepted measurement {ids['accuracy']} (by bob)"
        assert not browser.find_elements(By.CSS_SELECTOR, f"#review-{ids['accuracy']}")
        browser.save_screenshot(str(screenshots / "serve_review.png"))
    assert set(waiting(path)) == {"f1", "auc"}
    facts = {(t["metric"], t["value"], t["page"]) for t in exported(cli, path)}
    assert ("accuracy", 0.942, 3) in facts
