"""Import layering: every import of ours points down the order of ``styleforge.layers``; no cycles.

The analysis parses every module of the package (module-level and function-level imports, as the
files are, without importing them), maps each to its layer and checks two things: no import
points to a higher layer, and the graph of file-level imports has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from styleforge.layers import LAYERS, layer_of

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"styleforge": "styleforge", "train": "styleforge.train", "export": "styleforge.export",
           "runtime": "styleforge.runtime", "benchmarks": "styleforge.benchmarks",
           "data": "styleforge.photo.data"}


def module_sources(root: Path = ROOT) -> dict[str, str]:
    """``{dotted module name: source}`` of every module of the package under ``root``."""
    sources = {}
    for folder, package in FOLDERS.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(root / folder).with_suffix("").parts if p != "__init__"]
            sources[".".join([package, *parts])] = path.read_text()
    return sources


def own_imports(sources: dict[str, str]) -> list[tuple[str, str, int, bool]]:
    """``(importer, imported module, line, at module level)`` for every import of ours."""

    def resolve(name: str) -> str:
        while name not in sources and "." in name:
            name = name.rpartition(".")[0]
        return name

    found = []
    for module, text in sources.items():
        def visit(node: ast.AST, top: bool, module: str = module) -> None:
            for child in ast.iter_child_nodes(node):
                inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    assert child.level == 0, f"{module}:{child.lineno}: relative import; write styleforge.<...>"
                    names = [f"{child.module}.{a.name}" for a in child.names]
                for name in names:
                    if name == "styleforge" or name.startswith("styleforge."):
                        found.append((module, resolve(name), child.lineno, inner))
                visit(child, inner)
        visit(ast.parse(text, module), True)
    return found


def upward_imports(sources: dict[str, str]) -> list[str]:
    name = [layer for layer, _ in LAYERS]
    return [f"{src}:{line} imports {dst} ({name[layer_of(src)]} -> {name[layer_of(dst)]})"
            for src, dst, line, _ in own_imports(sources) if layer_of(dst) > layer_of(src)]


def import_cycles(sources: dict[str, str]) -> list[list[str]]:
    """The strongly connected groups of more than one module in the file-level import graph."""
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for src, dst, _, _ in own_imports(sources):
        if dst != src:
            graph[src].add(dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            connect(v)
    return cycles


def test_every_module_has_a_layer():
    for module in module_sources():
        layer_of(module)


def test_no_import_points_up():
    assert upward_imports(module_sources()) == []


def test_no_file_level_import_cycle():
    assert import_cycles(module_sources()) == []


def test_the_check_fails_on_a_planted_upward_import_and_cycle():
    sources = module_sources()
    sources["styleforge.runtime.lut"] += "\n\ndef planted():\n    from styleforge.train.config import TrainConfig\n"
    assert upward_imports(sources) == [
        f"styleforge.runtime.lut:{sources['styleforge.runtime.lut'].count(chr(10))} imports "
        "styleforge.train.config (runtime -> train)"]
    sources = module_sources()
    sources["styleforge.errors"] += "\nimport styleforge.atomic\n"
    sources["styleforge.atomic"] += "\nimport styleforge.errors\n"
    assert ["styleforge.atomic", "styleforge.errors"] in import_cycles(sources)


def test_no_area_imports_the_top_level_cli():
    roof = layer_of("styleforge.cli")
    offenders = [f"{src}:{line}" for src, dst, line, _ in own_imports(module_sources())
                 if dst.split(".")[:2] == ["styleforge", "cli"] and layer_of(src) != roof]
    assert offenders == [], "import CLIError from styleforge.errors instead"


def test_folders_are_layers():
    """One package prefix a layer; ``styleforge/`` holds only ground modules, the roof package
    (``cli/``) and the photo layer's package; a module in an undeclared sub-package has no layer."""
    assert all(isinstance(prefix, str) for _, prefix in LAYERS)
    names = [name for name, _ in LAYERS]
    root = ROOT / "styleforge"
    packages = sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())
    assert packages == ["cli", "photo"]
    for path in root.glob("*.py"):
        module = f"styleforge.{path.stem}"
        assert names[layer_of(module)] in ("ground", "roof"), module
    assert names[layer_of("styleforge.photo.album")] == "photo"
    assert names[layer_of("styleforge.cli.demo")] == "roof"
    assert names[layer_of("styleforge.benchmarks.stages")] == "benchmarks"
    with pytest.raises(KeyError):
        layer_of("styleforge.newpackage.module")


PHOTO_FORBIDDEN = ("torch", "tensorflow", "tf_keras")
PHOTO_LAZY = ("scipy", "skimage", "colour")  # optional: imported inside the functions that need them


def _module_level_imports(text: str) -> set[str]:
    """What a module imports when it is imported: everything outside function bodies."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                names.update(a.name for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                names.add(child.module)
            visit(child)

    visit(ast.parse(text))
    return names


@pytest.mark.parametrize("package", ["styleforge.photo", "styleforge.runtime"])
def test_photo_and_runtime_are_torch_free_at_import(package):
    """runtime and photo import with numpy + Pillow alone: no torch or tensorflow anywhere, and
    scipy / scikit-image / colour-science only inside functions."""
    offenders = {}
    for module, text in module_sources().items():
        if module == package or module.startswith(package + "."):
            bad = sorted(n for n in _module_level_imports(text)
                         if any(n == p or n.startswith(p + ".") for p in PHOTO_FORBIDDEN + PHOTO_LAZY))
            if bad:
                offenders[module] = bad
    assert offenders == {}, f"import these lazily or not at all: {offenders}"


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
