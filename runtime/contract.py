"""The model I/O contract and the bundle manifest: stored once, read by everyone.

Export writes these dataclasses into ``manifest.json``; the runtime and the benchmarks read
them back. Nothing else guesses a model's layout, range or dtype.

Conventions used across styleforge:

- PyTorch generators take and return ``float32`` tensors ``[N, 3, H, W]`` (NCHW), RGB in
  ``[-1, 1]`` (sRGB-encoded values, ``x = pixel / 127.5 - 1``).
- TFLite artifacts are NHWC ``[N, H, W, 3]``; quantized tensors carry ``scale`` and
  ``zero_point`` so that ``real = scale * (q - zero_point)``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from styleforge.atomic import write_text
from styleforge.errors import StyleforgeError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "styleforge-bundle"
MANIFEST_VERSION = 1


class BundleError(StyleforgeError, ValueError):
    """A bundle or manifest that cannot be used: message says what and where."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output tensor."""

    name: str
    shape: tuple[Optional[int], ...]  # e.g. (1, 512, 512, 3); None marks a dynamic dimension
    dtype: str = "float32"  # "float32" | "float16" | "int8" | "uint8"
    layout: str = "NCHW"  # "NCHW" | "NHWC"
    value_range: tuple[float, float] = (-1.0, 1.0)  # range of the *real* (dequantized) values
    color_space: str = "sRGB"
    scale: Optional[float] = None  # quantization: real = scale * (q - zero_point)
    zero_point: Optional[int] = None

    def __post_init__(self) -> None:
        if self.layout not in ("NCHW", "NHWC"):
            raise BundleError(f"tensor {self.name!r}: layout must be NCHW or NHWC, got {self.layout!r}")
        if self.dtype not in ("float32", "float16", "int8", "uint8"):
            raise BundleError(f"tensor {self.name!r}: unsupported dtype {self.dtype!r}")
        if len(self.shape) != 4:
            raise BundleError(f"tensor {self.name!r}: expected a 4-D image tensor, got shape {self.shape}")

    @property
    def height(self) -> Optional[int]:
        return self.shape[1] if self.layout == "NHWC" else self.shape[2]

    @property
    def width(self) -> Optional[int]:
        return self.shape[2] if self.layout == "NHWC" else self.shape[3]

    @property
    def is_quantized(self) -> bool:
        return self.dtype in ("int8", "uint8")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TensorSpec:
        try:
            return cls(
                name=d["name"],
                shape=tuple(d["shape"]),
                dtype=d.get("dtype", "float32"),
                layout=d.get("layout", "NCHW"),
                value_range=tuple(d.get("value_range", (-1.0, 1.0))),
                color_space=d.get("color_space", "sRGB"),
                scale=d.get("scale"),
                zero_point=d.get("zero_point"),
            )
        except (KeyError, TypeError) as err:
            raise BundleError(f"malformed tensor spec {d!r}: {err}") from None


@dataclass(frozen=True)
class Artifact:
    """One exported model file of a bundle and what is known about it."""

    key: str  # e.g. "onnx", "tflite_fp32", "tflite_fp16", "tflite_dynamic_int8", "tflite_int8", "coreml_fp16"
    file: str  # path relative to the bundle folder
    format: str  # "onnx" | "tflite" | "coreml" | "torchscript"
    precision: str  # "fp32" | "fp16" | "dynamic_int8" | "int8"
    input: TensorSpec
    output: TensorSpec
    size_bytes: int = 0
    sha256: str = ""
    ops: dict[str, int] = field(default_factory=dict)  # op type -> count
    fidelity: dict[str, Any] = field(default_factory=dict)  # psnr, ssim, max_abs, bound_psnr, verified
    compatibility: dict[str, Any] = field(default_factory=dict)  # runtime/delegate -> verdict
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input"] = self.input.to_dict()
        d["output"] = self.output.to_dict()
        return d

    @classmethod
    def from_dict(cls, key: str, d: dict[str, Any]) -> Artifact:
        try:
            return cls(
                key=key,
                file=d["file"],
                format=d["format"],
                precision=d.get("precision", "fp32"),
                input=TensorSpec.from_dict(d["input"]),
                output=TensorSpec.from_dict(d["output"]),
                size_bytes=int(d.get("size_bytes", 0)),
                sha256=d.get("sha256", ""),
                ops=dict(d.get("ops", {})),
                fidelity=dict(d.get("fidelity", {})),
                compatibility=dict(d.get("compatibility", {})),
                extra=dict(d.get("extra", {})),
            )
        except (KeyError, TypeError) as err:
            raise BundleError(f"artifact {key!r}: malformed entry ({err})") from None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of a model bundle.

    ``references`` lists small input/output pairs, paths relative to the bundle:
    ``{"input": "reference/input_000.png", "output": "reference/output_000.png"}`` where both are
    uint8 RGB images of the model's input size and the output is PyTorch fp32's result.
    """

    name: str
    style: str
    artifacts: dict[str, Artifact]
    references: list[dict[str, str]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)  # training run, config, commit, versions
    model: dict[str, Any] = field(default_factory=dict)  # architecture, params, macs, stride
    created: str = ""
    styleforge_version: str = ""
    format: str = MANIFEST_FORMAT
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "name": self.name,
            "style": self.style,
            "created": self.created,
            "styleforge_version": self.styleforge_version,
            "model": self.model,
            "provenance": self.provenance,
            "references": self.references,
            "artifacts": {k: a.to_dict() for k, a in self.artifacts.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        if d.get("format") != MANIFEST_FORMAT:
            raise BundleError(f"not a styleforge bundle manifest (format={d.get('format')!r})")
        if int(d.get("version", 0)) > MANIFEST_VERSION:
            raise BundleError(
                f"manifest version {d.get('version')} is newer than this styleforge understands "
                f"({MANIFEST_VERSION}); upgrade styleforge"
            )
        artifacts = {k: Artifact.from_dict(k, v) for k, v in d.get("artifacts", {}).items()}
        return cls(
            name=d.get("name", ""),
            style=d.get("style", ""),
            artifacts=artifacts,
            references=list(d.get("references", [])),
            provenance=dict(d.get("provenance", {})),
            model=dict(d.get("model", {})),
            created=d.get("created", ""),
            styleforge_version=d.get("styleforge_version", ""),
            format=d["format"],
            version=int(d.get("version", MANIFEST_VERSION)),
        )

    def save(self, bundle_dir: str | os.PathLike) -> Path:
        """Write ``manifest.json`` into ``bundle_dir`` atomically (write temp file, then rename)."""

        return write_text(Path(bundle_dir) / MANIFEST_NAME, json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
