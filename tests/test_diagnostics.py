"""chain_diagnostics and convergence_table against ArviZ, element by element."""

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from dosezoo.diagnostics import TAIL_PROBS, chain_diagnostics, convergence_table, mean_ess

RTOL = 1e-9
DIAGNOSTICS = ("r_hat", "ess_bulk", "ess_tail", "mcse_mean")


def _arviz(column: np.ndarray) -> dict[str, float]:
    """ArviZ's four numbers for one (chain, draw) array, as convergence_table computed them."""
    # ArviZ warns on its own 0/0 (a constant column's R-hat); pytest makes warnings errors.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return {
            "r_hat": float(az.rhat(column)),
            "ess_bulk": float(az.ess(column)),
            "ess_tail": float(az.ess(column, method="tail", prob=TAIL_PROBS)),
            "mcse_mean": float(az.mcse(column)),
        }


def _assert_matches_arviz(values: np.ndarray) -> None:
    ours = chain_diagnostics(values)
    for k in range(values.shape[2]):
        expected = _arviz(values[:, :, k])
        for name in DIAGNOSTICS:
            got = getattr(ours, name)[k]
            assert got == pytest.approx(expected[name], rel=RTOL, nan_ok=True), (name, k)


def _ar1(rng: np.random.Generator, phi: float, shape: tuple[int, int, int]) -> np.ndarray:
    noise = rng.normal(size=shape)
    draws = np.empty(shape)
    draws[:, 0] = noise[:, 0] / np.sqrt(1 - phi**2)
    for t in range(1, shape[1]):
        draws[:, t] = phi * draws[:, t - 1] + noise[:, t]
    return draws


def _iid(rng):
    return rng.normal(size=(2, 500, 6))


def _ar_slow(rng):
    return _ar1(rng, 0.9, (2, 500, 6))


def _ar_antithetic(rng):
    return _ar1(rng, -0.5, (2, 500, 6))


def _shifted(rng):
    draws = rng.normal(size=(4, 300, 4))
    draws[1] += np.array([0.0, 0.5, 2.0, 10.0])
    return draws


def _indicators(rng):
    return (rng.random((2, 400, 7)) < np.linspace(0.01, 0.99, 7)).astype(float)


def _rounded(rng):
    return np.round(rng.normal(size=(3, 200, 5)) * np.array([0.2, 0.5, 1.0, 3.0, 10.0]))


def _with_constant_column(rng):
    draws = rng.normal(size=(2, 200, 3))
    draws[:, :, 1] = 2.5
    return draws


def _odd_draws(rng):
    return _ar1(rng, 0.6, (3, 101, 4))


def _one_chain(rng):
    return _ar1(rng, 0.5, (1, 300, 3))


def _four_chains(rng):
    return _ar1(rng, 0.7, (4, 250, 4))


def _eight_chains(rng):
    return _ar1(rng, 0.7, (8, 60, 3))


def _with_nan(rng):
    draws = rng.normal(size=(2, 200, 3))
    draws[1, 17, 1] = np.nan
    return draws


def _with_infinities(rng):
    draws = rng.normal(size=(2, 200, 3))
    draws[0, 3, 0] = np.inf
    draws[1, 8, 1] = -np.inf
    return draws


def _stuck_chains(rng):
    # Each split chain constant at its own value: R-hat is ArviZ's rounding noise (bit for bit).
    draws = np.zeros((2, 100, 2))
    draws[:, :50, 0] = 1.0
    draws[0, :, 1] = 1.0
    return draws


CASES = [
    _iid,
    _ar_slow,
    _ar_antithetic,
    _shifted,
    _indicators,
    _rounded,
    _with_constant_column,
    _odd_draws,
    _one_chain,
    _four_chains,
    _eight_chains,
    _with_nan,
    _with_infinities,
    _stuck_chains,
]


@pytest.mark.parametrize("make", CASES, ids=[case.__name__.strip("_") for case in CASES])
def test_chain_diagnostics_match_arviz(make):
    _assert_matches_arviz(make(np.random.default_rng(2021)))


def test_short_and_long_autocorrelations_take_their_own_paths_and_match_arviz(monkeypatch):
    import dosezoo.diagnostics as diagnostics

    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(size=(2, 500, 1)), _ar1(rng, 0.99, (2, 500, 1))], axis=2)
    transformed = []
    rfft = np.fft.rfft
    monkeypatch.setattr(
        diagnostics.np.fft, "rfft", lambda a, **k: transformed.append(a.shape[0]) or rfft(a, **k)
    )
    chain_diagnostics(values)
    monkeypatch.undo()  # ArviZ's own transforms are not counted
    # Stacks: scores, low and high indicators, draws of each column. The iid column's
    # sequences end within the direct lags; the slow chain's run past them, so its two
    # continuous stacks (at least) are transformed, and never the iid column's.
    assert len(transformed) == 1 and 2 <= transformed[0] <= 4
    _assert_matches_arviz(values)


def test_the_cases_cover_arvizs_special_values():
    rng = np.random.default_rng(2021)
    one_chain = chain_diagnostics(_one_chain(rng))
    assert np.isnan(one_chain.r_hat).all() and np.isfinite(one_chain.ess_bulk).all()
    constant = chain_diagnostics(_with_constant_column(rng))
    assert np.isnan(constant.r_hat[1]) and constant.ess_bulk[1] == 400 == constant.ess_tail[1]
    assert constant.mcse_mean[1] == 0
    with_nan = chain_diagnostics(_with_nan(rng))
    for name in DIAGNOSTICS:
        assert np.isnan(getattr(with_nan, name)).tolist() == [False, True, False], name
    shifted = chain_diagnostics(_shifted(rng))
    assert shifted.r_hat[0] < 1.05 < 1.5 < shifted.r_hat[3]
    # ESS above the number of draws for anti-correlated chains (tau < 1).
    assert (chain_diagnostics(_ar_antithetic(rng)).ess_bulk > 1000).all()


def test_fewer_than_four_draws_give_nan():
    short = chain_diagnostics(np.random.default_rng(0).normal(size=(2, 3, 2)))
    for name in DIAGNOSTICS:
        assert np.isnan(getattr(short, name)).all(), name
    with pytest.raises(ValueError, match=r"shape \(chain, draw, column\)"):
        chain_diagnostics(np.zeros((2, 10)))


@settings(max_examples=30, deadline=None)
@given(
    chains=st.integers(1, 4),
    draws=st.integers(4, 80),
    columns=st.integers(1, 3),
    kind=st.sampled_from(["normal", "ar", "integers"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_chain_diagnostics_match_arviz_on_random_shapes(chains, draws, columns, kind, seed):
    rng = np.random.default_rng(seed)
    shape = (chains, draws, columns)
    if kind == "normal":
        values = rng.normal(size=shape)
    elif kind == "ar":
        values = _ar1(rng, rng.uniform(-0.9, 0.95), shape)
    else:
        values = rng.integers(0, 4, size=shape).astype(float)
    _assert_matches_arviz(values)


def test_convergence_table_on_a_fit_matches_arviz_per_element(o6bg_model, o6bg):
    fit = o6bg_model.fit(o6bg, engine="kernel", draws=400, tune=200, chains=2, random_seed=3)
    posterior = fit["posterior"].to_dataset()
    scalars = list(posterior.data_vars)
    assert len(scalars) >= 2
    # The fit's variables are scalars: a vector of two of them, its elements in both orders.
    posterior["pair"] = xr.concat([posterior[name] for name in scalars[:2]], dim="element")
    posterior["pair_reversed"] = posterior["pair"].isel(element=[1, 0])
    idata = xr.DataTree.from_dict({"posterior": posterior})
    names = list(posterior.data_vars)
    expected = {}
    for name in names:
        values = posterior[name].transpose("chain", "draw", ...).to_numpy()
        elements = values.reshape(values.shape[0], values.shape[1], -1)
        per_element = [_arviz(elements[:, :, k]) for k in range(elements.shape[2])]
        expected[name] = {
            "r_hat": max(e["r_hat"] for e in per_element),
            "ess_bulk": min(e["ess_bulk"] for e in per_element),
            "ess_tail": min(e["ess_tail"] for e in per_element),
            "mcse_mean": max(e["mcse_mean"] for e in per_element),
        }
    table = convergence_table(idata)
    pd.testing.assert_frame_equal(
        table, pd.DataFrame.from_dict(expected, orient="index"), check_exact=False, rtol=RTOL
    )
    subset = convergence_table(idata, names[::-1][:2])
    assert list(subset.index) == names[::-1][:2]
    pd.testing.assert_frame_equal(subset, table.loc[names[::-1][:2]], check_exact=False, rtol=RTOL)


@pytest.mark.parametrize("element", [0, 1, 3])
def test_a_nan_in_any_element_makes_the_variables_diagnostics_nan_and_fails(element):
    # The worst element was Python's max/min, which kept a NaN only when it came first: a NaN
    # draw in p_dlt at level 3 of a CRM fit passed the checks (R-hat 1.0034, worst of the rest).
    from dosezoo.diagnostics import ConvergenceCriteria

    rng = np.random.default_rng(4)
    draws = rng.normal(size=(2, 1000, 4))
    draws[0, 10, element] = np.nan
    dataset = xr.Dataset({"p": (("chain", "draw", "k"), draws)})
    table = convergence_table(xr.DataTree.from_dict({"posterior": dataset}))
    assert table.loc["p"].isna().all(), table
    report = ConvergenceCriteria().check_draws({"p": draws})
    assert not report.ok
    assert report.failures == (
        "p: R-hat nan > 1.01",
        "p: bulk ESS nan < 400",
        "p: tail ESS nan < 200",
    )
    # A constant element (R-hat 0/0 = NaN, ESS the number of draws) counts wherever it is.
    constant = draws.copy()
    constant[:, :, element] = 1.0
    r_hat = convergence_table(
        xr.DataTree.from_dict({"posterior": xr.Dataset({"p": (("chain", "draw", "k"), constant)})})
    ).loc["p", "r_hat"]
    assert np.isnan(r_hat)


def test_a_strided_input_gives_the_same_values():
    draws = _ar1(np.random.default_rng(8), 0.5, (5, 300, 2)).transpose(2, 1, 0)  # (2, 300, 5)
    strided, contiguous = chain_diagnostics(draws), chain_diagnostics(draws.copy())
    for name in DIAGNOSTICS:
        assert np.array_equal(getattr(strided, name), getattr(contiguous, name)), name


def test_one_chain_is_judged_by_its_effective_sample_sizes_not_an_r_hat():
    # R-hat compares chains: with one it is NaN, and every single-chain fit was refused
    # (the latent-GP designs sample one chain by default, so decide refused their own fits).
    from dosezoo.diagnostics import ConvergenceCriteria

    rng = np.random.default_rng(0)
    criteria = ConvergenceCriteria(min_ess_bulk=400, min_ess_tail=200)
    one = criteria.check_draws({"x": rng.normal(size=(1, 2000))})
    assert one.ok and np.isnan(one.table.loc["x", "r_hat"])
    short = criteria.check_draws({"x": rng.normal(size=(1, 100))})
    assert not short.ok and all("ESS" in failure for failure in short.failures)
    apart = criteria.check_draws({"x": rng.normal(size=(2, 2000)) + np.array([[0.0], [3.0]])})
    assert any("R-hat" in failure for failure in apart.failures)


@pytest.mark.parametrize("shape", [(1000,), ()])
def test_check_draws_names_a_variable_without_chain_and_draw_axes(shape):
    # A 1-D array raised a bare "IndexError: tuple index out of range".
    from dosezoo.diagnostics import ConvergenceCriteria

    draws = {"ok": np.zeros((2, 100)), "x": np.zeros(shape)}
    with pytest.raises(ValueError) as err:
        ConvergenceCriteria().check_draws(draws)
    assert f"'x' have shape {shape}" in str(err.value)
    assert "(chain, draw, ...)" in str(err.value)


@settings(max_examples=40, deadline=None)
@given(
    chains=st.integers(1, 4),
    draws=st.integers(4, 600),
    columns=st.integers(1, 3),
    phi=st.floats(-0.9, 0.995),
    seed=st.integers(0, 2**32 - 1),
)
def test_mean_ess_is_arvizs_and_for_indicators_their_bulk_ess(chains, draws, columns, phi, seed):
    """The ESS the MCSE of a posterior probability reads: ArviZ's ``ess(method="mean")``, and
    of indicators, ArviZ's bulk ESS (their rank scores are affine in them); slow chains
    (phi near 1) take the transform's path."""
    rng = np.random.default_rng(seed)
    values = _ar1(rng, phi, (chains, draws, columns))
    indicators = (values > rng.normal(size=columns)).astype(float)
    ours, of_indicators = mean_ess(values), mean_ess(indicators)
    for k in range(columns):
        expected = float(az.ess(values[:, :, k], method="mean"))
        assert ours[k] == pytest.approx(expected, rel=RTOL), k
        assert of_indicators[k] == pytest.approx(float(az.ess(indicators[:, :, k])), rel=RTOL)


def test_mean_ess_of_too_few_draws_is_nan_and_of_constant_draws_their_number():
    assert np.isnan(mean_ess(np.zeros((2, 3, 1)))).all()
    assert mean_ess(np.ones((2, 50, 1))).tolist() == [100.0]
    with pytest.raises(ValueError, match=r"shape \(chain, draw, column\)"):
        mean_ess(np.zeros((2, 10)))
