"""Simulation-based calibration of the 3PND samplers (kernel and PyMC step methods).

Parameters and data are drawn by PyMC's forward sampler from the model itself, so the
check is independent of the kernels. The negative control is a plausible bug: the sampler
reads ``log N(0, delta^2)`` as scale ``delta^2`` (subtle), and one that uses ``gamma`` where
``Phi^-1(gamma)`` belongs (a forgotten probit; gross). SBC must reject both.
"""

import numpy as np
import pytest

from dosezoo.models import ThreePND
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.validation import three_pnd_sbc

MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
DOSES = np.repeat([40.0, 60.0, 80.0, 100.0], 3)
KEPT, THIN = 990, 10  # 99 thinned draws: ranks 0..99 fall evenly into 10 or 20 bins
ALPHA = 0.001

# Hyper-parameters as the sampler reads them: correct, and the two bugs.
CORRECT = MODEL.hyper
PROBIT_BUG = kernels.pack_hyper(MODEL.eta, MODEL.gamma, MODEL.x_min, MODEL.x_max, MODEL.delta)
DELTA_BUG = kernels.pack_hyper(MODEL.eta, MODEL.z, MODEL.x_min, MODEL.x_max, MODEL.delta**2)


def _sbc(engine, n_reps, seed, hyper):
    return three_pnd_sbc(
        MODEL,
        DOSES,
        engine=engine,
        n_reps=n_reps,
        random_seed=seed,
        sampler_hyper=hyper,
        kept=KEPT,
        thin=THIN,
    )


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
    [("kernel", 4000, "delta"), ("kernel", 500, "probit"), ("pymc", 500, "probit")],
)
def test_sbc_thorough_rejects_the_broken_sampler(engine, n_reps, bug):
    hyper = {"delta": DELTA_BUG, "probit": PROBIT_BUG}[bug]
    p = _assert_rejected(_sbc(engine, n_reps, 400, hyper))
    print(f"SBC negative control ({bug} bug), {engine}, {n_reps} replications, chi-square p: {p}")
