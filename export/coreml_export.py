"""PyTorch generator -> Core ML ML program (``.mlpackage``) through coremltools.

coremltools converts a *traced* TorchScript model. Input is float32 ``[1, 3, H, W]`` (NCHW) in
``[-1, 1]`` named ``input``; with ``image_input=True`` it is a Core ML ``ImageType`` (RGB
pixels 0-255, scaled to ``[-1, 1]`` inside the model via ``scale=1/127.5, bias=-1``) so iOS
code can pass a ``CVPixelBuffer`` directly. Output is always a tensor ``output`` in ``[-1, 1]``.

Compute precision: ``fp16`` stores weights and computes in half precision (the Neural Engine's
native type); on some generators this visibly degrades outputs, so both are exported and fp16
is verified like the rest on macOS. Prediction needs macOS; elsewhere the artifact is written
and recorded as not verified.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

from styleforge.errors import StyleforgeError

QUANTIZE_MODES = ("none", "int8", "palettize4", "palettize6")


class CoreMLExportError(StyleforgeError, RuntimeError):
    """coremltools is missing or could not convert the model; the message says why."""


@contextlib.contextmanager
def silenced():
    """coremltools' own output, which says nothing to a user of this tool, kept off the terminal:
    its logger's warnings (versions of torch / TensorFlow it has not tested, the macOS-only
    proxies it cannot load elsewhere) and its per-pass tqdm bars. Errors still raise; the export's
    own stage lines say what runs."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _native_stderr_closed():
    """File descriptor 2 pointed at the null device: TensorFlow's C++ logging writes its import-time
    lines ("All log messages before absl::InitializeLog() ...", oneDNN, CUDA drivers) there
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_coremltools():
    """The ``coremltools`` module, imported :func:`silenced` (coremltools imports TensorFlow when it
    is installed); ImportError when it is missing."""
    if "coremltools" not in sys.modules:
        with silenced(), _native_stderr_closed():
            import coremltools  # noqa: F401
    return sys.modules["coremltools"]


def coreml_available() -> str | None:
    """``None`` when Core ML export can run here, else the reason it cannot."""
    try:
        import_coremltools()
    except Exception as err:  # ImportError, or a broken native extension
        return f"coremltools is not usable here ({type(err).__name__}: {err}); pip install coremltools"
    return None


def can_predict() -> bool:
    return sys.platform == "darwin"


def export_coreml(
    traced_model,
    path: Path,
    size: tuple[int, int],
    precision: str = "fp16",
    quantize: str = "none",
    image_input: bool = False,
) -> Path:
    """Convert a traced generator to an ML program at ``path`` (a ``.mlpackage`` folder)."""
    reason = coreml_available()
    if reason:
        raise CoreMLExportError(reason)
    if quantize not in QUANTIZE_MODES:
        raise CoreMLExportError(f"--coreml-quantize must be one of {', '.join(QUANTIZE_MODES)}")
    ct = import_coremltools()

    h, w = size
    if image_input:  # Core ML scales the pixels itself: the same affine map as pixels_to_range
        from styleforge.runtime.tensors import MODEL_RANGE

        lo, hi = MODEL_RANGE
        inp = ct.ImageType(name="input", shape=(1, 3, h, w), scale=(hi - lo) / 255.0, bias=[lo] * 3,
                           color_layout=ct.colorlayout.RGB)
    else:
        inp = ct.TensorType(name="input", shape=(1, 3, h, w))
    compute = ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32
    try:
        with silenced():
            mlmodel = ct.convert(
                traced_model,
                inputs=[inp],
                outputs=[ct.TensorType(name="output")],
                convert_to="mlprogram",
                compute_precision=compute,
                minimum_deployment_target=ct.target.iOS16,
            )
            mlmodel = _compress(ct, mlmodel, quantize)
    except CoreMLExportError:
        raise
    except Exception as err:  # coremltools raises plain Exceptions/ValueErrors for unsupported ops
        raise CoreMLExportError(f"coremltools could not convert the model: {type(err).__name__}: {err}") from err
    if path.exists():
        shutil.rmtree(path)
    mlmodel.save(str(path))
    return path


def _compress(ct, mlmodel, quantize: str):
    """Weight compression through ``coremltools.optimize.coreml`` (post-training, data-free)."""
    if quantize == "none":
        return mlmodel
    from coremltools.optimize import coreml as cto

    if quantize == "int8":
        op_config = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=op_config))
    nbits = 4 if quantize == "palettize4" else 6
    op_config = cto.OpPalettizerConfig(mode=palettize_mode(), nbits=nbits)
    return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=op_config))


def palettize_mode() -> str:
    """k-means palettes (better) need scikit-learn; without it, a uniform palette."""
    import importlib.util

    return "kmeans" if importlib.util.find_spec("sklearn") else "uniform"


def coreml_ops(path: Path) -> dict[str, int]:
    """MIL op type -> count in the ML program's main function."""
    from collections import Counter

    spec = import_coremltools().utils.load_spec(str(path))
    counts: Counter = Counter()
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                counts[op.type] += 1
    return dict(sorted(counts.items()))
