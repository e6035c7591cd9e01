"""The HTML report (samepix.html_report) opened in a real headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven by Selenium): every picture loads, no console error, the controls
change what is shown, untrusted names stay text, 10,000 groups open quickly. Screenshots are
saved under each test's tmp dir."""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from samepix.html_report import Item, PairView, Picture, Report, render, write_report

from .helpers import encode, run_cli

run = functools.partial(run_cli, text=True)

HOSTILE = "<b>&'\" x.png"  # a file name that is markup, quotes and an entity at once
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def picture(seed: int, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    from samepix.demo import make_picture

    return make_picture(seed, size)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[browser]')")
    if CHROMIUM is None or DRIVER is None:
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install -y chromium "
            "chromium-driver); .ci/run installs them"
        )
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_report(driver: Any, path: Path) -> float:
    """Load the report; seconds until the page is drawn. The console log is emptied first."""
    driver.get("about:blank")
    driver.get_log("browser")
    started = time.perf_counter()
    driver.get(path.resolve().as_uri())
    driver.find_element("css selector", "section.item")
    return time.perf_counter() - started


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def all_pictures_load(driver: Any) -> int:
    """Scroll to each picture of the page in turn, as a person would, and wait until it is
    decoded; the number of pictures (an AssertionError names those that never load)."""
    driver.set_script_timeout(120)
    count, bad = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        (async () => {
          const imgs = Array.from(document.querySelectorAll("main img"));
          const bad = [];
          const ok = (img) => img.complete && img.naturalWidth > 0;
          for (const img of imgs) {
            img.scrollIntoView({block: "center"});
            const t0 = performance.now();
            while (!ok(img) && performance.now() - t0 < 5000) {
              await new Promise((r) => requestAnimationFrame(r));
            }
            if (!ok(img)) bad.push(img.alt);
          }
          done([imgs.length, bad]);
        })();
        """
    )
    assert not bad, f"pictures that did not load: {bad}"
    return int(count)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    root.mkdir()
    (root / HOSTILE).write_bytes(encode(picture(1), "PNG"))
    (root / "a.jpg").write_bytes(encode(picture(1), "JPEG", quality=70))
    (root / "a.webp").write_bytes(encode(picture(1), "WEBP", quality=80))
    (root / "b.jpg").write_bytes(encode(picture(2), "JPEG", quality=90))
    (root / "b-copy.jpg").write_bytes((root / "b.jpg").read_bytes())
    (root / "c.jpg").write_bytes(encode(picture(3), "JPEG", quality=90))
    return root


def test_dupes_report_in_chromium(browser: Any, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report" / "dupes.html"
    out.parent.mkdir()
    proc = run("dupes", str(folder), "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "<b>&'" not in text  # the hostile name never appears unescaped
    open_report(browser, out)
    sections = browser.find_elements("css selector", "section.item")
    assert len(sections) == 2
    assert all_pictures_load(browser) >= 5 + 4  # 5 figures, and the viewer's pictures
    # the hostile name is shown as text, and its link is a percent-encoded relative path
    labels = [e.text for e in browser.find_elements("css selector", "figcaption .label")]
    assert "1. " + str(folder / "<b>&'\" x.png") in labels
    hrefs = [a.get_attribute("href") for a in browser.find_elements("css selector", "figure a")]
    assert any(h.endswith("/lib/%3Cb%3E%26%27%22%20x.png") for h in hrefs), hrefs
    assert browser.find_elements("css selector", "b") == []  # no element made from a name
    totals = browser.find_element("css selector", "dl.totals").text
    assert "groups\n2" in totals and "extra copies\n3" in totals
    assert (
        browser.find_element("css selector", "figure.best .bestmark").text == "★ best copy (kept)"
    )
    browser.save_screenshot(str(tmp_path / "dupes.png"))

    # the viewer's modes change what is shown
    viewer = browser.find_element("css selector", ".viewer")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", viewer)
    top = viewer.find_element("css selector", "img.top")
    viewer.find_element("css selector", "button[data-mode=difference]").click()
    assert top.value_of_css_property("mix-blend-mode") == "difference"
    viewer.find_element("css selector", "button[data-mode=swipe]").click()
    assert top.value_of_css_property("clip-path") == "inset(0px 50% 0px 0px)"
    browser.execute_script(
        "const r = arguments[0]; r.value = 20; r.dispatchEvent(new Event('input'))",
        viewer.find_element("css selector", "input[type=range]"),
    )
    assert top.value_of_css_property("clip-path") == "inset(0px 80% 0px 0px)"
    viewer.find_element("css selector", "button[data-mode=onion]").click()
    assert top.value_of_css_property("opacity") == "0.2"
    viewer.find_element("css selector", "button[data-mode=heatmap]").click()
    assert not top.is_displayed()
    assert "more opaque the red" in viewer.find_element("css selector", ".legend").text

    # keyboard: j / k move between groups, 3 switches the focused group's viewer to swipe
    from selenium.webdriver.common.action_chains import ActionChains

    def press(key: str) -> str:
        ActionChains(browser).send_keys(key).perform()
        return str(browser.switch_to.active_element.get_attribute("id"))

    browser.execute_script("document.activeElement.blur()")
    assert [press("j"), press("j"), press("k")] == ["item-0", "item-1", "item-0"]
    press("3")
    assert viewer.get_attribute("data-mode") == "swipe"

    # filters: only the byte-copy group is "identical"
    browser.find_element("css selector", "button[data-filter=identical]").click()
    shown = browser.find_elements("css selector", "section.item h2")
    assert len(shown) == 1 and "2 copies" in shown[0].text

    # the not-same button copies the command (or selects it where the clipboard is refused)
    browser.find_element("css selector", "button[data-filter=all]").click()
    assert len(browser.find_elements("css selector", "section.item")) == 2
    button = browser.find_element("css selector", "button.notsame")
    command = button.find_element("xpath", "following-sibling::code").text
    import shlex

    # the first group's best copy is the hostile PNG: the shell must get its name back intact
    words = shlex.split(command)
    assert words[:5] == ["samepix", "dupes", str(folder), "--not-same", str(folder / HOSTILE)]
    assert words[5] in (str(folder / "a.jpg"), str(folder / "a.webp")) and len(words) == 6
    button.click()
    status = browser.find_element("id", "status").text
    assert status.startswith("copied: samepix dupes ") or status == "select the command and copy it"
    browser.find_element("id", "theme").click()
    browser.find_element("id", "theme").click()
    browser.save_screenshot(str(tmp_path / "dupes-dark.png"))
    assert console_errors(browser) == []


def test_find_sync_and_compare_reports(browser: Any, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "find.html"
    proc = run("find", str(folder / "a.jpg"), "--in", str(folder), "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    open_report(browser, out)
    assert len(browser.find_elements("css selector", "section.item")) == 3  # itself, PNG, WebP
    assert all_pictures_load(browser) >= 6
    assert console_errors(browser) == []
    browser.save_screenshot(str(tmp_path / "find.png"))

    out = tmp_path / "compare.html"
    proc = run("compare", str(folder / "a.jpg"), str(folder / "c.jpg"), "--html", str(out))
    assert proc.returncode == 1, proc.stderr
    open_report(browser, out)
    assert "DIFFERENT" in browser.find_element("css selector", "section.item h2").text
    assert all_pictures_load(browser) >= 2
    assert console_errors(browser) == []

    # sync from a real local HTTP server: one new picture, one already there
    from .helpers import Response, http_server

    new = encode(picture(7), "PNG")
    known = (folder / "c.jpg").read_bytes()
    routes = {
        "/new.png": Response(200, new, {"Content-Type": "image/png"}),
        "/c.jpg": Response(200, known, {"Content-Type": "image/jpeg"}),
    }
    with http_server(routes) as server:
        base = server.base
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{base}/new.png\n{base}/c.jpg\n")
        out = tmp_path / "sync.html"
        proc = run("sync", str(urls), str(folder), "--html", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    open_report(browser, out)
    titles = [e.text for e in browser.find_elements("css selector", "section.item h2")]
    assert any("DOWNLOADED" in t and "new.png" in t for t in titles), titles
    assert any("SKIPPED-BYTES" in t.upper() and "c.jpg" in t for t in titles), titles
    assert "identical bytes already at c.jpg" in browser.find_element("tag name", "main").text
    assert all_pictures_load(browser) == 2
    assert console_errors(browser) == []


def test_10000_groups_open_and_page(browser: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    items = []
    for n in range(10_000):
        thumbs = []
        for _ in range(2):  # distinct small pictures, as a large report has
            arr = (rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).repeat(8, 0).repeat(8, 1)
            from samepix.html_report import _data_uri

            thumbs.append(_data_uri(arr, "JPEG"))
        pics = [
            Picture(f"/photos/{n}/{k}.jpg", f"./{n}/{k}.jpg", t, "JPEG 64×48 · 2 kB", best=k == 0)
            for k, t in enumerate(thumbs)
        ]
        pair = PairView(
            1, "same", ["JPEG q≈90 vs JPEG q≈70"], [("SSIM", "0.97")], None, "samepix …"
        )
        items.append(Item(f"group {n + 1}: 2 copies", "same", pics, [pair], tag="same"))
    out = tmp_path / "big.html"
    write_report(Report("10,000 groups", "dupes", [("groups", "10,000")], items, ["same"]), out)
    size_mb = out.stat().st_size / 1e6

    seconds = open_report(browser, out)
    drawn = len(browser.find_elements("css selector", "section.item"))
    assert drawn == 50
    assert "page 1 of 200" in browser.find_element("id", "pageinfo").text
    t0 = time.perf_counter()
    browser.find_element("css selector", "body").send_keys("n")
    assert "page 2 of 200" in browser.find_element("id", "pageinfo").text
    page_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    all_pictures_load(browser)
    scroll_s = time.perf_counter() - t0
    assert console_errors(browser) == []
    browser.save_screenshot(str(tmp_path / "big.png"))
    # Measured, not asserted (timing depends on the machine): printed for the report.
    print(
        f"10,000 groups: {size_mb:.1f} MB file, opened in {seconds:.2f} s, "
        f"next page {page_s:.2f} s, scrolled and decoded a page in {scroll_s:.2f} s"
    )


def test_page_escapes_what_it_embeds() -> None:
    evil = "</script><script>alert(1)</script><!--"
    report = Report(
        evil, "dupes", [(evil, evil)], [Item(evil, "same", [Picture(evil, None, None, evil)])]
    )
    page = render(report)
    assert "<script>alert(1)" not in page
    assert page.count("</script>") == 2  # the page's own two scripts
    data = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert data is not None and json.loads(data.group(1))["items"][0]["title"] == evil


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        pytest.param(
            "javascript:alert(1)", "./javascript%3Aalert%281%29", id="javascript-is-a-file-name"
        ),
        pytest.param("data:text/html,x", "./data%3Atext/html%2Cx", id="data-is-a-file-name"),
        pytest.param("https://example.com/a b.jpg", "https://example.com/a b.jpg", id="https-kept"),
        pytest.param("ftp://host/x.jpg", None, id="other-schemes-dropped"),
    ],
)
def test_links_are_relative_paths_or_http(
    tmp_path: Path, target: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from samepix.html_report import _href

    monkeypatch.chdir(tmp_path)
    if expected is not None and expected.startswith("./"):
        assert _href(tmp_path / target, tmp_path) == expected  # a file with that name
    assert _href(target, tmp_path) == (None if target.startswith(("java", "data")) else expected)


def test_thumbnails_are_small_and_oriented(tmp_path: Path) -> None:
    from samepix.html_report import _thumb_from_file

    im = Image.fromarray(picture(1, (640, 480)))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: shown 480 wide, 640 high
    im.save(tmp_path / "r.jpg", exif=exif, quality=90)
    assert _thumb_from_file(tmp_path / "r.jpg").shape == (256, 192, 3)
