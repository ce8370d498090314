"""Course data: synthetic medical images, reports and curves generated on demand, and loaders for real data.

Generated data is cached under `data/cache/` (not committed); see data/README.md.
"""

from pathlib import Path

#: where generated data is cached (a folder of the repository, ignored by git)
CACHE = Path(__file__).resolve().parents[2] / "data" / "cache"
