"""Full-page screenshots of every rendered report, for the README and for review.

    python scripts/screenshots.py [--reports reports] [--out docs/screenshots] [--width 1200]

Reads an existing report set (``make report`` or ``gradflow report`` first) and writes one PNG
per page with headless Chromium (Playwright), named like the page: ``index.png``,
``01_activation_functions.png``, ... Viewport 1200 px wide at device scale 1, and a 256-colour
palette (Pillow, no dithering: text and plot lines stay crisp) keep the files small, a few
hundred KiB; long pages make tall images.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = os.environ.get("GRADFLOW_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def pages(reports: Path) -> list[Path]:
    """The index first, then the reports in reading order (from index.json), else alphabetically."""
    index = reports / "index.json"
    if index.is_file():
        names = [r["html"] for r in json.loads(index.read_text())["reports"]]
    else:
        names = sorted(p.name for p in reports.glob("*.html") if p.name != "index.html")
    return [reports / "index.html"] + [reports / n for n in names if (reports / n).is_file()]


def to_palette(path: Path) -> None:
    """Rewrite a screenshot with 256 colours: about a third of the size, no visible loss on these pages.
    Fast octree, not median cut: median cut spends its colours on the grey text anti-aliasing and merged
    sigmoid's vermillion with tanh's orange (and turned elu's pink grey), so the pictures in the README
    lost the one channel the figures tell activations apart by."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def chinese_font() -> bool:
    """Whether fontconfig knows a font with Chinese glyphs (True when it cannot tell: no fc-list)."""
    try:
        found = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return True
    return bool(found.strip())


def shoot(reports: Path, out: Path, width: int = 1200, palette: bool = True, browser=None) -> list[tuple[Path, float]]:
    """Screenshot every page of ``reports`` into ``out``; ``browser``: a running Playwright browser to reuse."""
    if browser is None:
        from playwright.sync_api import sync_playwright

        launch = {"args": ARGS}
        if Path(CHROMIUM).is_file():
            launch["executable_path"] = CHROMIUM
        with sync_playwright() as p:
            browser = p.chromium.launch(**launch)
            try:
                return shoot(reports, out, width, palette, browser)
            finally:
                browser.close()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
    for html in pages(reports):
        start = time.perf_counter()
        page.goto(html.resolve().as_uri(), wait_until="load")
        target = out / f"{html.stem}.png"
        page.screenshot(path=str(target), full_page=True)
        if palette:
            to_palette(target)
        written.append((target, time.perf_counter() - start))
    page.close()
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", default="reports", help="folder of a rendered report set (default: reports)")
    ap.add_argument("--out", default="docs/screenshots", help="where the PNGs go (default: docs/screenshots)")
    ap.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels (default: 1200)")
    ap.add_argument("--full-colour", action="store_true", help="keep Chromium's true-colour PNGs (larger)")
    args = ap.parse_args(argv)
    reports = Path(args.reports)
    if not (reports / "index.html").is_file():
        print(f"screenshots: no report set in {reports}/ (index.html is missing); run `make report` first, "
              f"or pass --reports DIR", file=sys.stderr)
        return 2
    if not chinese_font():
        print("screenshots: no Chinese font installed, so the case-study page's Chinese quotes will show as "
              "boxes; install one (Debian: apt-get install fonts-wqy-microhei)", file=sys.stderr)
    for path, seconds in shoot(reports, Path(args.out), args.width, not args.full_colour):
        print(f"{path}  {path.stat().st_size / 1024:7.0f} KiB  {seconds:4.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
