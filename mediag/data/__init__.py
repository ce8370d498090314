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

from pathlib import Path

#: where generated data is cached (a folder of the repository, ignored by git)
CACHE = Path(__file__).resolve().parents[2] / "data" / "cache"
