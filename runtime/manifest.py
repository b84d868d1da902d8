"""The bundle manifest as untrusted input: read it bounded, parse it strictly, validate every field used.

A bundle may come from anywhere (a download, a teammate, a model zoo), so ``manifest.json`` is
checked before anything in it is believed (numpy-free, torch-free):

- the file itself: at most :data:`MAX_MANIFEST_BYTES` (its size is looked at before a byte is
  read), inside the bundle folder (a symlink must resolve there), UTF-8 JSON, an object, and no
  key given twice anywhere (``json`` would silently keep the last one);
- ``format`` is ``styleforge-bundle`` and ``version`` an integer from 1 to
  :data:`~styleforge.runtime.contract.MANIFEST_VERSION`; a newer version is refused with
  "upgrade styleforge";
- every field the runtime or the benchmarks use has its type and range checked (below), and
  every artifact has a relative, normalised ``file``, its ``size_bytes`` and its ``sha256``.
  Keys this version does not know are ignored (a newer exporter may add some).

One :class:`~styleforge.runtime.contract.BundleError` names the bundle, the artifact and the
field: ``BUNDLE: artifact 'tflite_fp16': input.value_range: ...``.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from styleforge.runtime import bundle_files
from styleforge.runtime.contract import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    BundleError,
    Manifest,
)
from styleforge.runtime.lut import CUBE_SIZES

MAX_MANIFEST_BYTES = 8 << 20  # a real manifest is 10-50 KB (ops lists, fidelity figures)
MAX_ARTIFACT_BYTES = 4 << 30  # larger than any mobile model; a bigger size_bytes is a lie or a bomb
MAX_BYTES_BY_FORMAT = {"cube": 64 << 20, "hald": 64 << 20, "adaptive-lut": 256 << 20,  # read whole into memory
                       "recipe": 1 << 20,  # a look recipe: a few dozen numbers of JSON
                       "ffmpeg": 1 << 20}  # a recipe's ffmpeg filtergraph (text; the runtime never runs it)
MAX_EDGE = 16384  # largest fixed tensor height/width accepted
MAX_ABS_RANGE = 65535.0  # value ranges live within 16-bit pixel values
FORMATS = ("tflite", "onnx", "coreml", "torchscript", "cube", "hald", "adaptive-lut", "recipe", "ffmpeg")
PRECISIONS = ("fp32", "fp16", "dynamic_int8", "int8", "uint8")
DTYPES = ("float32", "float16", "int8", "uint8")
LAYOUTS = ("NCHW", "NHWC")
ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}
HALD_LEVELS = range(2, 17)
BAKE_SIZES = range(2, 130)  # lut_adaptive bakes its per-photo LUT at this size
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BundleError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _no_constants(name: str) -> float:
    raise BundleError(f"{name} is not a JSON number")


def strict_json(text: str) -> Any:
    """``json.loads`` for untrusted bundle files: a key given twice in one object and the NaN /
    Infinity constants (which ``json`` accepts) are :class:`BundleError`."""
    return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def read_manifest_json(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """``bundle_dir/manifest.json`` as a dict, read within the limits above (not yet validated)."""
    bundle = Path(bundle_dir)
    if not bundle.exists():
        raise BundleError(f"bundle not found: {bundle}")
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a bundle folder (expected a folder with {MANIFEST_NAME})")
    path = bundle / MANIFEST_NAME
    try:
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise BundleError(f"{bundle} has no {MANIFEST_NAME}: not a styleforge bundle") from None
    if not resolved.is_relative_to(bundle.resolve()):
        raise BundleError(f"{path}: manifest is a link to {resolved}, outside the bundle; refused")
    info = resolved.stat()
    if not stat.S_ISREG(info.st_mode):
        raise BundleError(f"{path}: manifest is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path}: manifest is {info.st_size / 2**20:.0f} MiB, over the limit of "
                          f"{MAX_MANIFEST_BYTES >> 20} MiB; not a styleforge manifest")
    with open(resolved, "rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:  # it grew after the stat
        raise BundleError(f"{path}: manifest is over the limit of {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        data = strict_json(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise BundleError(f"{path}: manifest is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise BundleError(f"{path}: manifest is not valid JSON ({err})") from None
    except RecursionError:
        raise BundleError(f"{path}: manifest nests too deeply to be a styleforge manifest") from None
    except BundleError as err:
        raise BundleError(f"{path}: manifest is refused: {err}") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: manifest must be a JSON object, got {type(data).__name__}")
    return data


# ------------------------------------------------------------------------------ validation


class _Where:
    """Builds the one error message: bundle, artifact, field."""

    def __init__(self, bundle: str, artifact: Optional[str] = None):
        self.bundle, self.artifact = bundle, artifact

    def fail(self, field: str, problem: str) -> BundleError:
        head = f"{self.bundle}: " + (f"artifact {self.artifact!r}: " if self.artifact is not None else "manifest: ")
        return BundleError(f"{head}{field}: {problem}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _short(v: Any) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_relative_path(value: Any, where: _Where, field: str) -> str:
    """A path inside the bundle as the manifest may write it: a non-empty relative POSIX path,
    already normalised (no ``..``, no ``.``, no empty parts, no backslashes, no drive)."""
    if not isinstance(value, str) or not value:
        raise where.fail(field, f"must be a non-empty relative path, got {_short(value)}")
    if "\x00" in value or "\\" in value or ":" in value:
        raise where.fail(field, f"{_short(value)} has a character not allowed in a bundle path (\\, :, NUL)")
    if value.startswith("/"):
        raise where.fail(field, f"{_short(value)} is an absolute path; artifact paths are relative to the bundle")
    parts = value.split("/")
    if any(p in ("", ".", "..") for p in parts) or str(PurePosixPath(value)) != value:
        raise where.fail(field, f"{_short(value)} is not a normalised path inside the bundle (no '..', '.', '//')")
    return value


def _check_tensor(spec: Any, where: _Where, field: str) -> None:
    if not isinstance(spec, dict):
        raise where.fail(field, f"must be a tensor spec object, got {_short(spec)}")
    name = spec.get("name")
    if not isinstance(name, str):
        raise where.fail(f"{field}.name", f"must be a string, got {_short(name)}")
    for key, allowed in (("dtype", DTYPES), ("layout", LAYOUTS)):
        if key not in spec:
            raise where.fail(f"{field}.{key}", f"missing (one of {', '.join(allowed)})")
        if spec[key] not in allowed:
            raise where.fail(f"{field}.{key}", f"{_short(spec[key])} is not one of {', '.join(allowed)}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or len(shape) != 4:
        raise where.fail(f"{field}.shape", f"must be a list of 4 dimensions, got {_short(shape)}")
    for i, d in enumerate(shape):
        if d is not None and not (_is_int(d) and 1 <= d <= MAX_EDGE):
            raise where.fail(f"{field}.shape", f"dimension {i} is {_short(d)}; expected null or 1..{MAX_EDGE}")
    channels = shape[3] if spec["layout"] == "NHWC" else shape[1]
    if shape[0] not in (1, None) or channels not in (3, None):
        raise where.fail(f"{field}.shape", f"{_short(shape)} is not one {spec['layout']} RGB image "
                                           f"(batch 1, 3 channels)")
    vr = spec.get("value_range")
    if not (isinstance(vr, list) and len(vr) == 2 and all(_is_number(v) for v in vr)):
        raise where.fail(f"{field}.value_range", f"must be two finite numbers [lo, hi], got {_short(vr)}")
    lo, hi = vr
    if not lo < hi:
        raise where.fail(f"{field}.value_range", f"[{lo}, {hi}] is degenerate or reversed (needs lo < hi)")
    if max(abs(lo), abs(hi)) > MAX_ABS_RANGE:
        raise where.fail(f"{field}.value_range", f"[{lo}, {hi}] is outside +-{MAX_ABS_RANGE:g}")
    if "color_space" in spec and not isinstance(spec["color_space"], str):
        raise where.fail(f"{field}.color_space", f"must be a string, got {_short(spec['color_space'])}")
    scale, zero_point = spec.get("scale"), spec.get("zero_point")
    if scale is not None or zero_point is not None:
        if spec["dtype"] not in ZERO_POINT_RANGE:
            raise where.fail(f"{field}.scale", f"quantisation parameters on a {spec['dtype']} tensor")
        if not (_is_number(scale) and scale > 0):
            raise where.fail(f"{field}.scale", f"must be a finite number > 0, got {_short(scale)}")
        lo_q, hi_q = ZERO_POINT_RANGE[spec["dtype"]]
        if not (_is_int(zero_point) and lo_q <= zero_point <= hi_q):
            raise where.fail(f"{field}.zero_point", f"must be an integer in [{lo_q}, {hi_q}] for "
                                                   f"{spec['dtype']}, got {_short(zero_point)}")


def _check_extra(art: dict[str, Any], where: _Where) -> None:
    """What the LUT paths read from ``extra``."""
    extra = art.get("extra", {})
    fmt = art["format"]
    if fmt == "cube" and "lut_size" in extra and extra["lut_size"] not in CUBE_SIZES:
        raise where.fail("extra.lut_size", f"{_short(extra['lut_size'])} is not one of {', '.join(map(str, CUBE_SIZES))}")
    if fmt == "hald":
        level = extra.get("hald_level")
        if not (_is_int(level) and level in HALD_LEVELS):
            raise where.fail("extra.hald_level", f"must be an integer {HALD_LEVELS[0]}..{HALD_LEVELS[-1]}, got {_short(level)}")
        if "image" in extra and extra["image"] != [level**3, level**3]:
            raise where.fail("extra.image", f"{_short(extra['image'])} is not a level-{level} HALD "
                                            f"({level**3}x{level**3})")
        if "lattice" in extra and extra["lattice"] != level**2:
            raise where.fail("extra.lattice", f"{_short(extra['lattice'])} is not {level**2} for level {level}")
    if fmt == "adaptive-lut":
        bake = extra.get("bake_size", 33)
        if not (_is_int(bake) and bake in BAKE_SIZES):
            raise where.fail("extra.bake_size", f"must be an integer {BAKE_SIZES[0]}..{BAKE_SIZES[-1]}, got {_short(bake)}")
        thumb = extra.get("thumbnail", 32)
        if not (_is_int(thumb) and 1 <= thumb <= 256):
            raise where.fail("extra.thumbnail", f"must be an integer 1..256, got {_short(thumb)}")
        if not isinstance(extra.get("predictor", []), list) or not all(isinstance(x, dict) for x in extra.get("predictor", [])):
            raise where.fail("extra.predictor", "must be a list of layer objects")


def _check_artifact(key: str, art: Any, where: _Where) -> None:
    if not isinstance(art, dict):
        raise where.fail("entry", f"must be an object, got {_short(art)}")
    check_relative_path(art.get("file"), where, "file")
    if art.get("format") not in FORMATS:
        raise where.fail("format", f"{_short(art.get('format'))} is not a format this runtime knows "
                                   f"({', '.join(FORMATS)})")
    if art.get("precision", "fp32") not in PRECISIONS:
        raise where.fail("precision", f"{_short(art.get('precision'))} is not one of {', '.join(PRECISIONS)}")
    size, limit = art.get("size_bytes"), MAX_BYTES_BY_FORMAT.get(art["format"], MAX_ARTIFACT_BYTES)
    if not (_is_int(size) and 0 < size <= limit):
        raise where.fail("size_bytes", f"must be the file's size in bytes, 1..{limit} for {art['format']}, "
                                       f"got {_short(size)}")
    digest = art.get("sha256")
    if not (isinstance(digest, str) and _SHA256.match(digest)):
        raise where.fail("sha256", f"must be the file's 64-hex-digit sha256, got {_short(digest)} "
                                   "(every artifact file must be hashed)")
    for field in ("input", "output"):
        if field not in art:
            raise where.fail(field, "missing")
        _check_tensor(art[field], where, field)
    for field in ("ops", "fidelity", "compatibility", "extra"):
        if field in art and not isinstance(art[field], dict):
            raise where.fail(field, f"must be an object, got {_short(art[field])}")
    _check_extra(art, where)


def validate_manifest(data: dict[str, Any], bundle: str | os.PathLike = "bundle") -> None:
    """Raise one :class:`BundleError` (bundle, artifact, field) for the first field that is not
    what the runtime needs; return quietly otherwise. Unknown keys are ignored."""
    where = _Where(str(bundle))
    if data.get("format") != MANIFEST_FORMAT:
        raise where.fail("format", f"{_short(data.get('format'))} is not {MANIFEST_FORMAT!r}: not a styleforge bundle manifest")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        raise where.fail("version", f"must be an integer >= 1, got {_short(version)}")
    if version > MANIFEST_VERSION:
        raise where.fail("version", f"{version} is newer than this styleforge understands ({MANIFEST_VERSION}); "
                                    "upgrade styleforge to use this bundle")
    for field in ("name", "style", "created", "styleforge_version"):
        if field in data and not isinstance(data[field], str):
            raise where.fail(field, f"must be a string, got {_short(data[field])}")
    for field in ("model", "provenance"):
        if field in data and not isinstance(data[field], dict):
            raise where.fail(field, f"must be an object, got {_short(data[field])}")
    model = data.get("model", {})
    if "stride" in model and not (_is_int(model["stride"]) and 1 <= model["stride"] <= 1024):
        raise where.fail("model.stride", f"must be an integer 1..1024, got {_short(model['stride'])}")
    if "macs" in model and not (_is_int(model["macs"]) and model["macs"] >= 0):
        raise where.fail("model.macs", f"must be an integer >= 0, got {_short(model['macs'])}")
    refs = data.get("references", [])
    if not isinstance(refs, list):
        raise where.fail("references", f"must be a list, got {_short(refs)}")
    for i, ref in enumerate(refs):
        if not isinstance(ref, dict):
            raise where.fail(f"references[{i}]", f"must be an object with input and output, got {_short(ref)}")
        for side in ("input", "output"):
            check_relative_path(ref.get(side), where, f"references[{i}].{side}")
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise where.fail("artifacts", "the manifest lists no artifacts (expected an object of key -> artifact)")
    files: dict[str, str] = {}
    for key, art in artifacts.items():
        art_where = _Where(str(bundle), key)
        _check_artifact(key, art, art_where)
        if art["file"] in files:
            raise art_where.fail("file", f"{art['file']!r} is also the file of artifact {files[art['file']]!r}; "
                                         "each artifact has its own file")
        files[art["file"]] = key


def load_manifest(bundle_dir: str | os.PathLike, check_files: bool = True) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``; raises :class:`BundleError` with a clear message.

    The manifest is untrusted input: it is read within a size limit and every field the runtime
    uses is validated (this module). ``check_files`` also checks, with
    ``stat`` only, that every artifact file is inside the bundle and has the size the manifest
    says (:func:`styleforge.runtime.bundle_files.check_files`); hashes are checked when a file is read.
    """
    data = read_manifest_json(bundle_dir)
    validate_manifest(data, bundle_dir)
    manifest = Manifest.from_dict(data)
    if check_files:
        bundle_files.check_files(bundle_dir, manifest)
    return manifest
