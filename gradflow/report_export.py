"""What papermill and nbconvert need from gradflow: a kernel that runs this interpreter, and an
HTML exporter whose pages open offline (no script from a CDN)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

KERNEL_NAME = "gradflow-venv"


def write_kernelspec(root: Path) -> Path:
    """A kernelspec that runs *this* interpreter, under ``root/kernels/``; put ``root`` on JUPYTER_PATH.

    The stock ``python3`` spec can be shadowed by one in ~/.local/share/jupyter pointing at another
    Python, so the reports would silently run without gradflow's environment.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [sys.executable, "-m", "gradflow.kernel_launcher", "-f", "{connection_file}"],
            "display_name": f"gradflow ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return root


# --------------------------------------------------------------------------- HTML


# nbconvert's lab template loads require.js, MathJax, mermaid and widget scripts from CDNs;
# the reports must open offline, so those blocks are emptied. CSS stays inline.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block data_png scoped -%}
{%- set alt = output | get_metadata('alt', 'image/png') -%}
{%- if alt -%}
<div class="jp-RenderedImage jp-OutputArea-output {{ extra_class }}"><img src="data:image/png;base64,{{ output.data['image/png'] | escape_html }}" alt="{{ alt | escape_html }}"></div>
{%- else -%}{{ super() }}{%- endif -%}
{%- endblock data_png -%}
{%- block extra_css -%}<style>main { max-width: 1100px; margin: 0 auto; }
.gf-banner { font: 14px/1.5 system-ui, sans-serif; color: #445; margin: .5em 0; }
.gf-banner .gf-state-failed { color: #b71c1c; font-weight: 600; }
details.answers { border-left: 3px solid #8da0cb; background: #f6f7fb; padding: .3em .9em; margin: .6em 0; }
details.answers summary { cursor: pointer; font-weight: 600; color: #334; }</style>{%- endblock extra_css -%}
"""


def html_exporter(show_code: bool = False):
    import jinja2
    from nbconvert import HTMLExporter

    loader = jinja2.DictLoader({"gradflow.html.j2": _OFFLINE_TEMPLATE})
    exporter = HTMLExporter(template_name="lab", extra_loaders=[loader], template_file="gradflow.html.j2",
                            embed_images=True)
    exporter.exclude_input = not show_code
    exporter.exclude_input_prompt = not show_code
    exporter.exclude_output_prompt = True
    return exporter
