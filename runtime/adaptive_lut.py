"""Image-adaptive colour looks in the runtime: each photo gets its own 3D LUT (numpy only).

An image-adaptive colour generator (``train/models/colour.py`` with ``adaptive = K > 0``) looks
at a 32x32 thumbnail of the whole photo and predicts ``[K basis weights, 3 gain, 3 offset]``;
one ``.cube`` can hold only one such mix. A bundle exported from such a model therefore also
carries ``look_adaptive.npz`` (artifact ``lut_adaptive``): plain float32 arrays, no pickle, of
the thumbnail network and the parts of the colour function. Per photo the runtime

1. averages the photo down to the thumbnail with the bins of torch's
   ``F.interpolate(mode="area")`` (``adaptive_avg_pool2d``: output row ``i`` averages input
   rows ``floor(i*H/T)`` to ``ceil((i+1)*H/T)``, the same for columns);
2. runs the tiny CNN from the layer list in the manifest (``conv2d``, ``leaky_relu``,
   ``global_avg_pool``, ``flatten``, ``linear``) on the thumbnail in [-1, 1];
3. evaluates the colour function on the ``S^3`` lattice (``bake_size`` in the manifest, 33 or
   more): ``u -> u * (1 + 0.5 tanh(gain)) + 0.2 tanh(offset) -> pre-curves -> matrix + bias ->
   + trilinear(base + sum_k w_k basis_k) -> post-curves -> clip to [0, 1]``;
4. applies that LUT at full resolution, as the ``.cube`` path does.

Export evaluates this numpy copy against torch on held-out photos and refuses below 40 dB, so a
change in the model's colour function cannot ship silently (``function`` in the manifest names
the version; an unknown one is refused here).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from styleforge.runtime import bundle_files
from styleforge.runtime import lut as rlut
from styleforge.runtime.contract import Artifact, BundleError, Manifest
from styleforge.runtime.lut_stylizer import LutStylizer
from styleforge.runtime.stylizer_base import checked_rgb

ADAPTIVE_KEY, ADAPTIVE_FILE, ADAPTIVE_FORMAT = "lut_adaptive", "look_adaptive.npz", "adaptive-lut"
FUNCTION = "styleforge.colour/v1"  # the colour function below; bump when it changes
GAIN_SCALE, OFFSET_SCALE = 0.5, 0.2  # u * (1 + GAIN_SCALE tanh(gain)) + OFFSET_SCALE tanh(offset)
COLOUR_ARRAYS = ("pre", "post", "matrix", "bias", "lut", "basis")
MAX_NPZ_BYTES = 256 << 20  # the arrays of a colour look are a few MB
TABLE_MIN_PIXELS = 1 << 21  # below ~2 MP, float trilinear per pixel beats building the 256^3 table


class AdaptiveLook:
    """The per-photo colour function of an image-adaptive colour generator, in numpy.

    ``arrays``: float32 ``pre``/``post`` ``[3, knots]`` curve values, ``matrix [3, 3]``, ``bias [3]``,
    ``lut [3, S, S, S]`` and ``basis [K, 3, S, S, S]`` lattices indexed ``[c, b, g, r]``, and the
    predictor's weights named in ``layers``. ``layers``: the predictor, one dict per layer.
    """

    def __init__(self, arrays: dict[str, np.ndarray], layers: list[dict[str, Any]], thumbnail: int = 32):
        missing = [k for k in COLOUR_ARRAYS if k not in arrays]
        if missing:
            raise BundleError(f"adaptive LUT: missing array(s) {', '.join(missing)}")
        self.arrays = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        self.layers = list(layers)
        self.thumbnail_size = int(thumbnail)
        a = self.arrays
        size = a["lut"].shape[-1]
        self.basis_count = int(a["basis"].shape[0])
        if (a["pre"].shape[0] != 3 or a["post"].shape[0] != 3 or a["matrix"].shape != (3, 3) or a["bias"].shape != (3,)
                or a["lut"].shape != (3, size, size, size) or a["basis"].shape[1:] != (3, size, size, size)):
            raise BundleError("adaptive LUT: array shapes do not fit the colour function "
                              f"({ {k: list(a[k].shape) for k in COLOUR_ARRAYS} })")
        for layer in self.layers:
            for name in (layer.get("weight"), layer.get("bias")):
                if name is not None and name not in a:
                    raise BundleError(f"adaptive LUT: layer {layer.get('op')!r} needs array {name!r}, not in the file")
            if layer.get("op") not in _LAYERS:
                raise BundleError(f"adaptive LUT: unknown predictor layer {layer.get('op')!r} "
                                  f"(this runtime knows {', '.join(_LAYERS)})")

    @classmethod
    def load(cls, path: Path, spec: dict[str, Any], data: Optional[bytes] = None) -> AdaptiveLook:
        """Read ``look_adaptive.npz`` (no pickle) with the artifact's ``extra`` as ``spec``;
        ``data``: the file's bytes, already verified (then ``path`` only names it)."""
        if spec.get("function") != FUNCTION:
            raise BundleError(f"{path}: colour function {spec.get('function')!r} is not {FUNCTION!r} "
                              f"(exported by another styleforge version)")
        try:
            source = io.BytesIO(data) if data is not None else path
            with zipfile.ZipFile(source) as z:  # the arrays' sizes before numpy allocates them
                unpacked = sum(info.file_size for info in z.infolist())
            if unpacked > MAX_NPZ_BYTES:
                raise BundleError(f"{path}: the arrays unpack to {unpacked >> 20} MiB, over {MAX_NPZ_BYTES >> 20} MiB")
            if data is not None:
                source = io.BytesIO(data)
            with np.load(source, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
            raise BundleError(f"{path}: not a readable .npz of plain arrays ({err})") from None
        return cls(arrays, spec.get("predictor", []), int(spec.get("thumbnail", 32)))

    # -- the prediction --------------------------------------------------------------------------

    def thumbnail(self, rgb: np.ndarray) -> np.ndarray:
        """uint8/uint16 ``[H, W, 3]`` (or float in [0, 1]) -> float32 ``[3, T, T]`` in [0, 1], box
        averages over torch's ``area`` bins (float64 sums, one pass over the photo)."""
        rgb = np.asarray(rgb)
        scale = {np.dtype(np.uint8): 1.0 / 255.0, np.dtype(np.uint16): 1.0 / 65535.0}.get(rgb.dtype, 1.0)
        t = self.thumbnail_size
        rows = np.stack([rgb[a:b].sum(axis=0, dtype=np.float64) / (b - a) for a, b in _area_bins(rgb.shape[0], t)])
        thumb = np.stack([rows[:, a:b].sum(axis=1) / (b - a) for a, b in _area_bins(rgb.shape[1], t)], axis=1)
        return (thumb * scale).astype(np.float32).transpose(2, 0, 1)  # [T, T, 3] -> [3, T, T]

    def params(self, rgb: np.ndarray) -> np.ndarray:
        """The photo's ``[K + 6]`` parameters: K basis weights, 3 gain, 3 offset (before tanh)."""
        return self.predict(self.thumbnail(rgb))

    def predict(self, thumb: np.ndarray) -> np.ndarray:
        """``[K + 6]`` parameters of a float32 ``[3, T, T]`` thumbnail in [0, 1] (:meth:`thumbnail`)."""
        x = np.asarray(thumb, dtype=np.float32) * np.float32(2.0) - np.float32(1.0)
        for layer in self.layers:
            x = _LAYERS[layer["op"]](x, layer, self.arrays)
        x = np.asarray(x, dtype=np.float32).reshape(-1)
        if x.shape != (self.basis_count + 6,):
            raise BundleError(f"adaptive LUT: the predictor gives {x.shape[0]} values, expected {self.basis_count + 6}")
        return x

    # -- the colour function ---------------------------------------------------------------------

    def colour(self, rgb01: np.ndarray, params: Optional[np.ndarray] = None) -> np.ndarray:
        """float ``[M, 3]`` in [0, 1] -> float32 ``[M, 3]`` in [0, 1] (``params`` None: the base transform)."""
        a, k = self.arrays, self.basis_count
        y = np.asarray(rgb01, dtype=np.float32).reshape(-1, 3)
        lattice = a["lut"]
        if params is not None:
            p = np.asarray(params, dtype=np.float32).reshape(-1)
            gain, offset = p[k : k + 3], p[k + 3 : k + 6]
            y = y * (np.float32(1.0) + np.float32(GAIN_SCALE) * np.tanh(gain)) + np.float32(OFFSET_SCALE) * np.tanh(offset)
            lattice = lattice + np.tensordot(p[:k], a["basis"], axes=1)
        y = _curves(a["pre"], y)
        y = y @ a["matrix"].T + a["bias"]
        y = y + rlut.trilinear(np.ascontiguousarray(lattice.transpose(3, 2, 1, 0)), y)  # [c,b,g,r] -> [r,g,b,c]
        return np.clip(_curves(a["post"], y), 0.0, 1.0)

    def bake(self, params: Optional[np.ndarray], size: int = rlut.DEFAULT_CUBE_SIZE, title: str = "") -> rlut.Lut3D:
        """The colour function for ``params`` sampled on the ``size^3`` lattice (``table[r, g, b]``)."""
        grid = rlut.identity_table(int(size)).reshape(-1, 3)
        return rlut.Lut3D(self.colour(grid, params).reshape(size, size, size, 3), title)

    def lut_for(self, rgb: np.ndarray, size: int = rlut.DEFAULT_CUBE_SIZE) -> rlut.Lut3D:
        """This photo's LUT: its parameters from the thumbnail, baked on ``size^3`` nodes."""
        return self.bake(self.params(rgb), size, "per-photo")


def _area_bins(length: int, out: int) -> list[tuple[int, int]]:
    """torch ``adaptive_avg_pool`` bins: ``[floor(i*L/out), ceil((i+1)*L/out))`` for each output i."""
    return [((i * length) // out, -(-((i + 1) * length) // out)) for i in range(out)]


def _curves(table: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Per-channel piecewise-linear curves ``table [3, knots]`` at ``rgb [M, 3]`` (clipped to [0, 1])."""
    knots = table.shape[1]
    pos = np.clip(rgb, 0.0, 1.0) * np.float32(knots - 1)
    lo = np.minimum(np.floor(pos), knots - 2)
    frac = pos - lo
    idx = lo.astype(np.intp)
    out = np.empty(pos.shape, dtype=np.float32)
    for c in range(3):
        t = table[c]
        out[:, c] = t[idx[:, c]] * (1.0 - frac[:, c]) + t[idx[:, c] + 1] * frac[:, c]
    return out


def _conv2d(x: np.ndarray, layer: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    """``x [C, H, W]`` -> ``[O, Ho, Wo]``: cross-correlation as torch's ``Conv2d`` (zero padding)."""
    weight = arrays[layer["weight"]]  # [O, C, kh, kw]
    o, c, kh, kw = weight.shape
    s, p = int(layer.get("stride", 1)), int(layer.get("padding", 0))
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    ho, wo = (xp.shape[1] - kh) // s + 1, (xp.shape[2] - kw) // s + 1
    cols = np.stack([xp[:, i : i + s * (ho - 1) + 1 : s, j : j + s * (wo - 1) + 1 : s]
                     for i in range(kh) for j in range(kw)], axis=1)  # [C, kh*kw, Ho, Wo]
    out = weight.reshape(o, -1) @ cols.reshape(c * kh * kw, -1)
    if layer.get("bias") is not None:
        out = out + arrays[layer["bias"]][:, None]
    return out.reshape(o, ho, wo)


def _linear(x: np.ndarray, layer: dict[str, Any], arrays: dict[str, np.ndarray]) -> np.ndarray:
    out = arrays[layer["weight"]] @ x.reshape(-1)
    return out + arrays[layer["bias"]] if layer.get("bias") is not None else out


_LAYERS: dict[str, Callable[[np.ndarray, dict[str, Any], dict[str, np.ndarray]], np.ndarray]] = {
    "conv2d": _conv2d,
    "leaky_relu": lambda x, layer, _: np.where(x >= 0, x, x * np.float32(layer.get("slope", 0.01))),
    "relu": lambda x, layer, _: np.maximum(x, 0),
    "global_avg_pool": lambda x, layer, _: x.mean(axis=(1, 2), keepdims=True),  # [C, H, W] -> [C, 1, 1]
    "flatten": lambda x, layer, _: x.reshape(-1),
    "linear": _linear,
}


# ------------------------------------------------------------------------------ the Stylizer


class AdaptiveLutStylizer(LutStylizer):
    """A :class:`LutStylizer` that bakes a LUT per photo (``stylize``, ``stylize_file``, 16-bit:
    as the ``.cube`` path). ``last_lut`` / ``last_params``: those of the last photo."""

    def __init__(self, look: AdaptiveLook, artifact: Artifact, manifest: Manifest, bundle_dir: Path,
                 threads: Optional[int] = None):
        self.look = look
        self.bake_size = int(artifact.extra.get("bake_size", rlut.DEFAULT_CUBE_SIZE))
        super().__init__(rlut.Lut3D.identity(self.bake_size), artifact, manifest, bundle_dir, threads)
        self.last_lut: Optional[rlut.Lut3D] = None
        self.last_params: Optional[np.ndarray] = None

    @classmethod
    def from_manifest(cls, bundle: Path, manifest: Manifest, key: str = ADAPTIVE_KEY,
                      threads: Optional[int] = None, verify: bool = True) -> AdaptiveLutStylizer:
        artifact, data = bundle_files.artifact_bytes(bundle, manifest, key, verify)
        look = AdaptiveLook.load(Path(bundle) / artifact.file, artifact.extra, data)
        return cls(look, artifact, manifest, Path(bundle), threads)

    def lut_for(self, rgb: np.ndarray) -> rlut.Lut3D:
        """The LUT this photo gets (uint8/uint16 ``[H, W, 3]``)."""
        return self.look.lut_for(rgb, self.bake_size)

    def stylize_rgb(self, rgb: np.ndarray, strength: float = 1.0,
                    on_tile: Optional[Callable[[], None]] = None) -> np.ndarray:
        """uint8 (or uint16) ``[H, W, 3]`` RGB -> the same, through this photo's own LUT."""
        rgb = checked_rgb(rgb, strength)
        if strength == 0.0 or rgb.size == 0:
            return rgb.copy()
        self.last_params = self.look.params(rgb)
        self.last_lut = self.look.bake(self.last_params, self.bake_size, "per-photo")
        out = apply_lut(self.last_lut, rgb, strength, self.applier.threads)
        if on_tile is not None:
            on_tile()
        return out

    def info(self) -> dict[str, Any]:
        return {**super().info(), "adaptive": True, "lut_size": self.bake_size,
                "per_photo": f"{self.look.basis_count} basis LUTs mixed from a {self.look.thumbnail_size}x"
                             f"{self.look.thumbnail_size} thumbnail, baked {self.bake_size}^3 per photo"}

    def __repr__(self) -> str:
        return f"AdaptiveLutStylizer({self.bundle_dir}, per-photo {self.bake_size}^3 LUT)"


def apply_lut(lut: rlut.Lut3D, rgb: np.ndarray, strength: float = 1.0, threads: Optional[int] = None) -> np.ndarray:
    """One photo through its own LUT: 8-bit photos under :data:`TABLE_MIN_PIXELS` by float
    trilinear per pixel (building the 256^3 table would cost more), others by :class:`LutApplier`."""
    if rgb.dtype == np.uint8 and rgb.shape[0] * rgb.shape[1] < TABLE_MIN_PIXELS:
        return _apply_float_u8(lut.blend(strength), rgb)
    applier = rlut.LutApplier(lut, threads)
    try:
        return applier.apply(rgb, strength)
    finally:
        applier.close()


def _apply_float_u8(lut: rlut.Lut3D, rgb: np.ndarray) -> np.ndarray:
    """uint8 ``[H, W, 3]`` through ``lut`` by float32 trilinear per pixel, rounded once (the value
    the 256^3 table would hold), in strips so memory stays small."""
    out = np.empty_like(rgb)
    height, width = rgb.shape[:2]
    rows = max(1, rlut.STRIP_PIXELS // max(1, width))
    for y0 in range(0, height, rows):
        part = rgb[y0 : y0 + rows].reshape(-1, 3).astype(np.float32) * np.float32(1.0 / 255.0)
        out[y0 : y0 + rows] = np.clip(np.rint(lut(part) * 255.0), 0, 255).astype(np.uint8).reshape(-1, width, 3)
    return out
