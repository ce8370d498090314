"""Course data: synthetic medical images, reports and curves generated on demand, and loaders for real data.

Generated data is cached under `data/cache/` (not committed); see data/README.md.

- `mediag.data.chest`: synthetic chest radiographs with ground-truth findings, masks, patient ids,
  patient-level splits and DICOM export (`generate`, `render`, `sample_findings`, `patient_split`,
  `write_dicom`);
- `mediag.data.reports`: free-text reports and the negation-aware labeler (`write_report`,
  `label_report`, `report_corpus`);
- `mediag.data.medmnist`: MedMNIST `.npz` loader with checksummed download (`load`);
- `mediag.data.dce`: DCE-MRI time-intensity curves.
"""

import os
from pathlib import Path

#: the repository's data/ folder (this file, a caching README and the ignored cache/ and medmnist/)
DATA_DIR = Path(__file__).resolve().parents[2] / "data"
#: where generated data is cached: data/cache/ (ignored by git), or the folder named by MEDIAG_DATA_CACHE
#: (how `make test-other-cpu` regenerates everything without touching the usual cache)
CACHE = Path(os.environ.get("MEDIAG_DATA_CACHE") or DATA_DIR / "cache")
