"""Checks that a sampler targets the posterior it claims: SBC and agreement with a reference.

Simulation-based calibration (Talts et al. 2018; Modrák et al. 2023): draw parameters from
the prior, data from the model given them, fit; if the sampler is right, the rank of the
true value among ``L`` (thinned) posterior draws is uniform on ``0..L``. Agreement between
two samplers is judged by z-scores of differences in posterior summaries over their Monte
Carlo standard errors, which, unlike a pooled R-hat, catch a small shift.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
from scipy import stats

from dosezoo.data import TrialData
from dosezoo.models.joint_probit import JointProbit, forward_sampling
from dosezoo.models.three_pnd import ThreePND
from dosezoo.samplers import joint_probit_kernels, three_pnd_kernels
from dosezoo.samplers.joint_probit import joint_probit_steps
from dosezoo.samplers.three_pnd import three_pnd_steps


@dataclass(frozen=True)
class SBCResult:
    """Ranks from :func:`simulation_based_calibration`.

    Attributes
    ----------
    ranks : dict of str to numpy.ndarray
        Per variable, the rank (0..n_draws) of the truth in each replication.
    n_draws : int
        Posterior draws each rank is taken among (after thinning).
    """

    ranks: dict[str, np.ndarray]
    n_draws: int

    def p_values(self, bins: int = 10) -> dict[str, float]:
        """Chi-square test of rank uniformity per variable.

        Parameters
        ----------
        bins : int
            Equal-width bins over ``0..n_draws``; ``n_draws + 1`` must be divisible by it
            for the bins to hold equal probability (checked).

        Returns
        -------
        dict of str to float
        """
        return {
            name: rank_uniformity_pvalue(r, self.n_draws, bins=bins)
            for name, r in self.ranks.items()
        }


def rank_uniformity_pvalue(ranks: np.ndarray, n_draws: int, *, bins: int = 10) -> float:
    """P-value of a chi-square test that ``ranks`` are uniform on ``0..n_draws``.

    Parameters
    ----------
    ranks : numpy.ndarray
        Integer ranks.
    n_draws : int
        Largest possible rank.
    bins : int
        Number of equal-probability bins; must divide ``n_draws + 1``.

    Returns
    -------
    float
    """
    if (n_draws + 1) % bins:
        raise ValueError(f"bins={bins} must divide n_draws + 1 = {n_draws + 1}")
    counts = np.bincount(np.asarray(ranks) * bins // (n_draws + 1), minlength=bins)
    return float(stats.chisquare(counts).pvalue)


def simulation_based_calibration(
    prior_draws: dict[str, np.ndarray],
    simulated: Sequence[object],
    fit: Callable[[object, np.random.SeedSequence], dict[str, np.ndarray]],
    *,
    thin: int,
    random_seed: int,
) -> SBCResult:
    """Ranks of the prior draws among posterior draws fitted to data simulated from them.

    Parameters
    ----------
    prior_draws : dict of str to numpy.ndarray
        True parameter values, one entry per replication.
    simulated : sequence
        Replication ``r``'s data, simulated from ``prior_draws[...][r]``.
    fit : callable
        ``fit(data, seed) -> {name: draws}`` with draws shaped ``(chain, draw)`` or
        flattened; must return every name in ``prior_draws``.
    thin : int
        Keep every ``thin``-th draw, so that ranks are close to those of independent draws.
    random_seed : int
        Seeds of the fits come from ``SeedSequence(random_seed).spawn``.

    Returns
    -------
    SBCResult
    """
    seeds = np.random.SeedSequence(random_seed).spawn(len(simulated))
    ranks: dict[str, list[int]] = {name: [] for name in prior_draws}
    n_draws = None
    for r, (data, seed) in enumerate(zip(simulated, seeds, strict=True)):
        posterior = fit(data, seed)
        for name, truth in prior_draws.items():
            kept = np.asarray(posterior[name]).reshape(-1)[::thin]
            n_draws = kept.size if n_draws is None else n_draws
            ranks[name].append(int(np.sum(kept < truth[r])))
    return SBCResult({name: np.asarray(r) for name, r in ranks.items()}, int(n_draws))


def agreement_z(
    a: np.ndarray, b: np.ndarray, *, probs: Sequence[float] = (0.05, 0.5, 0.95)
) -> dict[str, float]:
    """|difference| / combined MCSE of the mean and of quantiles of two samplers' draws.

    Parameters
    ----------
    a, b : numpy.ndarray
        Draws shaped ``(chain, draw)`` of one scalar from two samplers.
    probs : sequence of float
        Quantiles compared.

    Returns
    -------
    dict of str to float
        ``{"mean": z, "q0.05": z, ...}``; values above about 4 indicate disagreement.
    """
    z = {"mean": abs(a.mean() - b.mean()) / np.hypot(float(az.mcse(a)), float(az.mcse(b)))}
    for p in probs:
        se = np.hypot(
            float(az.mcse(a, method="quantile", prob=p)),
            float(az.mcse(b, method="quantile", prob=p)),
        )
        z[f"q{p:g}"] = abs(np.quantile(a, p) - np.quantile(b, p)) / se
    return {k: float(v) for k, v in z.items()}


def three_pnd_sbc(
    model: ThreePND,
    doses: Sequence[float],
    *,
    engine: str,
    n_reps: int,
    random_seed: int,
    sampler_hyper: np.ndarray | None = None,
    kept: int = 990,
    thin: int = 10,
    tune: int = 200,
) -> SBCResult:
    """SBC of a 3PND engine on a fixed design: parameters and data from PyMC's forward sampler.

    Parameters
    ----------
    model : ThreePND
        The model whose prior generates the replications.
    doses : sequence of float
        The design: one dose per patient.
    engine : {"kernel", "pymc"}
        The numba sweep, or ``pm.sample`` with the step methods.
    n_reps : int
        Replications.
    random_seed : int
        Seeds the prior draws (``random_seed``) and the fits (``random_seed + 1``).
    sampler_hyper : numpy.ndarray, optional
        Hyper-parameters as the sampler reads them (``three_pnd_kernels.pack_hyper`` layout); the
        model's by default. A negative control passes deliberately wrong ones.
    kept, thin, tune : int
        Draws kept per fit (one chain), thinning, burn-in.

    Returns
    -------
    SBCResult
    """
    names = ("beta", "sigma", "nu", "mtd")
    doses = np.asarray(doses, dtype=float)
    hyper = model.hyper if sampler_hyper is None else np.asarray(sampler_hyper, dtype=float)
    pm_model = model.build(
        TrialData.from_dataframe(pd.DataFrame({"dose": doses, "y": np.ones(doses.size)}))
    )
    *params, responses = pm.draw(
        [pm_model[name] for name in (*names, "y")], draws=n_reps, random_seed=random_seed
    )

    def kernel_fit(y, seed):
        obs = three_pnd_kernels.summarise(doses, y, model.x_min)
        draws, _ = three_pnd_kernels.run_chain(
            np.random.default_rng(seed), *model.initial_state(), obs, hyper, tune, kept, True
        )
        return dict(zip(names, draws.T, strict=True))

    def pymc_fit(y, seed):
        pm.set_data({"response": y}, model=pm_model)
        steps = three_pnd_steps(pm_model)
        for step in steps:
            step.layout.hyper = hyper
        idata = pm.sample(
            draws=kept,
            tune=tune,
            chains=1,
            step=steps,
            model=pm_model,
            random_seed=seed,
            progressbar=False,
            quiet=True,
        )
        return {name: idata["posterior"][name].to_numpy() for name in names}

    fits = {"kernel": kernel_fit, "pymc": pymc_fit}
    if engine not in fits:
        raise ValueError(f"three_pnd_sbc: engine must be one of {tuple(fits)}, got {engine!r}")
    truth = dict(zip(names, params, strict=True))
    return simulation_based_calibration(
        truth, list(responses), fits[engine], thin=thin, random_seed=random_seed + 1
    )


def joint_probit_sbc(
    model: JointProbit,
    doses,
    *,
    engine: str = "kernel",
    n_reps: int,
    random_seed: int,
    variant: int = joint_probit_kernels.CORRECT,
    kept: int = 495,
    thin: int = 5,
    tune: int = 200,
):
    """Simulation-based calibration of a joint-probit engine on a fixed allocation of doses.

    Parameters and outcomes are drawn by PyMC's forward sampler from the model itself (so the
    check is independent of the kernels), then each replication is fitted with one chain.

    Parameters
    ----------
    model : dosezoo.models.joint_probit.JointProbit
        The model whose prior generates the replications.
    doses : sequence of float
        One dose per patient.
    engine : {"kernel", "pymc"}
        The numba sampler, or ``pm.sample`` with the step methods.
    n_reps : int
        Replications.
    random_seed : int
        Seeds the prior draws (``random_seed``) and the fits (``random_seed + 1``).
    variant : int
        ``CORRECT``, or a ``*_BUG`` variant of the kernels for a negative control.
    kept, thin, tune : int
        Draws per fit, thinning, burn-in.

    Returns
    -------
    dosezoo.validation.SBCResult
        Ranks of the seven parameters and of ``p_tox`` and ``p_response`` at the lowest and
        highest doses.
    """
    doses = np.asarray(doses, dtype=float)
    template = TrialData.from_dataframe(
        pd.DataFrame({"dose": doses, "dlt": np.zeros(doses.size, int), "efficacy": 0})
    )
    pm_model = model.build(template)
    with forward_sampling():
        *params, outcomes = pm.draw(
            [pm_model[name] for name in (*joint_probit_kernels.PARAMETERS, "outcome")],
            draws=n_reps,
            random_seed=random_seed,
        )
    truth = dict(zip(joint_probit_kernels.PARAMETERS, params, strict=True))
    rates = model.dose_probabilities(truth)
    last = len(model.dose_levels) - 1
    for name in ("p_tox", "p_response"):
        truth[f"{name}_lowest"] = rates[name][:, 0]
        truth[f"{name}_highest"] = rates[name][:, last]

    def data_of(cell):
        return TrialData.from_dataframe(
            pd.DataFrame({"dose": doses, "dlt": cell // 3, "efficacy": cell % 3})
        )

    def with_rates(draws):
        draws = {
            name: np.asarray(draws[name]).reshape(-1) for name in joint_probit_kernels.PARAMETERS
        }
        fitted = model.dose_probabilities(draws)
        for name in ("p_tox", "p_response"):
            draws[f"{name}_lowest"] = fitted[name][:, 0]
            draws[f"{name}_highest"] = fitted[name][:, last]
        return draws

    def kernel_fit(cell, seed):
        raw = model.sample_kernel(
            data_of(cell),
            draws=kept,
            tune=tune,
            chains=1,
            random_seed=np.random.default_rng(seed),
            variant=variant,
        )
        return with_rates(raw)

    def pymc_fit(cell, seed):
        pm.set_data({"cell": cell}, model=pm_model)
        idata = pm.sample(
            draws=kept,
            tune=tune,
            chains=1,
            step=joint_probit_steps(pm_model, variant=variant),
            model=pm_model,
            random_seed=np.random.default_rng(seed),
            progressbar=False,
            quiet=True,
        )
        return with_rates(
            {name: idata["posterior"][name].to_numpy() for name in joint_probit_kernels.PARAMETERS}
        )

    fits = {"kernel": kernel_fit, "pymc": pymc_fit}
    if engine not in fits:
        raise ValueError(f"joint_probit_sbc: engine must be one of {tuple(fits)}, got {engine!r}")
    return simulation_based_calibration(
        truth, list(outcomes), fits[engine], thin=thin, random_seed=random_seed + 1
    )
