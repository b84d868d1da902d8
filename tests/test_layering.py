"""Import layering: leaf utilities import nothing of ours; areas never import the top-level CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREAS = ("train", "export", "runtime", "benchmarks")
LEAVES = ("styleforge/atomic.py", "styleforge/progress.py", "styleforge/errors.py",
          "styleforge/subproc.py", "runtime/imageio.py", "runtime/pixels.py")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_area_imports_the_top_level_cli():
    offenders = [
        str(p.relative_to(ROOT))
        for area in AREAS
        for p in sorted((ROOT / area).rglob("*.py"))
        if any(n == "styleforge.cli" or n.startswith("styleforge.cli.") for n in _imports(p))
    ]
    assert offenders == [], "import CLIError from styleforge.errors instead"


def test_leaf_modules_import_nothing_of_ours():
    for rel in LEAVES:
        path = ROOT / rel
        if not path.exists():
            continue
        ours = sorted(n for n in _imports(path) if n == "styleforge" or n.startswith("styleforge."))
        assert ours == [], f"{rel} is a leaf module but imports {ours}"


def test_cli_error_is_one_class():
    from styleforge.cli import CLIError as from_cli
    from styleforge.errors import CLIError

    assert from_cli is CLIError


def test_replacing_writes_all_or_nothing(tmp_path):
    from styleforge.atomic import replacing

    target = tmp_path / "out.png"
    target.write_text("old")
    try:
        with replacing(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    with replacing(target) as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path  # writers may pick the format from it
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
