"""Synthetic DCE-MRI time-intensity curves with the three kinetic types radiologists read.

Dynamic contrast-enhanced MRI (动态增强 MRI) images a lesion repeatedly while contrast agent flows in
and out; the relative signal enhancement over time is the lesion's kinetic curve. Breast MRI reading
(BI-RADS) describes it in two parts:

- the initial phase (first ~2 minutes after the agent arrives): slow or fast wash-in;
- the delayed phase: type I persistent (keeps rising, > +10 %), type II plateau (within ±10 %),
  type III washout (falls, < -10 %), the last the most suspicious for malignancy.

Each curve follows the empirical mathematical model of Fan et al. (2004),

    E(t) = A (1 - exp(-alpha tau)) exp(-beta tau),   tau = max(t - onset, 0)   [minutes]

(A: amplitude, alpha: wash-in rate, beta: washout rate; beta < 0 rises, beta > 0 washes out), seen
through magnitude-MR (Rician) noise. The kinetic label is decided by the clinical rule on the
noise-free curve: change from 2 min after onset to the last time point, relative to the value at
2 min, above +10 % is persistent, below -10 % washout, otherwise plateau.

    from mediag.data.dce import generate_curves
    ds = generate_curves(300, seed=0, length=32)   # 32 time points each
    X = ds.as_array()                              # (300, 32, 1) float64
    ds.labels                                      # (300,) 0 persistent, 1 plateau, 2 washout
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the delayed-phase kinetic types, in label order
KINETICS = ("persistent", "plateau", "washout")
#: the initial-phase (wash-in) classes, in `uptake` label order
UPTAKE = ("slow", "fast")

# delayed-phase change (last point vs 2 min after onset, relative) drawn for each kinetic type;
# margins around the ±10 % thresholds keep the classes readable through the noise
_CHANGE = {0: (0.15, 0.60), 1: (-0.07, 0.07), 2: (-0.50, -0.15)}
# wash-in rate alpha [1/min] ranges for slow and fast initial phase (a gap keeps the classes apart)
_ALPHA = {0: (0.5, 1.0), 1: (2.5, 6.0)}


@dataclass
class DceSet:
    """Curves and their ground truth. Curve k is `curves[k]` sampled at `times[k]` (minutes)."""

    times: list[np.ndarray]
    curves: list[np.ndarray]
    labels: np.ndarray  # (n,) int64, index into KINETICS (delayed phase, the clinical rule)
    uptake: np.ndarray  # (n,) int64, index into UPTAKE (initial phase)
    params: list[dict] = field(default_factory=list)  # A, alpha, beta, onset, noise, dt, duration

    def __len__(self) -> int:
        return len(self.curves)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(c) for c in self.curves], dtype=np.int64)

    def as_array(self) -> np.ndarray:
        """The curves as one (n, T, 1) float64 array (all curves must have the same length T)."""
        lengths = set(self.lengths.tolist())
        if len(lengths) > 1:
            raise ValueError(
                f"DceSet.as_array: curves have {len(lengths)} different lengths "
                f"({min(lengths)}-{max(lengths)}); generate them with length=T, or use padded()"
            )
        return np.stack(self.curves)[:, :, None].astype(np.float64)

    def padded(self, value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(n, T_max, 1) array padded at the end with `value`, and the (n,) true lengths."""
        lengths = self.lengths
        out = np.full((len(self), int(lengths.max()), 1), value, dtype=np.float64)
        for k, c in enumerate(self.curves):
            out[k, : len(c), 0] = c
        return out, lengths


def enhancement(t, amplitude: float, alpha: float, beta: float, onset: float) -> np.ndarray:
    """Noise-free relative enhancement E(t) of the empirical model (t in minutes)."""
    tau = np.maximum(np.asarray(t, dtype=np.float64) - onset, 0.0)
    return amplitude * (1.0 - np.exp(-alpha * tau)) * np.exp(-beta * tau)


def kinetic_type(amplitude: float, alpha: float, beta: float, onset: float, t_end: float) -> int:
    """The clinical rule on the noise-free curve: 0 persistent, 1 plateau, 2 washout."""
    early = enhancement(onset + 2.0, amplitude, alpha, beta, onset)
    late = enhancement(t_end, amplitude, alpha, beta, onset)
    change = (late - early) / early
    return 0 if change > 0.10 else (2 if change < -0.10 else 1)


def washout_rate(alpha: float, onset: float, t_end: float, change: float) -> float:
    """The beta that gives the delayed-phase `change` (e.g. -0.3 for a 30 % fall) by `t_end`.

    Solves (E(t_end) - E(onset + 2)) / E(onset + 2) = change in closed form (needs t_end > onset + 2).
    """
    tau = t_end - onset
    ratio = (1.0 - np.exp(-alpha * tau)) / (1.0 - np.exp(-2.0 * alpha))
    return float((np.log(ratio) - np.log1p(change)) / (tau - 2.0))


def rician(e: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Relative enhancement seen through magnitude-MR noise: |S0 (1 + E) + n| / S0 - 1, n complex."""
    real = 1.0 + e + sigma * rng.standard_normal(e.shape)
    imag = sigma * rng.standard_normal(e.shape)
    return np.sqrt(real**2 + imag**2) - 1.0


def generate_curves(
    n: int,
    seed: int = 0,
    length: int | None = None,
    length_range: tuple[int, int] = (20, 40),
    duration: float | None = None,
    duration_range: tuple[float, float] = (6.0, 9.0),
    onset_range: tuple[float, float] = (0.3, 1.2),
    noise_range: tuple[float, float] = (0.02, 0.06),
    balanced: bool = True,
) -> DceSet:
    """Generate `n` DCE-MRI curves, seeded.

    length: number of time points of every curve (default: each curve draws one from `length_range`);
    duration: acquisition length in minutes (default: drawn from `duration_range`); the first sample
    is at t = 0 (before the agent arrives), onset is drawn from `onset_range`; noise sigma (relative
    to the pre-contrast signal) from `noise_range`. With `balanced` the kinetic types cycle 0, 1, 2
    in a shuffled order, so the classes are equally frequent; the uptake class is a fair coin.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"generate_curves: n must be a positive integer, got {n!r}")
    if length is not None and (not isinstance(length, (int, np.integer)) or length < 8):
        raise ValueError(f"generate_curves: length must be an integer >= 8 time points, got {length!r}")
    if length_range[0] < 8 or length_range[1] < length_range[0]:
        raise ValueError(f"generate_curves: length_range must be (lo, hi) with 8 <= lo <= hi, got {length_range}")
    if duration is not None and duration < onset_range[1] + 2.5:
        raise ValueError(
            f"generate_curves: duration {duration} min is too short to read the delayed phase; "
            f"use at least {onset_range[1] + 2.5} min"
        )
    rng = np.random.default_rng(seed)
    kinds = np.arange(n) % 3 if balanced else rng.integers(0, 3, n)
    kinds = rng.permutation(kinds)
    times, curves, labels, uptake, params = [], [], [], [], []
    for k in range(n):
        T = int(length) if length is not None else int(rng.integers(length_range[0], length_range[1] + 1))
        dur = float(duration) if duration is not None else float(rng.uniform(*duration_range))
        t = np.linspace(0.0, dur, T)
        onset = float(rng.uniform(*onset_range))
        amp = float(rng.uniform(0.6, 2.0))
        up = int(rng.integers(0, 2))
        alpha = float(rng.uniform(*_ALPHA[up]))
        want = int(kinds[k])
        beta = washout_rate(alpha, onset, dur, change=float(rng.uniform(*_CHANGE[want])))
        label = kinetic_type(amp, alpha, beta, onset, dur)
        sigma = float(rng.uniform(*noise_range))
        times.append(t)
        curves.append(rician(enhancement(t, amp, alpha, beta, onset), sigma, rng))
        labels.append(label)
        uptake.append(up)
        params.append({"A": amp, "alpha": alpha, "beta": beta, "onset": onset, "noise": sigma,
                       "dt": float(t[1] - t[0]), "duration": dur})
    return DceSet(times, curves, np.array(labels, dtype=np.int64), np.array(uptake, dtype=np.int64), params)
