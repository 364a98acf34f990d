"""Checks that a sampler targets the posterior it claims: SBC and agreement with a reference.

Simulation-based calibration (Talts et al. 2018; Modrák et al. 2023): draw parameters from
the prior, data from the model given them, fit; if the sampler is right, the rank of the
true value among ``L`` (thinned) posterior draws is uniform on ``0..L``. Agreement between
two samplers is judged by z-scores of differences in posterior summaries over their Monte
Carlo standard errors, which, unlike a pooled R-hat, catch a small shift.

The deliberately wrong samplers of the negative controls, which SBC must reject, live here and
nowhere else: each is the production numba sweep of
:mod:`dosezoo.samplers.joint_probit_kernels` with one move replaced by a classic slip
(:func:`negative_control_chain`).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
from numba import njit
from scipy import stats

from dosezoo.data import TrialData
from dosezoo.models.base import chain_generators
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

    Raises
    ------
    ValueError
        If there is no replication or no variable (no rank to compute).
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
    if n_draws is None:
        raise ValueError("simulation_based_calibration needs a replication and a variable")
    return SBCResult({name: np.asarray(r) for name, r in ranks.items()}, n_draws)


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
    dose = np.asarray(doses, dtype=float)
    hyper = model.hyper if sampler_hyper is None else np.asarray(sampler_hyper, dtype=float)
    pm_model = model.build(
        TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": np.ones(dose.size)}))
    )
    *params, responses = pm.draw(
        [pm_model[name] for name in (*names, "y")], draws=n_reps, random_seed=random_seed
    )

    def kernel_fit(y, seed):
        obs = three_pnd_kernels.summarise(dose, y, model.x_min)
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


# ------------------------------------------------------------ joint-probit negative controls
#
# Deliberately WRONG samplers, for SBC to reject; never used for inference. Each is the
# production sweep of joint_probit_kernels with one move replaced by a classic slip: every other
# move is the production kernel itself, and the random stream is the one the right sweep draws.

#: The negative controls of :func:`joint_probit_sbc` (codes of :func:`negative_control_chain`):
#: the slice on log(threshold) targeting the density without the Jacobian of the log, and the
#: exact coefficient draws ignoring the correlation (as if rho were 0).
JACOBIAN_BUG, IGNORE_CORRELATION_BUG = 0, 1
JOINT_PROBIT_NEGATIVE_CONTROLS = {
    "jacobian_bug": JACOBIAN_BUG,
    "ignore_correlation_bug": IGNORE_CORRELATION_BUG,
}


@njit(cache=True, error_model="numpy")
def log_threshold_density_without_jacobian(value, theta, x, eff, z_tox, prior):
    """WRONG on purpose: the slice target of ``v = log(threshold)`` without the Jacobian.

    The log-normal log density of the threshold ``c = exp(v)`` (it has the ``-v``) in place
    of the normal log density of ``v``: the Jacobian ``dc/dv = c`` of the log is forgotten.
    The right target is :func:`~dosezoo.samplers.joint_probit_kernels.log_target`.
    """
    z = (value - prior[joint_probit_kernels.LOG_THRESHOLD_MEAN]) / prior[
        joint_probit_kernels.LOG_THRESHOLD_SD
    ]
    log_prior = -0.5 * z * z - value
    log_likelihood = joint_probit_kernels.efficacy_log_likelihood(
        theta[joint_probit_kernels.RHO], math.exp(value), theta, x, eff, z_tox
    )
    return log_likelihood + log_prior


@njit(cache=True, error_model="numpy")
def draw_threshold_without_jacobian(rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """WRONG on purpose: the threshold's slice update on the density without the Jacobian.

    :func:`~dosezoo.samplers.joint_probit_kernels.draw_threshold`, whose slice update
    (:func:`~dosezoo.samplers.joint_probit_kernels.slice_update`, copied here step for step)
    targets :func:`log_threshold_density_without_jacobian` (in place). Returns the density
    evaluations.
    """
    k = joint_probit_kernels
    current = math.log(theta[k.THRESHOLD])
    width = k.LOG_THRESHOLD_SLICE_WIDTH
    level = log_threshold_density_without_jacobian(current, theta, x, eff, z_tox, prior)
    level += math.log(rng.uniform())
    left = current - width * rng.uniform()
    right = left + width
    steps_left = math.floor(k.SLICE_MAX_STEPS * rng.uniform())
    steps_right = k.SLICE_MAX_STEPS - 1 - steps_left
    evals = 1
    while (
        steps_left > 0
        and log_threshold_density_without_jacobian(left, theta, x, eff, z_tox, prior) > level
    ):
        left -= width
        steps_left -= 1
        evals += 1
    while (
        steps_right > 0
        and log_threshold_density_without_jacobian(right, theta, x, eff, z_tox, prior) > level
    ):
        right += width
        steps_right -= 1
        evals += 1
    while True:
        proposal = left + rng.uniform() * (right - left)
        evals += 1
        if log_threshold_density_without_jacobian(proposal, theta, x, eff, z_tox, prior) > level:
            break
        if evals >= k.MAX_SHRINKS + k.SLICE_MAX_STEPS:
            proposal = current
            break
        if proposal < current:
            left = proposal
        else:
            right = proposal
    theta[k.THRESHOLD] = math.exp(proposal)
    return evals


@njit(cache=True, error_model="numpy")
def draw_toxicity_coefficients_ignoring_correlation(rng, theta, x, z_tox, z_eff, prior):
    """WRONG on purpose: the exact draw of ``(alpha_T, beta_T)`` as if rho were 0 (in place).

    The production draw told ``rho = 0``: it regresses ``Z_T`` on the dose alone, forgetting
    the shift ``rho (Z_E - mu_E)`` and the noise variance ``1 - rho^2``.
    """
    rho = theta[joint_probit_kernels.RHO]
    theta[joint_probit_kernels.RHO] = 0.0
    joint_probit_kernels.draw_toxicity_coefficients(rng, theta, x, z_tox, z_eff, prior)
    theta[joint_probit_kernels.RHO] = rho


@njit(cache=True, error_model="numpy")
def draw_efficacy_coefficients_ignoring_correlation(rng, theta, x, z_tox, z_eff, prior):
    """WRONG on purpose: the exact draw of the efficacy coefficients as if rho were 0."""
    rho = theta[joint_probit_kernels.RHO]
    theta[joint_probit_kernels.RHO] = 0.0
    joint_probit_kernels.draw_efficacy_coefficients(rng, theta, x, z_tox, z_eff, prior)
    theta[joint_probit_kernels.RHO] = rho


@njit(cache=True, error_model="numpy")
def negative_control_sweep(control, rng, theta, x, tox, eff, z_tox, z_eff, prior):
    """WRONG on purpose: :func:`~dosezoo.samplers.joint_probit_kernels.sweep` with one slip.

    ``JACOBIAN_BUG``: the latent block with :func:`draw_threshold_without_jacobian`.
    ``IGNORE_CORRELATION_BUG``: the toxicity and efficacy blocks with the coefficient draws
    ignoring rho. Returns the slice evaluations, as the right sweep does.
    """
    k = joint_probit_kernels
    if control == JACOBIAN_BUG:
        k.draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff)
        rho_evals = k.draw_rho(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        threshold_evals = draw_threshold_without_jacobian(
            rng, theta, x, tox, eff, z_tox, z_eff, prior
        )
        k.draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff)
        toxicity_evals = k.toxicity_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        efficacy_evals = k.efficacy_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
    else:
        rho_evals, threshold_evals = k.latent_block(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        toxicity_evals = k.toxicity_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        k.draw_latent_toxicity(rng, theta, x, tox, z_tox, z_eff)
        draw_toxicity_coefficients_ignoring_correlation(rng, theta, x, z_tox, z_eff, prior)
        efficacy_evals = k.efficacy_slices(rng, theta, x, tox, eff, z_tox, z_eff, prior)
        k.draw_latent_efficacy(rng, theta, x, eff, z_tox, z_eff)
        draw_efficacy_coefficients_ignoring_correlation(rng, theta, x, z_tox, z_eff, prior)
    return rho_evals, threshold_evals, toxicity_evals, efficacy_evals


@njit(cache=True, error_model="numpy")
def negative_control_chain(control, rng, theta0, x, tox, eff, prior, n_tune, n_draws):
    """WRONG on purpose: one chain of :func:`negative_control_sweep`.

    Parameters
    ----------
    control : int
        ``JACOBIAN_BUG`` or ``IGNORE_CORRELATION_BUG``.
    rng, theta0, x, tox, eff, prior, n_tune, n_draws
        As for :func:`~dosezoo.samplers.joint_probit_kernels.run_chain`.

    Returns
    -------
    draws : numpy.ndarray
        ``(n_draws, 7)`` in the kernels' layout of ``theta``.
    """
    theta = theta0.copy()
    z_tox, z_eff = joint_probit_kernels.initial_latents(rng, theta, x, tox, eff)
    draws = np.empty((n_draws, theta.size))
    for it in range(n_tune + n_draws):
        negative_control_sweep(control, rng, theta, x, tox, eff, z_tox, z_eff, prior)
        if it >= n_tune:
            draws[it - n_tune] = theta
    return draws


def negative_control_draws(
    model: JointProbit,
    data: TrialData,
    negative_control: str,
    *,
    draws: int,
    tune: int,
    random_seed: int | np.random.Generator | None,
) -> dict[str, np.ndarray]:
    """One chain of a wrong sampler, seeded and started as ``model.sample_kernel`` does.

    Parameters
    ----------
    model : dosezoo.models.joint_probit.JointProbit
        The model whose prior and initial point the chain uses.
    data : TrialData
        Columns ``dose``, ``dlt`` and ``efficacy``.
    negative_control : str
        A key of :data:`JOINT_PROBIT_NEGATIVE_CONTROLS`.
    draws, tune : int
        Draws kept, burn-in.
    random_seed : int or numpy.random.Generator or None
        As for ``sample_kernel`` (one chain).

    Returns
    -------
    dict of str to numpy.ndarray
        The seven parameters, each shaped ``(1, draws)``.
    """
    control = JOINT_PROBIT_NEGATIVE_CONTROLS[negative_control]
    x, tox, eff = model.arrays(data, min_patients=1)
    (rng,) = chain_generators(random_seed, 1)
    values = negative_control_chain(
        control, rng, model.initial_theta(), x, tox, eff, model.prior.packed(), tune, draws
    )
    return {name: values[None, :, i] for i, name in enumerate(joint_probit_kernels.PARAMETERS)}


def joint_probit_sbc(
    model: JointProbit,
    doses,
    *,
    engine: str = "kernel",
    n_reps: int,
    random_seed: int,
    negative_control: str | None = None,
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
    engine : {"kernel", "imh", "pymc"}
        The numba Gibbs sampler, the independence Metropolis-Hastings sampler on the outcome
        counts, or ``pm.sample`` with the Gibbs step methods.
    n_reps : int
        Replications.
    random_seed : int
        Seeds the prior draws (``random_seed``) and the fits (``random_seed + 1``).
    negative_control : str, optional
        A key of :data:`JOINT_PROBIT_NEGATIVE_CONTROLS`: fit with that deliberately wrong
        kernel chain instead (engine ``"kernel"`` only), which SBC should reject.
    kept, thin, tune : int
        Draws per fit, thinning, burn-in.

    Returns
    -------
    dosezoo.validation.SBCResult
        Ranks of the seven parameters and of ``p_tox`` and ``p_response`` at the lowest and
        highest doses.
    """
    if engine not in ("kernel", "imh", "pymc"):
        raise ValueError(
            f"joint_probit_sbc: engine must be one of ('kernel', 'imh', 'pymc'), got {engine!r}"
        )
    if negative_control is not None:
        if negative_control not in JOINT_PROBIT_NEGATIVE_CONTROLS:
            raise ValueError(
                "joint_probit_sbc: negative_control must be None or one of "
                f"{tuple(JOINT_PROBIT_NEGATIVE_CONTROLS)}, got {negative_control!r}"
            )
        if engine != "kernel":
            raise ValueError(
                f"joint_probit_sbc: a negative control runs the kernel engine, got {engine!r}"
            )
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
        data, rng = data_of(cell), np.random.default_rng(seed)
        if negative_control is None:
            raw = model.sample_kernel(data, draws=kept, tune=tune, chains=1, random_seed=rng)
        else:
            raw = negative_control_draws(
                model, data, negative_control, draws=kept, tune=tune, random_seed=rng
            )
        return with_rates(raw)

    def imh_fit(cell, seed):
        x, counts = model.outcome_counts(data_of(cell))
        raw = model.sample_imh(
            x, counts, draws=kept, tune=tune, chains=1, random_seed=np.random.default_rng(seed)
        )
        return with_rates(raw)

    def pymc_fit(cell, seed):
        pm.set_data({"cell": cell}, model=pm_model)
        idata = pm.sample(
            draws=kept,
            tune=tune,
            chains=1,
            step=joint_probit_steps(pm_model),
            model=pm_model,
            random_seed=np.random.default_rng(seed),
            progressbar=False,
            quiet=True,
        )
        return with_rates(
            {name: idata["posterior"][name].to_numpy() for name in joint_probit_kernels.PARAMETERS}
        )

    fit = {"kernel": kernel_fit, "imh": imh_fit, "pymc": pymc_fit}[engine]
    return simulation_based_calibration(
        truth, list(outcomes), fit, thin=thin, random_seed=random_seed + 1
    )
