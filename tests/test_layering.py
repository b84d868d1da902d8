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
        ours = sorted(n for n in _imports(path) if (n == "styleforge" or n.startswith("styleforge."))
                      and not n.startswith("styleforge.errors"))  # the error base is the ground
        assert ours == [], f"{rel} is a leaf module but imports {ours}"


PHOTO_FORBIDDEN = ("torch", "tensorflow", "tf_keras", "styleforge.train", "styleforge.export",
                   "styleforge.benchmarks")
PHOTO_LAZY = ("scipy", "skimage", "colour")  # optional: imported inside the functions that need them


def _module_level_imports(path: Path) -> set[str]:
    """What ``path`` imports when it is imported: everything outside function bodies."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                names.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names.add(child.module)
                names.update(f"{child.module}.{a.name}" for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                raise AssertionError(f"{path}: relative import; write styleforge.photo.<module>")
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return names


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def test_photo_is_torch_free_at_import():
    """styleforge.photo serves runtime, benchmarks, export and train: it imports no train, export
    or benchmarks code, no torch or tensorflow, and scipy / scikit-image / colour-science only
    inside functions, so it imports with numpy + Pillow alone."""
    files = sorted((ROOT / "styleforge" / "photo").rglob("*.py"))
    assert files, "styleforge/photo is missing"
    offenders = {
        str(p.relative_to(ROOT)): bad
        for p in files
        if (bad := sorted(n for n in _module_level_imports(p) if _under(n, PHOTO_FORBIDDEN + PHOTO_LAZY)))
    }
    assert offenders == {}, f"styleforge.photo must import these lazily or not at all: {offenders}"


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
