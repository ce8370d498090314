"""mediag: deep learning for medical image diagnosis, verified formula by formula.

Submodules: `verify` (checks and the report), `repro` (seeds, threads, determinism), `plotting`,
`data` (synthetic and real medical data), `dicom`, and `scratch` (the from-scratch functions the
notebooks export).
"""

from mediag.repro import quiet_tensorflow

__version__ = "0.1.0"

# TensorFlow reads these only at its first import; setting them here means `import mediag` before
# `import tensorflow` keeps its start-up log lines out of notebook outputs.
quiet_tensorflow()
