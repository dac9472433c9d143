"""The rendered reports in headless Chromium: no console errors, no failed or network requests,
every image decoded, every index link resolving to a page."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from test_notebooks import NAMES, smoke_report_dir

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


def test_index_links_resolve_and_pages_are_clean(browser, html_dir):
    page, problems = open_page(browser, html_dir / "index.html")
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    page.close()
    assert problems == []
    assert len(hrefs) == len(NAMES)  # one link per notebook in report.NOTEBOOKS
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


def test_index_shows_parameters_duration_and_status(browser, html_dir):
    page, problems = open_page(browser, html_dir / "index.html")
    rows = page.eval_on_selector_all("tbody tr", "rows => rows.map(r => r.innerText)")
    page.close()
    assert problems == []
    assert len(rows) == len(NAMES)
    for text in rows:
        assert "OK" in text and " s" in text
        assert "preset='smoke'" in text or "points=201" in text  # the parameters each report ran with


def test_code_is_hidden_by_default(html_dir):
    html = (html_dir / "03_compare_activations.html").read_text()
    assert "from gradflow.train import compare" not in html
    assert "<script src=" not in html and "require.min.js" not in html and "MathJax.Hub" not in html and "cdnjs" not in html
