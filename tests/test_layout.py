"""The README's Layout section names every module of the package, so a reader finds each concept's
one owner there (a new file that is not listed fails here)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _layout() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Layout", 1)[1].split("\n## ", 1)[0]


def test_every_module_is_in_the_readme_layout():
    layout = _layout()
    # a folder line may name its modules in words ("commands/  train, runs, ..."), the others by file name
    folders = dict(re.findall(r"^\s+(\w+)/\s+(.*)$", layout, flags=re.M))
    missing = []
    for path in sorted((ROOT / "gradflow").rglob("*.py")):
        rel = path.relative_to(ROOT / "gradflow")
        if path.name == "__init__.py" and rel.parent.name in folders and rel.parent.name != "diagnose":
            continue  # a package's __init__ is its folder line
        listed = re.search(rf"^\s+{re.escape(path.name)}\s", layout, flags=re.M)
        named_in_folder = len(rel.parts) == 2 and re.search(rf"\b{path.stem}\b", folders.get(rel.parts[0], ""))
        if not (listed or named_in_folder):
            missing.append(str(rel))
    assert not missing, f"add these to the README's Layout section: {missing}"
