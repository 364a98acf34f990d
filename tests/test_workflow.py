"""The statistician's workflow on every registered model: prior checks, ESS, predictive checks.

Contract checks run over every family of the registry (as in ``test_contract.py``); known-answer
checks pin each definition: a Beta(a, b) prior's ESS is a + b (conjugate: BOIN; variance ratio;
Morita-Thall-Mueller on a logit-Beta grid model), the CRM's Morita-Thall-Mueller ESS equals a
closed form written independently, and the posterior predictive p-values are moderate on data
simulated from the model and extreme on grossly misspecified data.
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

from dosezoo.data import TrialData
from dosezoo.errors import FitMismatchError
from dosezoo.models import BOIN, CRM, EWOC, LatentGP, crm_skeleton
from dosezoo.models.base import DoseModel
from dosezoo.models.binary import DoseSummary, GridDoseModel
from dosezoo.models.blrm import blrm_prior_from_quantiles
from dosezoo.models.crm import crm_prior_from_statements
from dosezoo.models.ewoc import ewoc_prior_from_statements
from dosezoo.models.latent_gp import latent_gp_prior_from_statements
from dosezoo.models.workflow import variance_ratio_ess
from tests.test_contract import MODEL_FAMILIES, _case

#: Families whose predictive check takes more than ~20 s (the empirical-Bayes fit and the
#: compilation of the multivariate normal's replicates): it runs with ``make test-slow``.
PPC_SLOW = frozenset({"combination-bo"})


def _ppc_cases():
    for name in MODEL_FAMILIES:
        marks = [pytest.mark.slow] if name in PPC_SLOW else []
        yield pytest.param(name, marks=marks, id=name)


def _model_and_data(name):
    case = _case(name)
    return case.design.model_for(case.data), case.data


# --------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", MODEL_FAMILIES)
def test_every_model_reports_a_finite_positive_prior_ess(name):
    model, _ = _model_and_data(name)
    ess = model.prior_effective_sample_size(draws=1000, random_seed=1)
    values = [ess] if isinstance(ess, float) else list(ess.values())
    assert values
    assert all(math.isfinite(v) and v > 0 for v in values), ess


@pytest.mark.parametrize("name", list(_ppc_cases()))
def test_every_model_checks_its_fit_predictively(name):
    model, data = _model_and_data(name)
    idata = model.fit(data, engine=model.fast_engine, draws=200, chains=2, random_seed=3)
    check = model.posterior_predictive_check(idata, data, random_seed=4)
    assert isinstance(check, xr.Dataset)
    assert check["ppp"].dims == ("statistic", "dose") and check["ppp"].size
    ppp = check["ppp"].to_numpy()
    assert np.all((ppp >= 0) & (ppp <= 1))
    for outcome in model.predictive_outcomes:
        assert any(str(s).startswith(outcome) for s in check["statistic"].values), outcome


@pytest.mark.parametrize("name", list(_ppc_cases()))
def test_every_model_refuses_a_predictive_check_of_a_fit_to_other_data(name):
    # A fit to other data read as a misfit of these (an extreme p-value) rather than an error.
    model, data = _model_and_data(name)
    idata = model.fit(data, engine=model.fast_engine, draws=50, chains=1, random_seed=3)
    with pytest.raises(FitMismatchError, match="the data differ"):
        model.posterior_predictive_check(idata, data.head(data.n_patients - 1), random_seed=4)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": math.nan}, "target must be finite, got nan"),
        ({"target": 1.5}, r"target must lie in \(0, 1\)"),
        ({"draws": 0}, "draws must be an integer >= 1"),
    ],
)
def test_a_prior_summary_refuses_a_target_off_zero_one_and_no_draws(options, message):
    # A NaN target made every level's distance NaN: p_mtd read 1 at the lowest level.
    model = CRM(crm_skeleton(0.25, 0.05, 3, 5), 0.25)
    with pytest.raises(ValueError, match=message):
        model.prior_predictive_summary(random_seed=1, **options)


@pytest.mark.parametrize("name", MODEL_FAMILIES)
def test_every_model_summarises_its_prior(name):
    model, data = _model_and_data(name)
    summary = model.prior_predictive_summary(data, draws=200, random_seed=5)
    assert isinstance(summary, xr.Dataset) and summary.data_vars
    low, high = summary["predictive_low"], summary["predictive_high"]
    assert np.all(low <= high)
    if "p_mtd" in summary:
        assert summary["p_mtd"].sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------- known answers


@dataclass(frozen=True)
class LogitBeta(GridDoseModel):
    """One dose whose DLT probability has a Beta(a, b) prior, on the logit scale (conjugate)."""

    model_name: ClassVar[str] = "LogitBeta"
    coordinates: ClassVar[tuple[str, ...]] = ("logit_p",)
    grid_size: ClassVar[int] = 512

    a: float
    b: float
    dose_levels: tuple[float, ...] = (1.0,)

    def parameters(self):
        return {"a": self.a, "b": self.b}

    def check_doses(self, dose):
        pass

    def build(self, data):
        raise NotImplementedError("the grid engine is all this test model needs")

    def prob(self, theta, dose):
        return np.broadcast_to(expit(theta[:, :1]), (theta.shape[0], dose.size))

    def log_likelihood(self, theta, summary: DoseSummary):
        u = theta[:, 0]
        return (
            -np.logaddexp(0, -u) * summary.y.sum()
            - np.logaddexp(0, u) * (summary.n - summary.y).sum()
        )

    def log_prior(self, theta):
        # Beta(a, b) density of p = expit(u) times the Jacobian p (1 - p).
        u = theta[:, 0]
        return -self.a * np.logaddexp(0, -u) - self.b * np.logaddexp(0, u)

    def prior_location(self):
        return np.array([math.log(self.a / self.b)]), np.array([2.0])

    def free_values(self, theta):
        return {"logit_p": theta[:, 0]}

    def rate_cut(self, leading, threshold):
        # p > t iff logit_p > logit(t), whatever the (absent) leading coordinates.
        cut = np.full(
            (leading.shape[0], len(self.dose_levels)), math.log(threshold / (1 - threshold))
        )
        return cut, np.ones_like(cut, dtype=bool)


@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (2.0, 5.0), (0.5, 3.0)])
def test_the_mtm_ess_of_a_beta_prior_is_its_pseudo_count(a, b):
    assert LogitBeta(a, b).prior_effective_sample_size() == pytest.approx(a + b, rel=1e-4)


def test_the_boin_ess_is_a_plus_b_exactly_and_by_variance_ratio():
    model = BOIN(0.3, (1.0, 2.0, 3.0), prior_a=2.0, prior_b=5.0)
    assert model.prior_effective_sample_size() == 7.0
    generic = DoseModel.prior_effective_sample_size(model, draws=10000, random_seed=2)
    assert set(generic) == {"p_dlt[1]", "p_dlt[2]", "p_dlt[3]"}
    # Monte Carlo: the sd of a sample variance ratio at 10000 draws is about 1.5 % here.
    assert list(generic.values()) == pytest.approx([7.0] * 3, rel=0.05)


@pytest.mark.parametrize("sd", [0.5, math.sqrt(1.34), 2.0])
def test_the_crm_mtm_ess_matches_its_closed_form(sd):
    skeleton = crm_skeleton(0.25, 0.05, 3, 5)
    model = CRM(skeleton, target=0.25, prior_sd=sd, prior_mean=0.2)
    # Empiric model log p = e^b log s: d/db log p = d2/db2 log p = a := e^b log s, and
    # -d2/db2 log(1 - p) = -a p / (1 - p) - a^2 p / (1 - p)^2; prior mean of b is 0.2.
    beta = 0.2
    info = 0.0
    for s in skeleton:
        a = math.exp(beta) * math.log(s)
        p = s ** math.exp(beta)
        # The prior mean of p at this level, by quadrature over the normal prior.
        z, w = np.polynomial.hermite_e.hermegauss(80)
        p_bar = float(np.sum(w * s ** np.exp(beta + sd * z)) / np.sum(w))
        info += p_bar * (-a) + (1 - p_bar) * (a * p / (1 - p) + a**2 * p / (1 - p) ** 2)
    expected = (1 / sd**2) / (info / len(skeleton))
    assert model.prior_effective_sample_size() == pytest.approx(expected, rel=1e-3)


def _crm_and_trial(dlt_of_dose):
    model = CRM(crm_skeleton(0.25, 0.05, 3, 5), target=0.25)
    dose = np.repeat([1.0, 2.0, 3.0, 4.0, 5.0], 6)
    frame = pd.DataFrame({"dose": dose, "dlt": dlt_of_dose(model, dose)})
    return model, TrialData.from_dataframe(frame)


def test_ppp_values_are_moderate_on_data_from_the_model_and_extreme_when_misspecified():
    rng = np.random.default_rng(11)

    def simulated(model, dose):
        return (rng.random(dose.size) < model.p_dlt(0.0)[dose.astype(int) - 1]).astype(int)

    def inverted(model, dose):  # every patient at the two lowest doses has a DLT, none above
        return (dose <= 2).astype(int)

    for make, extreme in ((simulated, False), (inverted, True)):
        model, data = _crm_and_trial(make)
        idata = model.fit(data, draws=1000, chains=2, random_seed=1)
        ppp = model.posterior_predictive_check(idata, data, random_seed=2)["ppp"].to_numpy()
        worst = np.minimum(ppp, 1 - ppp).min()
        if extreme:
            assert worst < 0.01, ppp
        else:
            assert worst > 0.05, ppp


# --------------------------------------------------------------------------- elicitation


def _prior_quantiles(model, levels, probabilities, draws=10000):
    """Quantiles of p_dlt at levels (0-based) from the model's own PyMC prior."""
    prior = model.sample_prior_predictive(draws=draws, random_seed=7)["prior"]["p_dlt"]
    values = prior.stack(sample=("chain", "draw")).transpose("sample", "dose").to_numpy()
    return np.quantile(values[:, levels], probabilities, axis=0).T


def test_crm_statements_from_a_known_prior_recover_it():
    probabilities = (0.05, 0.5, 0.95)
    truth = CRM(crm_skeleton(0.25, 0.05, 3, 5), target=0.25, prior_mean=0.3, prior_sd=0.8)
    stated = _prior_quantiles(truth, [0, 4], probabilities)
    fit = crm_prior_from_statements(0.25, 3, 5, [1, 5], stated, probabilities=probabilities)
    assert fit.options["prior_mean"] == pytest.approx(0.3, abs=0.03)
    assert fit.options["prior_sd"] == pytest.approx(0.8, abs=0.03)
    assert fit.max_error < 0.01
    assert "p_dlt at level 5" in str(fit)
    assert CRM(**fit.options).skeleton == truth.skeleton


def test_ewoc_statements_from_known_beta_shapes_recover_them():
    truth = EWOC(0.33, 20.0, 140.0, mtd_prior=(2.0, 3.0), rho0_prior=(1.5, 4.0))
    probabilities = (0.1, 0.5, 0.9)
    prior = truth.sample_prior_predictive(draws=10000, random_seed=3)["prior"]
    mtd = np.quantile(prior["mtd"].to_numpy(), probabilities)
    rho0 = np.quantile(prior["rho0"].to_numpy(), probabilities)
    fit = ewoc_prior_from_statements(
        0.33, 20.0, 140.0, mtd, rho0_quantiles=rho0, probabilities=probabilities
    )
    assert fit.options["mtd_prior"] == pytest.approx((2.0, 3.0), rel=0.1)
    assert fit.options["rho0_prior"] == pytest.approx((1.5, 4.0), rel=0.1)
    assert EWOC(**fit.options).mtd_prior == fit.options["mtd_prior"]


def test_latent_gp_statements_are_reproduced_by_its_pymc_prior():
    stated = [[0.01, 0.05, 0.2], [0.03, 0.12, 0.35], [0.08, 0.25, 0.55], [0.15, 0.4, 0.7]]
    fit = latent_gp_prior_from_statements([10, 20, 40, 80], stated)
    assert fit.max_error < 0.02
    implied = _prior_quantiles(LatentGP(**fit.options), [0, 1, 2, 3], (0.05, 0.5, 0.95))
    # The fitted table is what the model's own prior gives (Monte Carlo, 10000 draws).
    fitted = fit.table["fitted"].to_numpy().reshape(4, 3)
    np.testing.assert_allclose(implied, fitted, atol=0.01)


def test_statements_out_of_order_are_refused():
    with pytest.raises(ValueError, match="increase along each row"):
        crm_prior_from_statements(0.25, 3, 5, [1], [[0.2, 0.1, 0.3]])
    with pytest.raises(ValueError, match=r"quantiles must lie in \(20, 140\)"):
        ewoc_prior_from_statements(0.33, 20.0, 140.0, [10.0, 50.0, 100.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # the lowest level stated above the highest: no increasing skeleton gives it
        (
            lambda: crm_prior_from_statements(
                0.25, 3, 5, [1, 5], [[0.5, 0.6, 0.7], [0.01, 0.02, 0.03]]
            ),
            r"quantiles\[1\] = \[0.01, 0.02, 0.03\] lies below quantiles\[0\]",
        ),
        (
            lambda: crm_prior_from_statements(0.25, 3, 5, [2, 2], [[0.1, 0.2, 0.3]] * 2),
            "levels must be distinct",
        ),
        (
            lambda: crm_prior_from_statements(0.25, 3, 5, [], np.zeros((0, 3))),
            "at least one",
        ),
        (
            lambda: crm_prior_from_statements(0.25, 3, 5, [1], [["0.1", "0.25", "0.5"]]),
            r"quantiles\[0\] must be a real number, got '0.1'",
        ),
        (
            lambda: ewoc_prior_from_statements(
                0.33, 0.0, 100.0, [10.0, 50.0, 90.0], rho0_quantiles=[0.1, 0.2, 0.4]
            ),
            r"rho0_quantiles\[0\] = \[0.1, 0.2, 0.4\]: .* got 0.4",
        ),
        # a 90 % interval of 0.2 on a range of 100: sharper than Beta shapes below e^5 give
        (
            lambda: ewoc_prior_from_statements(0.33, 0.0, 100.0, [49.9, 50.0, 50.1]),
            r"puts log mtd_prior\[0\] at the edge of its range",
        ),
        (
            lambda: blrm_prior_from_quantiles(
                [2.0, 4.0, 60.0],
                60.0,
                [[0.0039, 0.0089, 0.0204], [0.0073, 0.0168, 0.0381], [0.0613, 0.1729, 0.4008]],
            ),
            r"puts log sd of log\(beta\) at the edge of its range",
        ),
        (
            lambda: crm_skeleton(0.05, 0.0495, 8, 8, model="logistic"),
            "half_width=0.0495 is too wide for 8 levels",
        ),
    ],
)
def test_statements_no_prior_can_give_are_refused_by_name(call, message):
    # Each was accepted (a prior far from the statements, or one the search's bounds made), or
    # failed with an IndexError or OverflowError, or named neither the argument nor the value.
    with pytest.raises(ValueError, match=message):
        call()


def test_latent_gp_statements_at_symmetric_levels_keep_the_default_spread_of_sigma_f():
    # Levels 0.2 and 0.8 fix one spread: the search drifted along the ridge of (mu, s) to a
    # sigma_f range of (0.0004, 2099), where its quadrature failed, and the table claimed an
    # error of 3e-5 that the model's own prior (0.148 against 0.1625 at dose 4) did not keep.
    probabilities = (0.2, 0.8)
    stated = [[0.0104, 0.1625], [0.0503, 0.4952], [0.1082, 0.692]]
    fit = latent_gp_prior_from_statements([4.0, 18.0, 32.0], stated, probabilities=probabilities)
    low, high = fit.options["sigma_f_range"]
    assert high / low == pytest.approx(4.0)  # the default range's spread, (0.5, 2)
    implied = _prior_quantiles(LatentGP(**fit.options), [0, 1, 2], probabilities, draws=40000)
    fitted = fit.table["fitted"].to_numpy().reshape(3, 2)
    np.testing.assert_allclose(implied, fitted, atol=0.01)
    np.testing.assert_allclose(fitted, stated, atol=0.01)


def test_the_plot_helpers_draw_the_check_and_the_pathways():
    import matplotlib

    matplotlib.use("Agg")
    from dosezoo.config import design_from_config, read_config
    from dosezoo.designs.pathways import dose_paths
    from dosezoo.models import plot_ppc
    from tests.test_contract import EXAMPLES

    model, data = _crm_and_trial(lambda model, dose: (dose >= 4).astype(int))
    idata = model.fit(data, draws=200, chains=2, random_seed=1)
    check = model.posterior_predictive_check(idata, data, random_seed=2)
    axes = plot_ppc(check)
    assert len(axes) == check.sizes["statistic"]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["1", "2", "3", "4", "5"]
    design = design_from_config(read_config(EXAMPLES / "crm.toml"), "crm")
    paths = dose_paths(design, TrialData.from_csv(EXAMPLES / "binary_cohorts.csv"), 1)
    axis = paths.plot()
    assert len(axis.collections) == len(paths.table)  # one marker per node


def test_the_ess_is_undefined_where_one_patients_information_is_not_positive():
    # The prior predictive's DLT rates weigh the curvatures into a negative information for the
    # MTD's coordinate: its ESS came out as -2120 patients and the overall one as 212.
    model = EWOC(0.2, 5, 50, dose_levels=[10, 20, 30, 40], rho0_prior=(0.7, 0.7), mtd_prior=(3, 2))
    ess = model.prior_effective_sample_size()
    assert math.isnan(ess["logit_mtd_fraction"])
    assert math.isnan(ess["overall"])
    assert ess["logit_rho0_fraction"] > 0


def test_the_variance_ratio_ess_of_a_fixed_mean_is_infinite_and_needs_two_draws():
    # A constant column's variance rounds to ~1e-33: its ESS read 6e31, not inf.
    ess = variance_ratio_ess(np.full((10, 1), 0.3), np.full((10, 1), 0.21))
    assert ess.tolist() == [math.inf]
    with pytest.raises(ValueError, match="at least two draws"):
        variance_ratio_ess(np.full((1, 2), 0.3), np.full((1, 2), 0.21))


def test_latent_gp_statements_beyond_the_quadratures_reach_are_refused():
    # Heavy-tailed statements at two distances from 1/2 drive the fit to a sigma_f range of
    # (6e-5, 708), where the search's quadrature and a finer one disagree: its table would
    # report an error the prior does not keep.
    t = np.array([-9.0, -0.1, 0.0, 0.1, 9.0])
    stated = expit(np.array([-2.0, -1.0, 0.0])[:, None] + t[None])
    with pytest.raises(ValueError, match="beyond what the fit's quadrature resolves"):
        latent_gp_prior_from_statements(
            [1.0, 2.0, 3.0], stated, probabilities=(0.05, 0.25, 0.5, 0.75, 0.95)
        )
