"""Mean and variance against numpy float64 two-pass references, on adversarial data, for every
batch size and merge order; and against scikit-learn's StandardScaler.partial_fit."""

import functools
import math
from fractions import Fraction

import numpy as np
import pytest

from tfstream.stats import Stats, moments

RTOL = 1e-12


def two_pass(x):
    x = np.asarray(x, dtype=np.float64)
    mean = x.sum() / x.size
    return mean, ((x - mean) ** 2).sum() / x.size


def adversarial(name, n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    if name == "N(1e6, 1)":
        return rng.normal(1e6, 1.0, n)
    if name == "1e8 then log(1e-5)":  # scikit-learn's stability case
        return np.r_[np.full(n // 2, 1e8), np.full(n - n // 2, np.log(1e-5))]
    if name == "1e8 and log(1e-5) shuffled":
        return rng.permutation(adversarial("1e8 then log(1e-5)", n))
    if name == "constant":
        return np.full(n, 123456.789)
    if name == "N(-3e9, 1e-3)":
        return rng.normal(-3e9, 1e-3, n)
    raise KeyError(name)


DATA = [
    "N(1e6, 1)",
    "1e8 then log(1e-5)",
    "1e8 and log(1e-5) shuffled",
    "constant",
    "N(-3e9, 1e-3)",
]


def fit_in_batches(x, batch):
    state = moments.EMPTY
    for start in range(0, x.size, batch):
        state = moments.update(state, x[start : start + batch])
    return state


def assert_close(state, x):
    mean, var = two_pass(x)
    assert state.count == x.size
    assert state.location == pytest.approx(mean, rel=RTOL, abs=0)
    if var == 0:
        assert state.variance() == 0.0
    else:
        assert state.variance() == pytest.approx(var, rel=RTOL)


@pytest.mark.parametrize("batch", [1, 7, 11, 37, 4096])
@pytest.mark.parametrize("data", DATA)
def test_mean_and_variance_match_numpy_two_pass(data, batch):
    x = adversarial(data, n=3_000 if batch == 1 else 20_000)
    assert_close(fit_in_batches(x, batch), x)


@pytest.mark.parametrize("data", DATA)
def test_independent_of_batch_size_and_merge_order(data):
    x = adversarial(data)
    rng = np.random.default_rng(1)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 40, replace=False))
    parts = [moments.update(moments.EMPTY, p) for p in np.split(x, cuts)]
    reference = fit_in_batches(x, 4096)
    results = [
        functools.reduce(moments.merge, parts),  # left fold
        functools.reduce(lambda a, b: moments.merge(b, a), parts),  # reversed roles
        functools.reduce(moments.merge, [parts[i] for i in rng.permutation(len(parts))]),
        _tree(parts),
    ]
    for state in results:
        assert state.count == reference.count
        assert state.location == pytest.approx(reference.location, rel=RTOL, abs=0)
        assert state.variance() == pytest.approx(reference.variance(), rel=RTOL, abs=1e-300)
    assert_close(results[-1], x)


def _tree(parts):
    while len(parts) > 1:
        parts = [
            moments.merge(*parts[i : i + 2]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    return parts[0]


def test_shift_is_what_makes_large_offsets_exact():
    """The same Chan merge without the shift loses digits on N(1e6, 1) in batches of 7."""
    x = adversarial("N(1e6, 1)")
    _, var = two_pass(x)
    unshifted = functools.reduce(
        moments.merge, [moments.of_values(x[i : i + 7], 0.0) for i in range(0, x.size, 7)]
    )
    shifted = fit_in_batches(x, 7)
    assert abs(shifted.variance() - var) / var < 1e-13
    assert abs(unshifted.variance() - var) / var > 10 * abs(shifted.variance() - var) / var


def test_nan_and_inf_are_counted_and_excluded():
    x = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0, np.nan], dtype=np.float32)
    state = fit_in_batches(x, 3)
    assert (state.count, state.nan_count, state.inf_count) == (3, 2, 2)
    assert state.location == 2.0
    assert state.variance() == pytest.approx(2 / 3, rel=RTOL)
    assert (state.min, state.max) == (1.0, 3.0)


def test_all_missing_column_has_nan_moments():
    state = fit_in_batches(np.full(10, np.nan), 4)
    assert (state.count, state.nan_count) == (0, 10)
    assert math.isnan(state.location) and math.isnan(state.variance())
    assert math.isnan(state.min) and math.isnan(state.max)


def test_integer_input_is_exact():
    x = np.arange(-(2**40), -(2**40) + 10_001, dtype=np.int64)
    state = fit_in_batches(x, 37)
    assert state.location == -(2**40) + 5_000
    assert state.variance() == pytest.approx((10_001**2 - 1) / 12, rel=RTOL)


def test_sample_variance():
    x = np.random.default_rng(0).normal(size=1000)
    assert fit_in_batches(x, 11).variance(ddof=1) == pytest.approx(np.var(x, ddof=1), rel=RTOL)


@pytest.mark.parametrize("batch", [7, 100, 4096])
def test_agrees_with_scikit_learn_standard_scaler(batch):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 3.0, size=(20_000, 3)) * [1.0, 1e3, 1e-3]
    scaler = sklearn.StandardScaler()
    stats = Stats()
    for start in range(0, len(x), batch):
        part = x[start : start + batch]
        scaler.partial_fit(part)
        stats.partial_fit({f"c{j}": part[:, j] for j in range(3)})
    for j in range(3):
        assert stats[f"c{j}"].mean == pytest.approx(scaler.mean_[j], rel=1e-10)
        assert stats[f"c{j}"].variance == pytest.approx(scaler.var_[j], rel=1e-10)
        assert stats[f"c{j}"].std == pytest.approx(scaler.scale_[j], rel=1e-10)


# -- integers beyond 2**53 ---------------------------------------------------------------------


def exact_moments(values):
    """Count, mean and population variance of Python ints (or ``Fraction``s), exactly."""
    values = [Fraction(v) for v in values]
    n = len(values)
    total = sum(values)
    mean = Fraction(total, n)
    return n, mean, Fraction(n * sum(v * v for v in values) - total * total, n * n)


def assert_exact_integers(state, values):
    """Mean within an ulp plus ``RTOL`` of the spread (the values minus the shift are what
    float64 holds), variance to ``RTOL``, min and max exact."""
    n, mean, var = exact_moments(values)
    assert state.count == n
    spread = max(abs(v - mean) for v in values)
    assert state.location == pytest.approx(float(mean), rel=2**-52, abs=RTOL * spread)
    assert state.variance() == pytest.approx(float(var), rel=RTOL, abs=0)
    assert (state.min, state.max) == (min(values), max(values))


INTEGERS = {
    "2**60 + [0, 1000)": lambda rng, n: 2**60 + rng.integers(0, 1000, n),
    "-(2**62) + [0, 7)": lambda rng, n: -(2**62) + rng.integers(0, 7, n),
    "int64 max - [0, 100)": lambda rng, n: np.iinfo(np.int64).max - rng.integers(0, 100, n),
    "uint64 max - [0, 100)": lambda rng, n: (
        np.uint64(2**64 - 1) - rng.integers(0, 100, n).astype(np.uint64)
    ),
}


@pytest.mark.parametrize("batch", [1, 7, 37, 4096])
@pytest.mark.parametrize("data", list(INTEGERS))
def test_integers_beyond_2_53_are_exact(data, batch):
    """The differences from the (integer) shift are taken in integers, not after rounding the
    values to float64 (which makes 2**60 + [0, 1000) a multiple of 256)."""
    x = INTEGERS[data](np.random.default_rng(4), 500 if batch == 1 else 5000)
    assert_exact_integers(fit_in_batches(x, batch), x.tolist())


def test_integers_farther_than_int64_from_the_shift():
    """Differences that overflow int64 (int64 min to int64 max) fall back to a shift in the
    middle of the chunk; the spread, far beyond 2**53, is then within float64's precision."""
    rng = np.random.default_rng(5)
    low = np.iinfo(np.int64).min + rng.integers(0, 1000, 300)
    high = np.iinfo(np.int64).max - rng.integers(0, 1000, 300)
    x = rng.permutation(np.r_[low, high])
    for batch in (1, 7, 600):
        assert_exact_integers(fit_in_batches(x, batch), x.tolist())
    u = np.r_[0, np.uint64(2**64 - 1) - rng.integers(0, 1000, 100).astype(np.uint64)]
    assert u.dtype == np.uint64
    assert_exact_integers(fit_in_batches(u, 9), u.tolist())


def test_integers_of_mixed_dtypes():
    """A uint64 chunk sets a shift int64 cannot hold; int64 and int8 chunks follow."""
    chunks = [
        np.array([2**64 - 1, 2**63 + 5], dtype=np.uint64),
        np.array([2**63 - 1, 2**63 - 1], dtype=np.int64),  # exactly -(2**63) from the shift
        np.array([-128, 127], dtype=np.int8),
        np.array([True, False]),
    ]
    state = moments.EMPTY
    for chunk in chunks:
        state = moments.update(state, chunk)
    assert_exact_integers(state, [int(v) for chunk in chunks for v in chunk])


def test_integers_after_a_fractional_shift():
    """An integer chunk after float chunks (the shift is then a non-integral float)."""
    x = 2**60 + np.random.default_rng(6).integers(0, 1000, 2000)
    state = moments.update(moments.update(moments.EMPTY, np.array([0.5])), x)
    assert_exact_integers(state, [Fraction(1, 2), *x.tolist()])


def test_integer_shift_is_an_int_and_the_float_path_is_unchanged():
    x = 2**60 + np.arange(10, dtype=np.int64)
    state = moments.update(moments.EMPTY, x)
    assert type(state.shift) is int and state.shift == 2**60
    assert type(state.min) is int and type(state.max) is int
    f = np.random.default_rng(7).normal(1e6, 1.0, 1000)
    state = moments.update(moments.EMPTY, f)
    assert type(state.shift) is float and state.shift == f[0]
    d = f - f[0]
    assert state.mean == d.sum() / d.size  # one pass, as before


def test_merge_of_an_int_shift_and_an_equal_float_shift_is_commutative():
    # Statistics saved before integer shifts hold 5.0 where new ones hold 5: equal values,
    # and the merge must not take its types from the argument order.
    new = moments.of_values(np.array([3, 5, 7]), 5)
    old = new._replace(shift=5.0, min=3.0, max=7.0)
    ab, ba = moments.merge(new, old), moments.merge(old, new)
    assert ab == ba
    assert [type(v) for v in ab] == [type(v) for v in ba]
