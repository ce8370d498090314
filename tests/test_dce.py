"""mediag.data.dce: seeded DCE-MRI curves whose labels follow the clinical rule."""

import numpy as np
import pytest

from mediag.data.dce import KINETICS, enhancement, generate_curves, kinetic_type, washout_rate


def test_seeded_and_balanced():
    a, b = generate_curves(31, seed=3, length=20), generate_curves(31, seed=3, length=20)
    np.testing.assert_array_equal(a.as_array(), b.as_array())
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.as_array().shape == (31, 20, 1)
    assert np.bincount(a.labels, minlength=3).tolist() == [11, 10, 10]
    assert not np.array_equal(a.as_array(), generate_curves(31, seed=4, length=20).as_array())


def test_labels_follow_the_clinical_rule_on_noise_free_curves():
    ds = generate_curves(60, seed=1)
    for label, p in zip(ds.labels, ds.params):
        t_end = p["duration"]
        early = enhancement(p["onset"] + 2.0, p["A"], p["alpha"], p["beta"], p["onset"])
        late = enhancement(t_end, p["A"], p["alpha"], p["beta"], p["onset"])
        change = (late - early) / early
        expected = 0 if change > 0.1 else (2 if change < -0.1 else 1)
        assert label == expected == kinetic_type(p["A"], p["alpha"], p["beta"], p["onset"], t_end)
    assert set(ds.labels.tolist()) == {0, 1, 2} and len(KINETICS) == 3


def test_washout_rate_solves_for_the_change():
    for change in (-0.4, -0.05, 0.0, 0.3):
        beta = washout_rate(2.0, 0.7, 8.0, change)
        early, late = enhancement([2.7, 8.0], 1.0, 2.0, beta, 0.7)
        assert (late - early) / early == pytest.approx(change, abs=1e-12)


def test_variable_lengths_pad_and_refuse_to_stack():
    ds = generate_curves(13, seed=2, length_range=(9, 15))
    assert ds.lengths.min() >= 9 and ds.lengths.max() <= 15 and len(set(ds.lengths.tolist())) > 1
    X, lengths = ds.padded(value=-1.0)
    assert X.shape == (13, lengths.max(), 1)
    k = int(np.argmin(lengths))
    np.testing.assert_array_equal(X[k, : lengths[k], 0], ds.curves[k])
    assert (X[k, lengths[k]:, 0] == -1.0).all()
    with pytest.raises(ValueError, match="different lengths"):
        ds.as_array()


def test_curves_start_at_baseline_and_time_is_minutes():
    ds = generate_curves(20, seed=0, length=24, duration=7.0)
    for t, c, p in zip(ds.times, ds.curves, ds.params):
        assert t[0] == 0.0 and t[-1] == pytest.approx(7.0)
        assert abs(c[0]) < 6 * p["noise"] + 0.01  # before the agent arrives: noise around 0
        assert c.max() > 0.3


@pytest.mark.parametrize("kwargs,match", [
    ({"n": 0}, "n must be a positive integer"),
    ({"n": 5, "length": 3}, "length must be an integer >= 8"),
    ({"n": 5, "duration": 2.0}, "too short"),
    ({"n": 5, "length_range": (10, 9)}, "length_range"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_curves(**kwargs)
