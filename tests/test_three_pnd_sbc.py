"""Simulation-based calibration of the 3PND samplers (kernel and PyMC step methods).

Parameters and data are drawn by PyMC's forward sampler from the model itself, so the
check is independent of the kernels. The negative control is a plausible bug: the sampler
reads ``log N(0, delta^2)`` as scale ``delta^2`` (subtle), and one that uses ``gamma`` where
``Phi^-1(gamma)`` belongs (a forgotten probit; gross). SBC must reject both.
"""

import numpy as np
import pandas as pd
import pymc as pm
import pytest

from dosezoo.data import TrialData
from dosezoo.models import ThreePND
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.samplers.three_pnd import three_pnd_steps
from dosezoo.validation import simulation_based_calibration

MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
DOSES = np.repeat([40.0, 60.0, 80.0, 100.0], 3)
NAMES = ("beta", "sigma", "nu", "mtd")
KEPT, THIN = 990, 10  # 99 thinned draws: ranks 0..99 fall evenly into 10 or 20 bins
ALPHA = 0.001


def _replications(n_reps, seed):
    pm_model = MODEL.build(
        TrialData.from_dataframe(pd.DataFrame({"dose": DOSES, "y": np.ones(DOSES.size)}))
    )
    *params, y = pm.draw([pm_model[name] for name in (*NAMES, "y")], draws=n_reps, random_seed=seed)
    return pm_model, dict(zip(NAMES, params, strict=True)), list(y)


# Hyper-parameters as the sampler reads them: correct, and the two bugs.
CORRECT = MODEL.hyper
PROBIT_BUG = kernels.pack_hyper(MODEL.eta, MODEL.gamma, MODEL.x_min, MODEL.x_max, MODEL.delta)
DELTA_BUG = kernels.pack_hyper(MODEL.eta, MODEL.z, MODEL.x_min, MODEL.x_max, MODEL.delta**2)


def _kernel_fit(hyper):

    def fit(y, seed):
        rng = np.random.default_rng(seed)
        draws, _ = kernels.run_chain(
            rng,
            *MODEL.initial_state(),
            kernels.summarise(DOSES, y, MODEL.x_min),
            hyper,
            200,
            KEPT,
            True,
        )
        return dict(zip(NAMES, draws.T, strict=True))

    return fit


def _pymc_fit(pm_model, hyper):
    def fit(y, seed):
        pm.set_data({"response": y}, model=pm_model)
        steps = three_pnd_steps(pm_model)
        for step in steps:
            step.layout.hyper = hyper
        idata = pm.sample(
            draws=KEPT,
            tune=200,
            chains=1,
            step=steps,
            model=pm_model,
            random_seed=seed,
            progressbar=False,
            quiet=True,
        )
        return {name: idata["posterior"][name].to_numpy() for name in NAMES}

    return fit


def _sbc(engine, n_reps, seed, hyper):
    pm_model, truth, data = _replications(n_reps, seed)
    fit = _kernel_fit(hyper) if engine == "kernel" else _pymc_fit(pm_model, hyper)
    return simulation_based_calibration(truth, data, fit, thin=THIN, random_seed=seed + 1)


def _assert_calibrated(result):
    assert result.n_draws == KEPT // THIN
    p = result.p_values(bins=10)
    assert min(p.values()) > ALPHA / len(p), p
    return p


def _assert_rejected(result):
    p = result.p_values(bins=10)
    assert min(p.values()) < ALPHA, p
    return p


def test_kernel_sbc_quick():
    _assert_calibrated(_sbc("kernel", 200, 100, CORRECT))


def test_kernel_sbc_quick_rejects_the_broken_sampler():
    _assert_rejected(_sbc("kernel", 200, 100, PROBIT_BUG))


def test_step_methods_sbc_quick():
    _assert_calibrated(_sbc("pymc", 20, 200, CORRECT))


@pytest.mark.slow
@pytest.mark.parametrize(("engine", "n_reps"), [("kernel", 2000), ("pymc", 500)])
def test_sbc_thorough(engine, n_reps):
    p = _assert_calibrated(_sbc(engine, n_reps, 300, CORRECT))
    print(f"SBC {engine}, {n_reps} replications, chi-square p per variable: {p}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("engine", "n_reps", "bug"),
    [("kernel", 2000, "delta"), ("kernel", 500, "probit"), ("pymc", 500, "probit")],
)
def test_sbc_thorough_rejects_the_broken_sampler(engine, n_reps, bug):
    hyper = {"delta": DELTA_BUG, "probit": PROBIT_BUG}[bug]
    p = _assert_rejected(_sbc(engine, n_reps, 400, hyper))
    print(f"SBC negative control ({bug} bug), {engine}, {n_reps} replications, chi-square p: {p}")
