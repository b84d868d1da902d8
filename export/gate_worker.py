"""The export gate's child process: stylize held-out crops with one artifact, as ``stylize`` would.

Run by :func:`styleforge.export.verify.artifact_pixels` as
``python -m styleforge.export.gate_worker --spec JSON``; prints one JSON line on stdout and
writes the pixels to ``spec["output"]`` (``.npy``). Only the torch-free runtime is imported
here (plus the backend's own library), so the gate measures exactly what
``styleforge.runtime.Stylizer`` produces for a user, and a native crash of the interpreter
(LiteRT aborting on a degenerate model) kills this process, not ``styleforge export``.

Spec keys: ``model`` (path), ``artifact`` (an :class:`Artifact` dict with ``key``),
``backend`` (a ``styleforge.runtime.backends`` name), ``stride``, ``threads``, ``inputs``
(``.npy``, uint8 ``[N, H, W, 3]`` crops of the artifact's input size), ``output`` (``.npy``,
float32 ``[N, H, W, 3]`` pixel values in [0, 255], not rounded), ``derive_specs`` (build the
artifact's input/output :class:`TensorSpec` from what the interpreter reports: TFLite, whose
quantisation is only known once converted), ``list_ops`` (TFLite: also return the op counts and,
for ``int8``, the float leftovers, from LiteRT's builtin kernels; so ``export`` itself never
loads a TFLite model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional


def _reported_spec(details: dict[str, Any], layout: str):
    """A TensorSpec from ``Backend.input_details()``/``output_details()`` (static shape, [-1, 1])."""
    from styleforge.runtime.contract import TensorSpec

    quantized = details["dtype"] in ("int8", "uint8")
    return TensorSpec(
        name=details["name"], shape=tuple(int(d) for d in details["shape"]), dtype=details["dtype"],
        layout=layout, value_range=(-1.0, 1.0),
        scale=details["scale"] if quantized else None, zero_point=details["zero_point"] if quantized else None,
    )


def stylize_crops(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the artifact with the runtime's backend and stylize every crop through ``Stylizer``."""
    import dataclasses

    import numpy as np

    from styleforge.runtime.backends import BackendOptions, load_backend
    from styleforge.runtime.contract import Artifact, Manifest
    from styleforge.runtime.model_stylizer import ModelStylizer

    artifact = Artifact.from_dict(spec["artifact"]["key"], spec["artifact"])
    facts: dict[str, Any] = {}
    if spec.get("list_ops"):  # builtin kernels, no XNNPACK: they check the model more strictly
        from styleforge.export import ops_report

        facts["ops"] = ops_report.tflite_ops(Path(spec["model"]))
        if artifact.precision == "int8":
            facts["float_leftovers"] = ops_report.tflite_float_leftovers(Path(spec["model"]))
    backend = load_backend(spec["backend"], spec["model"], artifact, BackendOptions(threads=spec.get("threads")))
    if spec.get("derive_specs"):
        layout = artifact.input.layout
        artifact = dataclasses.replace(artifact, input=_reported_spec(backend.input_details(), layout),
                                       output=_reported_spec(backend.output_details(), layout))
    crops = np.load(spec["inputs"])
    # A manifest of this one artifact: the bundle's own is written only after the gate passes.
    manifest = Manifest(name="gate", style="", artifacts={artifact.key: artifact},
                        model={"stride": int(spec.get("stride") or 1)})
    h, w = crops.shape[1:3]
    stylizer = ModelStylizer(backend, artifact, manifest, Path(spec["model"]).parent,
                             tile=None if artifact.input.height else max(h, w))
    out = np.stack([stylizer.stylize_unrounded(crop) for crop in crops])
    np.save(spec["output"], out.astype(np.float32, copy=False))
    return {"input": artifact.input.to_dict(), "output": artifact.output.to_dict(),
            "backend_info": backend.info(), **facts}


def main(argv: Optional[list[str]] = None) -> int:
    from styleforge.subproc import die_with_parent

    die_with_parent()
    parser = argparse.ArgumentParser(prog="python -m styleforge.export.gate_worker")
    parser.add_argument("--spec", required=True, help="JSON object (see the module doc)")
    spec = json.loads(parser.parse_args(argv).spec)
    try:
        result = {"status": "ok", **stylize_crops(spec)}
        code = 0
    except Exception as err:  # reported by the parent with the artifact's name
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        result, code = {"status": "error", "error": f"{type(err).__name__}: {first}"}, 1
    print(json.dumps(result), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
