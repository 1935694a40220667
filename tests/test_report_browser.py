"""report.html in a real browser: headless Chromium through Selenium (Debian's
``chromium`` and ``chromium-driver``; ``.ci/run`` installs them). Skipped, saying why, where
Selenium, Chromium or its driver is missing."""
import json
import shutil

import pytest

from test_report import train_small

pytestmark = pytest.mark.slow   # starts a browser: seconds, not milliseconds

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="selenium is not installed (pip install selenium)")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    binary, driver = _chromium(), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium "
                    "chromium-driver): the browser test cannot run")
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        drv = webdriver.Chrome(service=Service(driver), options=opts)
    except Exception as exc:  # a driver that does not start: say so, do not fail the suite
        pytest.skip(f"headless Chromium does not start here: {type(exc).__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}")
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "out"
    train_small(out, kind="budget", budget=300, contact_cost=2.0, order_value=30.0)
    return out


def _full_page_png(drv, path, width):
    drv.set_window_size(width, 900)
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(width, min(int(height) + 100, 16000))
    drv.save_screenshot(str(path))


def test_report_in_headless_chromium(browser, report, tmp_path):
    page = (report / "report.html").resolve().as_uri()
    browser.get(page)
    assert browser.execute_script("return document.readyState") == "complete"
    # every image decoded
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(images) == 6, images      # five figures and the SHAP summary
    for complete, width, alt in images:
        assert complete and width > 0, alt
    # no request left the page: the only resource entries are the page's own data: URLs
    entries = browser.execute_script(
        "return performance.getEntries().map(e => [e.entryType, e.name])")
    assert entries and all(not name.startswith(("http:", "https:")) for _, name in entries), \
        entries
    # no console errors (or warnings)
    logs = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert logs == []
    # the numbers the browser shows are the JSON's
    ev = json.loads((report / "model_evaluation_results.json").read_text())
    best = json.loads((report / "manifest.json").read_text())["best_model"]
    shown = browser.execute_script(
        "return document.querySelector('[data-json=\"' + arguments[0] + '\"]').textContent",
        f"{best}.policy.validation.contacts_pct")
    assert float(shown) == pytest.approx(ev[best]["policy"]["validation"]["contacts_pct"],
                                         abs=0.051)
    _full_page_png(browser, tmp_path / "report_desktop.png", 1200)
    # phone width: the page itself does not scroll sideways (wide tables scroll in place)
    browser.set_window_size(390, 844)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    _full_page_png(browser, tmp_path / "report_phone.png", 390)
    for name in ("report_desktop.png", "report_phone.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshots: {tmp_path}")
