"""The package's from-scratch code is exactly what the notebooks' #@save cells say."""

from mediag import export


def test_scratch_package_matches_notebooks():
    stale = export.stale_files(export.build())
    assert not stale, f"out of date (run `make export`): {[p.name for p in stale]}"


def test_public_names_skip_private_and_checks():
    src = "def a():\n    pass\n\ndef _b():\n    pass\n\ndef check_c(rng):\n    pass\n\nclass D:\n    pass\n"
    assert export.public_names(src) == ["a", "D"]


def test_each_public_name_is_exported_by_one_notebook_only():
    assert export.duplicate_names([("a", ["f", "g"]), ("b", ["g", "h"])]) == {"g": ["a", "b"]}
