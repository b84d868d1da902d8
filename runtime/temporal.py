"""Temporal smoothing of per-frame look parameters, so an image-adaptive look does not flicker.

An image-adaptive LUT bundle predicts ``[K + 6]`` parameters per photo from a 32x32 thumbnail
(:mod:`~styleforge.runtime.adaptive_lut`). Run per frame, small changes of the thumbnail (noise,
codec blocks, a passing hand) move those parameters, and the whole frame's colours with them.
:class:`ParamSmoother` keeps an exponential moving average of the parameters over time
(time constant ``tau`` seconds, whatever the frame rate) and restarts it at a scene cut, where
the thumbnail changes at once by more than ``cut`` (mean absolute difference in [0, 1]), so a
new scene gets its own look at once instead of fading in from the last one. numpy only.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

DEFAULT_TAU_S = 0.5  # seconds: slow enough to hide frame-to-frame jitter, fast enough for a pan
CUT_THRESHOLD = 0.12  # mean |thumbnail difference| in [0, 1] above which a frame starts a new scene


def ema_weight(fps: float, tau_s: float) -> float:
    """The weight of the new frame in the average: ``1 - exp(-1 / (fps * tau))`` (1 = no smoothing)."""
    if tau_s <= 0 or fps <= 0:
        return 1.0
    return 1.0 - math.exp(-1.0 / (fps * tau_s))


class ParamSmoother:
    """``update(params, thumbnail)`` -> the smoothed float32 parameters for this frame.

    ``params``: float ``[P]``; ``thumbnail``: float ``[3, T, T]`` in [0, 1] (for cut detection;
    None skips it). ``cuts``: how many scene cuts restarted the average.
    """

    def __init__(self, fps: float, tau_s: float = DEFAULT_TAU_S, cut: float = CUT_THRESHOLD):
        self.weight = ema_weight(fps, tau_s)
        self.cut = float(cut)
        self.cuts = 0
        self._mean: Optional[np.ndarray] = None
        self._thumb: Optional[np.ndarray] = None

    def update(self, params: np.ndarray, thumbnail: Optional[np.ndarray] = None) -> np.ndarray:
        params = np.asarray(params, dtype=np.float32)
        cut = False
        if thumbnail is not None:
            thumbnail = np.asarray(thumbnail, dtype=np.float32)
            if self._thumb is not None and float(np.abs(thumbnail - self._thumb).mean()) > self.cut:
                cut = True
                self.cuts += 1
            self._thumb = thumbnail
        if self._mean is None or cut or self.weight >= 1.0:
            self._mean = params.copy()
        else:
            self._mean = self._mean + np.float32(self.weight) * (params - self._mean)
        return self._mean.copy()


def frame_changes(series: list[np.ndarray]) -> dict[str, float]:
    """Frame-to-frame change of a series of equal-shape arrays: mean and max over frame pairs of
    the mean absolute difference, and the largest single-element jump."""
    if len(series) < 2:
        return {"mean": 0.0, "p95": 0.0, "max": 0.0, "max_element": 0.0}
    diffs = [np.abs(np.asarray(b, np.float64) - np.asarray(a, np.float64)) for a, b in zip(series, series[1:])]
    means = np.array([d.mean() for d in diffs])
    return {"mean": float(means.mean()), "p95": float(np.percentile(means, 95)), "max": float(means.max()),
            "max_element": float(max(d.max() for d in diffs))}
