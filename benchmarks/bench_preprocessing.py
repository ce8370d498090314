"""Benchmark: notebook 02's NumPy preprocessing vs OpenCV, and the synthetic chest generator's speed.

    .venv/bin/python benchmarks/bench_preprocessing.py # prints a table, rewrites its section of BENCHMARKS.md
    .venv/bin/python benchmarks/bench_preprocessing.py --no-write  # prints only

NL-means on a 128×128 uint8 image (template 7, search 21, h=10), bilinear warp of a 512×512 float64
image, and rendering synthetic 64×64 radiographs (no cache). Same thread count for NumPy and OpenCV
(2 by default); median of several runs after one warm-up. Targets: vectorised NL-means within 50× of
OpenCV (it has 441 passes over the image in Python); 2000 synthetic films in under 30 s.
"""

from __future__ import annotations

import sys

import numpy as np
from common import machine_info, markers, median_ms, parser, publish

START, END = markers("preprocessing")


def run(threads: int, repeat: int) -> tuple[dict, dict]:
    from mediag.repro import setup

    setup(seed=0, threads=threads, torch=False, tensorflow=False)
    import cv2

    from mediag.data.chest import generate
    from mediag.scratch.preprocessing import nl_means, rotation_matrix, warp_affine

    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    img = rng.random((512, 512))
    M = rotation_matrix((255.5, 255.5), 10, 1.05)
    r = {
        "NL-means NumPy, plain formula": median_ms(lambda: nl_means(u8, 10.0), repeat),
        "NL-means NumPy, opencv=True": median_ms(lambda: nl_means(u8, 10.0, opencv=True), repeat),
        "NL-means `cv2.fastNlMeansDenoising`": median_ms(lambda: cv2.fastNlMeansDenoising(u8, None, 10, 7, 21), repeat),
        "warp NumPy (`warp_affine`)": median_ms(lambda: warp_affine(img, M, (512, 512)), repeat),
        "warp `cv2.warpAffine`": median_ms(lambda: cv2.warpAffine(img, M, (512, 512)), repeat),
    }
    n = 200
    r["synthetic films, 64×64, per 1000"] = median_ms(lambda: generate(n, size=64, seed=1, cache=False),
                                                      max(3, repeat // 3)) * 1000 / n
    info = machine_info(threads=threads, repeat=repeat)
    info["versions"] = f"Python {info['python']}, NumPy {np.__version__}, OpenCV {cv2.__version__}"
    return r, info


def section(r: dict, info: dict) -> str:
    cv_nlm = r["NL-means `cv2.fastNlMeansDenoising`"]
    cv_warp = r["warp `cv2.warpAffine`"]
    lines = [
        START,
        "## preprocessing (notebook 02, `benchmarks/bench_preprocessing.py`)",
        "",
        f"NL-means on 128×128 uint8 (7/21, h=10); bilinear warp of 512×512 float64; {info['threads']} threads; "
        f"median of {info['repeat']} runs after a warm-up; {info['cpus']} CPUs ({info['machine']}), load average "
        f"{info['load']} while measuring; {info['versions']}.",
        "",
        "| implementation | median time (ms) | × OpenCV |",
        "|---|---:|---:|",
    ]
    for name, ms in r.items():
        if name.startswith("NL-means"):
            lines.append(f"| {name} | {ms:.1f} | {ms / cv_nlm:.1f} |")
        elif name.startswith("warp"):
            lines.append(f"| {name} | {ms:.1f} | {ms / cv_warp:.1f} |")
    ratio = r["NL-means NumPy, plain formula"] / cv_nlm
    films = r["synthetic films, 64×64, per 1000"] * 2
    lines += [
        "",
        f"Synthetic chest films (`mediag.data.chest.generate`, 64×64, no cache): "
        f"{r['synthetic films, 64×64, per 1000']:.0f} ms per 1000 films.",
        "",
        f"Targets: vectorised NL-means within 50× of OpenCV: {ratio:.1f}× ({'met' if ratio <= 50 else 'NOT met'}); "
        f"2000 films in under 30 s: {films / 1000:.1f} s ({'met' if films <= 30000 else 'NOT met'}).",
        END,
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = parser(__doc__, threads=2, repeat=7)
    args = p.parse_args(argv)
    r, info = run(args.threads, args.repeat)
    text = section(r, info)
    publish("preprocessing", text, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
