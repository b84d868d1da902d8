"""The layer order of styleforge's modules, ground to roof: the one place it is written down.

A module may import modules of its own layer and of any layer below it, never above:
``tests/test_layering.py`` parses every module (module-level and function-level imports) and
fails on an import that points up, and on any file-level import cycle. Heavy third-party
libraries (torch, tensorflow, onnx2tf, coremltools, scipy) may be imported inside functions;
ruff's banned-import rule (TID251, ``pyproject.toml``) keeps torch and tensorflow out of
``runtime/`` and ``styleforge/photo/`` altogether.

Each layer lists module-name prefixes; a module belongs to the layer of its longest matching
prefix; the bare ``styleforge`` prefix names the package's ``__init__`` alone, so a new module of
``styleforge/`` must be placed in a layer here (a test fails until it is). The folders are the design card's (``train/`` installs as ``styleforge.train``, ...);
the ``styleforge/`` folder holds the ground utilities, the photo-side helpers and the roof.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # leaf utilities: errors, atomic files, progress bars, child processes, CLI value parsing
    ("ground", ("styleforge", "styleforge.errors", "styleforge.atomic", "styleforge.progress",
                "styleforge.subproc", "styleforge.cli_options", "styleforge.layers")),
    # the torch-free runtime: numpy + Pillow + one interpreter
    ("runtime", ("styleforge.runtime",)),
    # photos: the album, scene splits, looks, classical transfer, datasets, the degeneracy judge
    ("photo", ("styleforge.photo", "styleforge.album", "styleforge.scenes", "styleforge.verdict",
               "styleforge.data", "styleforge.corpus", "styleforge.corpus_build")),
    # learning: models, objectives, the training loop, distillation (torch)
    ("train", ("styleforge.train",)),
    # ONNX / TFLite / Core ML / .cube export and the fidelity gate
    ("export", ("styleforge.export",)),
    # benchmarks and evaluation (eval-looks) and the resumable stages they run
    ("benchmarks", ("styleforge.benchmarks", "styleforge.stages")),
    # the command line and the demo
    ("roof", ("styleforge.cli", "styleforge.__main__", "styleforge.demo")),
)


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` (0 = ground) of a dotted module name of ours."""
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            below = prefix != "styleforge" and module.startswith(prefix + ".")
            if (module == prefix or below) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    if best is None:
        raise KeyError(f"{module} is not a styleforge module")
    return best
