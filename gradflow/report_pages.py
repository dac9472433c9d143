"""The frame around the rendered notebooks: navigation, a table of contents, status and error pages.

Works on the exported HTML of any notebook, so no notebook carries navigation code: every page
gets a bar linking to the index and to the previous and next report, and an "On this page" list
built from its own headings. ``public_paths`` takes absolute paths (the folder the set was built
in, the venv, /tmp) out of a page, because a report is handed to students and put on the web.
"""
from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

ORIGINAL_TUTORIAL = ("https://uvadlc-notebooks.readthedocs.io/en/latest/tutorial_notebooks/tutorial3/"
                     "Activation_Functions.html")
RECIPE_EPOCHS = 50  # the tutorial's max_epochs (shared/reference/anchors.md)

# Shared by the index and every report page (the notebooks add nbconvert's JupyterLab styles).
FRAME_CSS = """
h1, h2, h3, [id] { scroll-margin-top: 3em; }  /* a contents link lands below the sticky bar, not under it */
body.jp-Notebook { padding-top: 0; margin-top: 0; }
.gf-nav { position: sticky; top: 0; z-index: 10; display: flex; gap: 1em; align-items: center;
  justify-content: space-between; background: #1f3b57; color: #fff; padding: .55em 1.2em;
  font: 15px/1.4 system-ui, sans-serif; box-shadow: 0 1px 4px rgba(0,0,0,.25); }
.gf-nav a { color: #fff; text-decoration: none; } .gf-nav a:hover { text-decoration: underline; }
.gf-nav .gf-home { font-weight: 600; } .gf-nav .gf-pn { display: flex; gap: 1.4em; }
.gf-nav .gf-off { opacity: .4; }
.gf-toc { font: 14px/1.5 system-ui, sans-serif; background: #f4f7fa; border-left: 4px solid #1f3b57;
  padding: .6em 1.2em; margin: 1.2em 0; }
.gf-toc b { display: block; margin-bottom: .2em; } .gf-toc ol { margin: 0; padding-left: 1.4em; }
.gf-toc a { color: #1f3b57; }
.gf-footer { font: 14px/1.5 system-ui, sans-serif; display: flex; justify-content: space-between;
  border-top: 1px solid #ccd; margin: 2.5em 0 1em; padding-top: .8em; }
.gf-footer a { color: #1f3b57; }
.gf-callout { font: 15px/1.5 system-ui, sans-serif; padding: .7em 1em; border-radius: 6px;
  margin: 1em 0; border-left: 5px solid; }
.gf-preview { background: #fff8e1; border-color: #f9a825; }
.gf-failed { background: #ffebee; border-color: #c62828; }
.jp-RenderedMarkdown .highlight pre { background: #f3f5f7; border-radius: 6px; padding: .7em 1em;
  overflow-x: auto; font-size: 13px; }
"""


# --------------------------------------------------------------------------- paths


def _prefixes(extra: dict[str, str]) -> list[tuple[str, str]]:
    """(absolute prefix, public name) pairs, longest first so the most specific one wins."""
    from .report import REPO_ROOT

    pairs = dict(extra)
    for root in {str(REPO_ROOT), str(REPO_ROOT.resolve())}:
        pairs.setdefault(root, ".")
    for prefix in {sys.prefix, os.path.realpath(sys.prefix)}:
        pairs.setdefault(prefix, ".venv")
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        pairs.setdefault(home, "~")
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


# Anything still absolute after the known prefixes: a /tmp folder, another checkout, the system Python.
_ABSOLUTE = re.compile(r"(?<![\w.~:/-])/(?:[\w.+-]+/)+[\w.+-]*")
_DATA_URI = re.compile(r"""data:[^"'\s)<>]+""")


def public_paths(text: str, named: dict[str, str] | None = None) -> str:
    """``text`` with absolute paths made relative to the repository or shortened to their last parts.

    named -- extra {absolute path: public name}, e.g. the run store folder -> "checkpoints".
    Embedded images (data: URIs) are left alone: base64 contains slashes.
    """
    pairs = _prefixes({k: v for k, v in (named or {}).items() if k})

    def clean(part: str) -> str:
        for prefix, name in pairs:
            inside = "" if name == "." else name + "/"  # <repo>/notebooks -> notebooks
            part = part.replace(prefix + "/", inside)
            part = re.sub(re.escape(prefix) + r"(?![\w.-])", lambda m, name=name: name, part)
        return _ABSOLUTE.sub(lambda m: "…/" + "/".join(m.group(0).rstrip("/").split("/")[-2:]), part)

    out, last = [], 0
    for m in _DATA_URI.finditer(text):
        out.append(clean(text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(clean(text[last:]))
    return "".join(out)


def display_path(path: Path | str) -> str:
    """A folder as a person would type it: relative to the current folder or the repository, else its name."""
    from .report import REPO_ROOT

    path = Path(path).resolve()
    for base in (Path.cwd().resolve(), REPO_ROOT.resolve()):
        try:
            return str(path.relative_to(base)) or "."
        except ValueError:
            continue
    return path.name


# --------------------------------------------------------------------------- navigation


_HEADING = re.compile(r'<h([12])\s+id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
_TAG = re.compile(r"<[^>]+>")


def headings(page: str) -> list[tuple[int, str, str]]:
    """(level, anchor id, text) of the page's h1/h2 headings, nbconvert's anchor marks removed."""
    found = []
    for level, anchor, inner in _HEADING.findall(page):
        text = html.unescape(_TAG.sub("", inner)).replace("¶", "").strip()
        if text:
            found.append((int(level), anchor, text))
    return found


def nav_bar(specs, index: int, set_title: str) -> str:
    """The bar on top of page ``index`` of ``specs``: home, position, previous and next."""
    def link(i: int, label: str) -> str:
        if 0 <= i < len(specs):
            s = specs[i]
            return (f'<a href="{html.escape(s.name)}.html" rel="{"prev" if i < index else "next"}" '
                    f'title="{html.escape(s.title)}">{label}</a>')
        return f'<span class="gf-off">{label}</span>'

    prev_label = f"← {index}. {html.escape(specs[index - 1].title)}" if index > 0 else "← previous"
    next_label = (f"{index + 2}. {html.escape(specs[index + 1].title)} →" if index + 1 < len(specs)
                  else "next →")
    return (f'<nav class="gf-nav" aria-label="reports"><a class="gf-home" href="index.html">☰ '
            f'{html.escape(set_title)}</a><span>report {index + 1} of {len(specs)}</span>'
            f'<span class="gf-pn">{link(index - 1, prev_label)}{link(index + 1, next_label)}</span></nav>')


def toc(page: str) -> str:
    """'On this page': the h2 sections (h1 too when the page has several)."""
    found = headings(page)
    h1s = [h for h in found if h[0] == 1]
    items = [h for h in found if h[0] == 2 or len(h1s) > 1]
    if len(items) < 2:
        return ""
    lis = "".join(f'<li><a href="#{html.escape(a, quote=True)}">{html.escape(t)}</a></li>' for _, a, t in items)
    return f'<div class="gf-toc" role="navigation"><b>On this page</b><ol>{lis}</ol></div>'


def footer(specs, index: int) -> str:
    prev = (f'<a href="{specs[index - 1].name}.html">← {html.escape(specs[index - 1].title)}</a>'
            if index > 0 else "<span></span>")
    nxt = (f'<a href="{specs[index + 1].name}.html">{html.escape(specs[index + 1].title)} →</a>'
           if index + 1 < len(specs) else "<span>the last report of the set</span>")
    return f'<div class="gf-footer">{prev}<a href="index.html">index</a>{nxt}</div>'


TOC_SLOT = '<div class="gf-toc-slot"></div>'  # put in the page's frame cell, filled after export


def add_frame(page: str, specs, index: int, set_title: str) -> str:
    """Insert the navigation bar, the table of contents and the footer into an exported page.

    The bar goes first in <body>, the contents list where the frame cell left ``TOC_SLOT`` (else
    after the bar), the footer last in the main content. Works on nbconvert's lab template and on
    plain pages.
    """
    page = page.replace("</head>", f"<style>{FRAME_CSS}</style></head>", 1)
    contents = toc(page)
    if TOC_SLOT in page:
        page = page.replace(TOC_SLOT, contents, 1)
        contents = ""
    bar = nav_bar(specs, index, set_title)
    page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + bar + contents, page, count=1)
    closing = "</main>" if "</main>" in page else "</body>"
    cut = page.rfind(closing)
    return page[:cut] + footer(specs, index) + page[cut:]


# --------------------------------------------------------------------------- page parts


def frame_cell(result, preset: str):
    """A markdown cell under the page's title: status, preset, parameters, and the slot for the contents list."""
    import nbformat

    params = ", ".join(f"<code>{html.escape(f'{k}={v!r}')}</code>" for k, v in result.parameters.items()
                       if k != "preset") or "defaults"
    state = ("rendered" if result.status == "ok"
             else f"<span class='gf-state-failed'>{html.escape(result.status.upper())}</span>")
    preview = "" if preset == "tutorial" else ' (a <a href="index.html">preview</a>, not the full recipe)'
    text = (f'<div class="gf-banner">{state} in {result.seconds:.0f} s · preset <code>{html.escape(preset)}</code>{preview}'
            f" · parameters: {params}"
            + (f"<br>error: <code>{html.escape(result.error)}</code>" if result.error else "")
            + f"</div>{TOC_SLOT}")
    return nbformat.v4.new_markdown_cell(text)


def insert_frame_cell(nb, cell) -> None:
    """After the title cell (a markdown cell opening with '# '), else first."""
    first = nb.cells[0] if nb.cells else None
    title_first = first is not None and first.cell_type == "markdown" and first.source.lstrip().startswith("# ")
    nb.cells.insert(1 if title_first else 0, cell)


def error_page(result, detail: str) -> str:
    """For reports that left no executed notebook to convert (runs missing, file missing, kernel died)."""
    title = html.escape(result.title)
    what = {"missing runs": "cannot render yet: its runs are not in the run store"}.get(result.status, "FAILED")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title} ({html.escape(result.status)})"
            f" — gradflow reports</title></head><body style='margin:0'><main style='font-family:system-ui,sans-serif;"
            f"max-width:1100px;margin:auto;padding:0 1.5em'><h1>{title}</h1><div class='gf-callout gf-failed'>"
            f"<b>This report {what}.</b>"
            + ("" if result.status == "missing runs" else f"<br><code>{html.escape(result.error)}</code>")
            + f"</div><pre style='white-space:pre-wrap'>{html.escape(detail)}</pre></main></body></html>")


def missing_page(result, missing: dict[str, str], runs_shown: str, preset: str) -> str:
    """The page of a report whose runs are not stored: which runs, and the commands that make it render."""
    runs = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in missing)
    where = "" if runs_shown == "checkpoints" else f" --out {runs_shown}"
    commands = "\n".join(list(dict.fromkeys(missing.values())) + [f"gradflow report --preset {preset}{where}"])
    body = (f"<p>It reads these runs, which <code>{html.escape(runs_shown)}/</code> does not hold:</p><ul>{runs}</ul>"
            f"<p>Reports read stored runs and never train. Train the runs, then render again:</p>"
            f"<pre style='background:#f4f7fa;padding:.8em 1em'>{html.escape(commands)}</pre>"
            + ("" if where else f"<p>(<code>make report PRESET={html.escape(preset)}</code> does both.)</p>"))
    return error_page(result, "").replace("<pre style='white-space:pre-wrap'></pre>", body)
