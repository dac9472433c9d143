"""The rendered reports in headless Chromium: no console errors, no failed or network requests,
every image decoded, every index link resolving to a page, navigation index -> page -> next/previous
-> index working on every page, and no absolute path of the build machine anywhere."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from test_notebooks import smoke_report_dir

from gradflow import report

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    return smoke_report_dir(tmp_path_factory) / "html"


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, path: Path):
    """Load a file page; return (page, problems) where problems lists console errors and bad requests."""
    page = browser.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url}"))
    # reports must work offline: anything but the file itself and inline data is a problem
    page.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else problems.append(f"network: {r.url}"))
    page.goto(path.as_uri(), wait_until="load")
    return page, problems


def report_links(page) -> list[str]:
    return page.eval_on_selector_all("ol.reading a[href]", "els => els.map(e => e.getAttribute('href'))")


def test_index_links_resolve_and_pages_are_clean(browser, html_dir):
    page, problems = open_page(browser, html_dir / "index.html")
    hrefs = report_links(page)
    external = page.eval_on_selector_all("a[href^='http']", "els => els.map(e => e.href)")
    page.close()
    assert problems == []
    assert hrefs == [f"{s.name}.html" for s in report.NOTEBOOKS]  # the reading order
    assert any("uvadlc-notebooks" in url for url in external)  # credit to the original tutorial
    for href in hrefs:
        target = html_dir / href
        assert target.is_file(), href
        sub, sub_problems = open_page(browser, target)
        images = sub.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        title = sub.title()
        sub.close()
        assert sub_problems == [], (href, sub_problems)
        assert images, f"{href} shows no figure"
        assert all(done and width > 0 for done, width in images), (href, images)
        assert "gradflow" in title


def follow(page, selector: str) -> str:
    """Click a link and wait until the page it leads to has loaded (a slow machine must not cut it short)."""
    with page.expect_navigation(wait_until="load"):
        page.click(selector)
    return page.url


def test_navigation_index_page_next_previous_index(browser, html_dir):
    """Click through the set as a reader: every page links home, next leads to the next report,
    previous back, and the contents list points at headings on the page."""
    names = [s.name for s in report.NOTEBOOKS]
    page, problems = open_page(browser, html_dir / "index.html")
    for i, name in enumerate(names):
        page.goto((html_dir / "index.html").as_uri(), wait_until="load")
        assert follow(page, f"ol.reading a[href='{name}.html']").endswith(f"/{name}.html"), page.url
        assert page.locator("nav.gf-nav a[href='index.html']").count() == 1, name
        assert page.locator(".gf-footer a[href='index.html']").count() == 1, name
        anchors = page.eval_on_selector_all(".gf-toc a", "els => els.map(e => e.getAttribute('href').slice(1))")
        assert anchors, f"{name} has no contents list"
        tags = page.evaluate("ids => ids.map(i => (document.getElementById(i) "
                             "|| document.getElementById(decodeURIComponent(i)) || {}).tagName)", anchors)
        assert all(t in ("H1", "H2") for t in tags), (name, list(zip(anchors, tags)))
        if i + 1 < len(names):
            assert follow(page, "nav.gf-nav a[rel='next']").endswith(f"/{names[i + 1]}.html"), page.url
            assert follow(page, "nav.gf-nav a[rel='prev']").endswith(f"/{name}.html"), page.url
        else:
            assert page.locator("nav.gf-nav a[rel='next']").count() == 0
        assert follow(page, "nav.gf-nav a[href='index.html']").endswith("/index.html")
    page.close()
    assert problems == [], problems


ABSOLUTE = re.compile(r"(?<![\w.])/(?:tmp|root|work|home|usr|opt|var)/")


def test_no_page_shows_an_absolute_path(browser, html_dir):
    root = str(report.REPO_ROOT)
    for path in sorted(html_dir.glob("*.html")):
        html = re.sub(r"""data:[^"'\s)<>]+""", "", path.read_text())  # base64 images hold slashes
        assert root not in html and str(html_dir.parent) not in html, path.name
        found = ABSOLUTE.findall(html)
        assert not found, (path.name, found[:5])
        page, _ = open_page(browser, path)
        text = page.inner_text("body")
        page.close()
        assert not ABSOLUTE.search(text) and root not in text, path.name


def test_index_shows_reading_order_status_and_the_preset(browser, html_dir):
    page, problems = open_page(browser, html_dir / "index.html")
    rows = page.eval_on_selector_all("ol.reading li", "rows => rows.map(r => r.innerText)")
    facts = page.inner_text("table.facts")
    callout = page.inner_text(".gf-preview")
    page.close()
    assert problems == []
    assert len(rows) == len(report.NOTEBOOKS)
    for spec, text in zip(report.NOTEBOOKS, rows):
        assert spec.title in text and "rendered" in text and re.search(r"\d+\.\d s", text)
    assert "smoke" in facts and "synthetic" in facts and "per activation" in facts and "torch" in facts
    assert "Preview, not results" in callout  # smoke is not the tutorial recipe


def test_code_is_hidden_by_default(html_dir):
    html = (html_dir / "03_compare_activations.html").read_text()
    assert "from gradflow.train import compare" not in html
    assert "<script src=" not in html and "require.min.js" not in html and "MathJax.Hub" not in html and "cdnjs" not in html


def test_screenshot_script_writes_every_page(browser, html_dir, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("screenshots", report.REPO_ROOT / "scripts" / "screenshots.py")
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    written = screenshots.shoot(html_dir, tmp_path, width=800, browser=browser)
    assert [p.name for p, _ in written] == ["index.png"] + [f"{s.name}.png" for s in report.NOTEBOOKS]
    from PIL import Image
    for path, _ in written:
        with Image.open(path) as im:
            assert im.width == 800 and im.height > 600 and im.mode == "P", (path.name, im.size, im.mode)


def test_screenshots_keep_every_activation_colour(browser, html_dir, tmp_path):
    """The 256-colour screenshots must keep the activations' colours: on page 1's true-colour shot, the
    pixels drawn in each activation's colour keep it after to_palette (median cut had merged sigmoid's
    vermillion with tanh's orange, 59 and 45 apart, and turned elu's pink grey)."""
    import importlib.util
    import shutil

    import numpy as np
    from PIL import Image

    from gradflow.style import TUTORIAL_ACTIVATIONS, activation_style
    spec = importlib.util.spec_from_file_location("screenshots", report.REPO_ROOT / "scripts" / "screenshots.py")
    screenshots = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screenshots)
    written = dict((p.name, p) for p, _ in screenshots.shoot(html_dir, tmp_path / "true", width=1200, palette=False,
                                                              browser=browser))
    page = tmp_path / "page1.png"
    shutil.copy(written["01_activation_functions.png"], page)
    with Image.open(page) as im:
        before = np.asarray(im.convert("RGB")).astype(int)
    screenshots.to_palette(page)
    with Image.open(page) as im:
        after = np.asarray(im.convert("RGB")).astype(int)
    for name in TUTORIAL_ACTIVATIONS:
        colour = np.array([round(255 * c) for c in activation_style(name)["color"]])
        drawn = np.abs(before - colour).max(axis=2) <= 8
        assert drawn.sum() > 50, name  # the curve is on the page
        assert np.abs(after[drawn].mean(axis=0) - colour).max() <= 12, name


@pytest.mark.parametrize("name", ["01_activation_functions", "03_compare_activations", "05_two_runs"])
def test_answers_stay_folded_until_opened(browser, html_dir, name):
    """Every page that asks "Predict, then look" folds its answers into one <details> per question block:
    closed when the page opens, the answers inside it (not spilled after it) once clicked."""
    page, problems = open_page(browser, html_dir / f"{name}.html")
    asked = page.locator("text=Predict, then look.").count()
    folds = page.locator("details.answers")
    assert asked >= 1 and folds.count() == asked
    closed = folds.first.bounding_box()["height"]
    assert folds.first.locator("li, p").first.is_visible() is False
    folds.first.locator("summary").click()
    answer = folds.first.locator("li, p").first
    assert answer.is_visible() and len(answer.inner_text()) > 40
    assert folds.first.bounding_box()["height"] > closed + 20
    page.close()
    assert problems == []


def test_every_figure_has_a_description(html_dir):
    """Screen readers get each figure's title, panels and axes, not nbconvert's generic alt text."""
    for path in sorted(html_dir.glob("0*.html")):
        alts = re.findall(r'<img [^>]*alt="([^"]*)"', path.read_text())
        assert alts, path.name
        for alt in alts:
            assert alt.startswith("Figure") and "No description" not in alt, (path.name, alt)
