"""The layer order of styleforge's modules, ground to roof: the one place it is written down.

A module may import modules of its own layer and of any layer below it, never above:
``tests/test_layering.py`` parses every module (module-level and function-level imports) and
fails on an import that points up, and on any file-level import cycle. Heavy third-party
libraries (torch, tensorflow, onnx2tf, coremltools, scipy) may be imported inside functions;
ruff's banned-import rule (TID251, ``pyproject.toml``) keeps torch and tensorflow out of
``runtime/`` and ``styleforge/photo/`` altogether.

Folders are layers: each layer is one package prefix, and a module belongs to the layer of its
longest matching prefix. The design card's folders install as packages (``train/`` as
``styleforge.train``, ``data/`` as ``styleforge.photo.data``, ...). ``styleforge/`` itself holds
only the two ends: its own modules (``errors``, ``atomic``, ``progress``, ...) are the ground, and
the ``styleforge.cli`` package (the command line and the demo) is the roof, entered through the
``python -m styleforge`` shim :data:`ENTRY_POINT`. A new sub-package of ``styleforge/`` must be
given a layer here (a test fails until it is).
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, str], ...] = (
    # leaf utilities: errors, atomic files, progress bars, child processes, CLI value parsing
    ("ground", "styleforge"),
    # the torch-free runtime: numpy + Pillow + one interpreter
    ("runtime", "styleforge.runtime"),
    # photos: the album and corpus, scene splits, looks, classical transfer, the evidence start,
    # datasets on disk, the degeneracy verdict
    ("photo", "styleforge.photo"),
    # learning: models, objectives, the training loop, distillation (torch)
    ("train", "styleforge.train"),
    # ONNX / TFLite / Core ML / .cube export and the fidelity gate
    ("export", "styleforge.export"),
    # benchmarks and evaluation (eval-looks, learning curves) and the resumable stages they run
    ("benchmarks", "styleforge.benchmarks"),
    # the command line and the demo
    ("roof", "styleforge.cli"),
)
ENTRY_POINT = "styleforge.__main__"  # ``python -m styleforge``: two lines that call the roof's main


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` (0 = ground) of a dotted module name of ours.

    ``styleforge`` and its own modules (``styleforge.errors``) are the ground; a module inside a
    sub-package (``styleforge.x.y``) needs that sub-package's prefix declared.
    """
    if module == ENTRY_POINT:
        return len(LAYERS) - 1
    best, best_len = None, -1
    for index, (_, prefix) in enumerate(LAYERS):
        if prefix == "styleforge":
            matches = module == prefix or (module.startswith("styleforge.") and module.count(".") == 1)
        else:
            matches = module == prefix or module.startswith(prefix + ".")
        if matches and len(prefix) > best_len:
            best, best_len = index, len(prefix)
    if best is None:
        raise KeyError(f"{module} is not a styleforge module, or its package has no layer")
    return best
