"""The designs and scenarios of the package's studies, defined once.

Lee (2023)'s simulation study and its O6-BG re-design; the Project Optimus trial (escalation,
dose range, randomised pick-the-winner) against the MTD-only path. Shared by the benchmark
scripts that reproduce them (``benchmarks/lee2023_study.py``, ``benchmarks/o6bg_redesign.py``,
``benchmarks/optimus_study.py``), the notebooks and ``dosezoo demo``.
"""

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from dosezoo.datasets import O6BG_RESPONSE_OFFSET
from dosezoo.designs import (
    Design,
    MTDQuantileRule,
    ewoc_design,
    mtd_quantile_design,
    therapeutic_dose_range,
)
from dosezoo.designs.pick_the_winner_stage import PickTheWinnerStage, mean_and_se, stage_uniforms
from dosezoo.models import EWOC, ThreePND
from dosezoo.report import selections_over_overdose_limit
from dosezoo.scenarios import (
    ContinuousToxicityScenario,
    EffToxScenario,
    O6BGResampling,
    standard_efftox_scenarios,
)
from dosezoo.simulate import run_trial, simulate, simulate_designs

# ------------------------------------------------------- Lee (2023), "Simulation experiments"

#: Accelerated and standard dosing: (gamma, alpha).
LEE2023_STRATEGIES = {"acc": (0.9, 0.01), "std": (0.99, 0.001)}
#: Fully and cohort sequential adaptive designs: cohort size.
LEE2023_SCHEDULES = {"FSAD": 1, "CSAD": 3}
LEE2023_SAMPLE_SIZES = (18, 30, 45)
LEE2023_NU0 = (0.6, 1.0, 1.4)
LEE2023_SHARED: dict[str, Any] = {"delta": 0.1, "eta": 3.0, "x_min": 5.0, "x_max": 80.0}
LEE2023_START_DOSE = 6.0
LEE2023_TRUE_MTD = 50.0
LEE2023_SIGMA0 = 0.1


@dataclass(frozen=True)
class StudyConfiguration:
    """One cell of a simulation study: a design, a scenario and their labels."""

    name: str
    labels: dict
    design: Design
    scenario: ContinuousToxicityScenario


def lee2023_configurations() -> list[StudyConfiguration]:
    """Return the 36 configurations of Lee (2023)'s Table 1: 4 designs x N x nu0."""
    configurations = []
    for schedule, cohort_size in LEE2023_SCHEDULES.items():
        for strategy, (gamma, alpha) in LEE2023_STRATEGIES.items():
            model = ThreePND(gamma=gamma, **LEE2023_SHARED)
            for n in LEE2023_SAMPLE_SIZES:
                design = mtd_quantile_design(
                    model,
                    MTDQuantileRule(alpha=alpha),
                    start_dose=LEE2023_START_DOSE,
                    cohort_size=cohort_size,
                    sample_size=n,
                )
                for nu0 in LEE2023_NU0:
                    scenario = ContinuousToxicityScenario(
                        true_mtd=LEE2023_TRUE_MTD,
                        nu=nu0,
                        sigma=LEE2023_SIGMA0,
                        eta=model.eta,
                        gamma=gamma,
                        x_min=model.x_min,
                    )
                    label = f"{schedule} ({strategy})"
                    configurations.append(
                        StudyConfiguration(
                            name=f"{schedule}-{strategy}-N{n}-nu{nu0:g}",
                            labels={"design": label, "N": n, "nu0": nu0},
                            design=design,
                            scenario=scenario,
                        )
                    )
    return configurations


# --------------------------------------------------------------- Lee (2023), "Application"

O6BG_MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5, dose_unit="mg/m^2")
O6BG_LEVELS = (40.0, 60.0, 80.0, 100.0, 120.0)
#: Feasibility bound of the accelerated and the standard re-design.
O6BG_ALPHAS = {"accelerated": 0.1, "standard": 0.05}
#: The EWOC re-design (Lee 2023, Table 3): target rate of undetectable AGT ``theta = 0.4 =
#: 1 - gamma`` and uniform priors on the DLT rate at 20 mg/m^2 (in (0, theta)) and on the MTD
#: (in the dose range 20-140).
O6BG_EWOC_MODEL = EWOC(theta=0.4, x_min=20.0, x_max=140.0, dose_levels=O6BG_LEVELS)
#: Increase of the feasibility bound per patient of the "increasing alpha" variant: from
#: 0.1 (0.05) it reaches 0.5 (0.455) at the last decision, after 27 patients.
O6BG_ALPHA_STEP = 0.015
#: A decision counts as over its feasibility bound when its ``P(MTD < dose)`` exceeds the bound
#: by more than this: the exact posteriors integrate that probability to about 1e-5, and EWOC
#: reaches a level whose probability exceeds alpha by less (``designs.ewoc.CDF_TOLERANCE``).
BOUND_TOLERANCE = 1e-4


def o6bg_design(alpha: float, **rule_options: Any) -> Design:
    """Return the O6-BG re-design: CSAD (C = 3), N = 30, dose levels, monotone, ``x_1 = 40``.

    ``rule_options`` are further options of :class:`~dosezoo.designs.MTDQuantileRule` (the
    variants of the study: ``rounding``, ``no_skipping``, ``alpha_step``, ...).
    """
    return mtd_quantile_design(
        O6BG_MODEL,
        MTDQuantileRule(alpha=alpha, dose_levels=O6BG_LEVELS, monotone=True, **rule_options),
        start_dose=40.0,
        cohort_size=3,
        sample_size=30,
    )


def o6bg_ewoc_design(alpha: float) -> Design:
    """Return Lee (2023)'s EWOC re-design of the O6-BG trial (Table 3).

    The paper ran ``ewoc_d1classical`` of the R package ``ewoc`` with ``theta = 0.4``,
    ``min_dose = 20``, ``max_dose = 140``, ``first_dose = 40``, uniform priors and the
    feasibility bound ``alpha`` (0.1 accelerated, 0.05 standard), 30 patients in cohorts of 3.
    It does not give the package's ``type``, ``dose_set``, ``rounding`` or ``no_skip_dose``;
    its patients are resampled at the trial's dose levels, so the doses must be levels. Here:
    the levels 40-120, rounded down (the package's default ``rounding = "down"``, the highest
    level with ``P(MTD < level) <= alpha``), no skipping (its default ``no_skip_dose = TRUE``);
    the MTD's prior is uniform on the continuous range 20-140 all the same.
    """
    return ewoc_design(
        O6BG_EWOC_MODEL,
        alpha=alpha,
        doses="levels",
        no_skipping=True,
        start_dose=40.0,
        cohort_size=3,
        sample_size=30,
    )


def o6bg_scenario(*, dichotomise: bool = False) -> O6BGResampling:
    """Return the scenario of resampled, perturbed AGT responses of the O6-BG trial.

    ``dichotomise`` adds the EWOC re-design's binary outcome ``dlt = 1(AGT < 5)``; the draws,
    so the patients, are the same.
    """
    return O6BGResampling(dichotomise=dichotomise)


def o6bg_arms() -> dict[str, tuple[Design, O6BGResampling]]:
    """Return every design of the O6-BG re-design study, with its scenario, by name.

    For each strategy (``accelerated``: alpha = 0.1, ``standard``: 0.05): ``3PND`` (Lee's
    re-design: nearest level, monotone), ``3PND level-aware`` (rounded down, no skipping:
    EWOC's escalation by levels), ``3PND increasing alpha`` (alpha grows by
    :data:`O6BG_ALPHA_STEP` per patient up to 0.5) and ``EWOC`` (on the dichotomised
    responses). Names are ``"<design>, <strategy>"``.
    """
    arms: dict[str, tuple[Design, O6BGResampling]] = {}
    continuous, binary = o6bg_scenario(), o6bg_scenario(dichotomise=True)
    for strategy, alpha in O6BG_ALPHAS.items():
        arms[f"3PND, {strategy}"] = (o6bg_design(alpha), continuous)
        arms[f"3PND level-aware, {strategy}"] = (
            o6bg_design(alpha, rounding="down", no_skipping=True),
            continuous,
        )
        arms[f"3PND increasing alpha, {strategy}"] = (
            o6bg_design(alpha, alpha_step=O6BG_ALPHA_STEP, alpha_max=0.5),
            continuous,
        )
        arms[f"EWOC, {strategy}"] = (o6bg_ewoc_design(alpha), binary)
    return arms


def o6bg_trial(
    alpha: float,
    random_seed: int,
    *,
    design: Design | None = None,
    scenario: O6BGResampling | None = None,
) -> dict:
    """One seeded re-designed O6-BG trial: trial 0 of ``simulate(..., random_seed)``.

    Parameters
    ----------
    alpha : float
        The feasibility bound (recorded; builds :func:`o6bg_design` when ``design`` is None).
    random_seed : int
        Seed of the simulation whose trial 0 this is.
    design : Design, optional
        Another design of the study (:func:`o6bg_arms`).
    scenario : O6BGResampling, optional
        Its scenario (:func:`o6bg_scenario` by default).

    Returns
    -------
    dict
        ``cohort_doses``, ``agt`` (per patient), ``p_overdose`` (posterior P(MTD < dose) of
        each cohort's dose when it was chosen; none for the start dose), ``final_dose`` (the
        last cohort's dose), ``recommended`` (the dose the design would give next),
        ``n_agt_below_5`` and ``n_above_100``.
    """
    design = design or o6bg_design(alpha)
    scenario = scenario or o6bg_scenario()
    record = run_trial(
        design, scenario, np.random.default_rng(np.random.SeedSequence(random_seed).spawn(1)[0])
    )
    kinds = record["decision_kind"]
    doses = record["decision_dose"][kinds == "next"]
    p_overdose = record["decision_quantities"]["p_overdose"][kinds == "next"]
    recommended = float(np.asarray(record["recommended_dose"], dtype=float))  # NaN: none
    return {
        "alpha": alpha,
        "random_seed": random_seed,
        "cohort_doses": doses.tolist(),
        "p_overdose": [None if np.isnan(p) else round(float(p), 4) for p in p_overdose],
        "agt": np.round(O6BG_RESPONSE_OFFSET - record["outcomes"]["y"], 2).tolist(),
        "final_dose": float(record["dose"][-1]),
        "recommended": None if np.isnan(recommended) else recommended,
        "n_agt_below_5": int(record["metrics"]["n_agt_below_5"]),
        "n_above_100": int(record["metrics"]["n_above_100"]),
    }


def o6bg_simulate(
    design: Design,
    scenario: O6BGResampling,
    n_trials: int,
    random_seed: int,
    n_jobs: int = 1,
    path: str | os.PathLike[str] | None = None,
) -> xr.Dataset:
    """Replicate a re-designed O6-BG trial: :func:`~dosezoo.simulate.simulate`, no progress bar.

    With ``path``, the results are kept in that netCDF file as ``simulate`` keeps them: a
    killed run resumes with the trials not saved yet.

    Trial ``i`` draws its patients from child ``i`` of ``SeedSequence(random_seed)``, whatever
    the design: two designs run with the same seed treat the same simulated patients (common
    random numbers: the ``j``-th patient of trial ``i`` draws the same uniforms, which give
    the same AGT value when the two designs give that patient the same dose).
    """
    return simulate(
        design,
        scenario,
        n_trials,
        random_seed=random_seed,
        n_jobs=n_jobs,
        path=path,
        progress=False,
    )


def o6bg_summary(results: xr.Dataset, alpha: float, random_seed: int) -> dict:
    """Distribution of the final and recommended doses, and the patients' counts, of replicates.

    Returns
    -------
    dict
        ``final_dose`` and ``recommended`` (share of trials per level), the means over trials
        of ``n_agt_below_5`` (patients with undetectable AGT), ``n_above_100`` (patients at
        120 mg/m^2, above every dose the real trial found tolerable) and ``sample_size``,
        ``p_any_patient_above_100``, and ``share_decisions_over_bound``: the share of the dose
        decisions (after the start dose) whose dose has a posterior probability of
        overdosing, ``P(MTD < dose)``, above the feasibility bound of that decision by more
        than :data:`BOUND_TOLERANCE` (the options, e.g. rounding to the nearest level, moved
        it there); ``share_recommended_over_limit``: the share of trials whose recommended
        dose has ``P(MTD < dose)`` above the hard overdose limit
        (:func:`~dosezoo.report.selections_over_overdose_limit`). Each with its Monte Carlo
        standard error (``*_se``): of a mean, SD / sqrt(trials); of a share of trials, the
        binomial sqrt(p (1 - p) / trials); of the share of decisions, a ratio of two sums
        over trials, whose decisions are not independent, the ratio estimator's (the
        linearised SE over trials).
    """

    def shares(values: np.ndarray) -> dict[str, float]:
        return {f"{level:g}": float(np.mean(values == level)) for level in O6BG_LEVELS}

    def binomial_se(share: float) -> float:
        return math.sqrt(share * (1 - share) / n_trials)

    n_trials = results.sizes["trial"]
    summary: dict[str, Any] = {
        "alpha": alpha,
        "n_trials": n_trials,
        "random_seed": random_seed,
    }
    for name in ("final_dose", "recommended"):
        summary[name] = shares(results[name].values)
        summary[f"{name}_se"] = {level: binomial_se(p) for level, p in summary[name].items()}
    sample_size = (~np.isnan(results["dose"].values)).sum(axis=1).astype(float)
    for name, values in (
        ("n_agt_below_5", results["n_agt_below_5"].values),
        ("n_above_100", results["n_above_100"].values),
        ("sample_size", sample_size),
    ):
        summary[f"mean_{name}"] = float(np.mean(values))
        summary[f"mean_{name}_se"] = float(np.std(values, ddof=1) / np.sqrt(n_trials))
    summary["p_any_patient_above_100"] = float(np.mean(results["n_above_100"].values > 0))
    summary["p_any_patient_above_100_se"] = binomial_se(summary["p_any_patient_above_100"])
    chosen = results["decision_kind"].values == "next"
    p_overdose = np.where(chosen, results["decision_p_overdose"].values, np.nan)
    bound = results["decision_alpha"].values
    rated = ~np.isnan(p_overdose)  # not the start dose
    over = rated & (np.where(rated, p_overdose, 0.0) > bound + BOUND_TOLERANCE)
    decisions, overs = rated.sum(axis=1).astype(float), over.sum(axis=1).astype(float)
    share = float(overs.sum() / decisions.sum())
    summary["share_decisions_over_bound"] = share
    summary["share_decisions_over_bound_se"] = float(
        np.std(overs - share * decisions, ddof=1) / math.sqrt(n_trials) / decisions.mean()
    )
    over_limit = selections_over_overdose_limit(results)
    if over_limit is None:
        raise ValueError(
            "o6bg_summary: the results record no P(overdose) of the recommendations (a design "
            "whose rule reports no probability of overdosing)"
        )
    summary["share_recommended_over_limit"] = float(np.mean(over_limit))
    summary["share_recommended_over_limit_se"] = binomial_se(
        summary["share_recommended_over_limit"]
    )
    return summary


def o6bg_replicates(
    alpha: float,
    n_trials: int,
    random_seed: int,
    n_jobs: int = 1,
    path: str | os.PathLike[str] | None = None,
) -> dict:
    """Distribution of the final and recommended doses over replicated re-designed trials.

    Lee's re-design (:func:`o6bg_design`); :func:`o6bg_summary` of :func:`o6bg_simulate`
    (with ``path``, its results are kept there, and a killed run resumes).
    """
    results = o6bg_simulate(
        o6bg_design(alpha), o6bg_scenario(), n_trials, random_seed, n_jobs, path=path
    )
    return o6bg_summary(results, alpha, random_seed)


# ----------------------------------------------------- Project Optimus: the whole trial

#: The doses of the Project Optimus scenarios (those of ``standard_efftox_scenarios``).
OPTIMUS_LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
#: Toxicity and response rates per dose of the three further shapes of the Optimus study.
_MORE_OPTIMUS_SHAPES = {
    "flat-efficacy": ((0.03, 0.08, 0.15, 0.25, 0.40), (0.30, 0.31, 0.32, 0.33, 0.34)),
    "all-toxic": ((0.45, 0.55, 0.65, 0.75, 0.85), (0.20, 0.30, 0.40, 0.50, 0.50)),
    "all-safe": ((0.01, 0.02, 0.03, 0.05, 0.08), (0.10, 0.20, 0.30, 0.40, 0.50)),
}


def optimus_scenarios(*, planned_sample_size: int = 36, rho: float = 0.3) -> dict:
    """Return the six efficacy-toxicity shapes of the Project Optimus study (doses 10-160).

    ``monotone``, ``plateau`` and ``bell`` of
    :func:`dosezoo.scenarios.standard_efftox_scenarios`, and ``flat-efficacy`` (response
    about 0.3 at every dose: the lowest dose is as good as any), ``all-toxic`` (every dose
    above the toxicity interval) and ``all-safe`` (toxicity below 0.1 everywhere, response
    rising to 0.5).

    Returns
    -------
    dict of str to EffToxScenario
    """
    scenarios = standard_efftox_scenarios(planned_sample_size=planned_sample_size, rho=rho)
    for name, (p_tox, p_response) in _MORE_OPTIMUS_SHAPES.items():
        scenarios[name] = EffToxScenario(
            OPTIMUS_LEVELS,
            p_tox,
            p_response,
            rho=rho,
            planned_sample_size=planned_sample_size,
            name=name,
        )
    return scenarios


def optimal_level(scenario: EffToxScenario, margin: float = 0.05) -> int:
    """Return the optimal dose level of a scenario: the lowest that is as good as the best.

    Among the doses with toxicity at most the top of the scenario's toxicity interval and a
    response rate at least its efficacy threshold, the lowest dose whose response rate is
    within ``margin`` of the best of them (a higher dose is not a better one unless it is more
    active: the Project Optimus definition); -1 when no dose qualifies.
    """
    p_tox, p_response = np.asarray(scenario.p_tox), np.asarray(scenario.p_response)
    ok = (p_tox <= scenario.tox_interval[1]) & (p_response >= scenario.efficacy_threshold)
    if not ok.any():
        return -1
    best = p_response[ok].max()
    return int(np.flatnonzero(ok & (p_response >= best - margin)).min())


def _level_counts(ds: xr.Dataset, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Patients, DLTs and responses per level of every simulated trial, (trials, K) each."""
    dose = ds["dose"].values
    given = ~np.isnan(dose)
    index = np.searchsorted(np.asarray(levels), np.where(given, dose, levels[0]))
    dlt = np.nan_to_num(ds["dlt"].values) > 0
    response = np.nan_to_num(ds["efficacy"].values) >= 1
    counts = {name: np.zeros((dose.shape[0], len(levels)), dtype=np.int64) for name in "nye"}
    for k in range(len(levels)):
        at = given & (index == k)
        counts["n"][:, k] = at.sum(axis=1)
        counts["y"][:, k] = (at & dlt).sum(axis=1)
        counts["e"][:, k] = (at & response).sum(axis=1)
    return counts


def _range_summaries(
    ds: xr.Dataset, counts: dict[str, np.ndarray], efficacy_threshold: float, overdose_limit: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Per trial and level, P(efficacious), P(overdose) and exclusion for the dose range.

    The design's own posterior summaries at its final recommendation when it recorded them
    (the joint probit design: ``p_efficacious_<k>``, ``p_overdose_<k>``, and ``excluded_<k>``,
    its overdose control's verdict with the Monte Carlo error); otherwise those of
    independent Beta(1, 1) posteriors of the counts, exact, with no exclusion of their own.
    """
    levels = counts["n"].shape[1]
    names = [f"decision_p_efficacious_{k}" for k in range(levels)]
    if all(name in ds for name in names):
        last = ds["decision_kind"].values == "recommend"

        def final(name: str) -> np.ndarray:
            return np.nan_to_num(np.where(last, ds[name].values, 0.0).sum(axis=1))

        p_eff = np.stack([final(name) for name in names], axis=1)
        p_od = np.stack([final(f"decision_p_overdose_{k}") for k in range(levels)], axis=1)
        excluded = np.stack([final(f"decision_excluded_{k}") for k in range(levels)], axis=1)
        return p_eff, p_od, excluded > 0
    n, y, e = counts["n"], counts["y"], counts["e"]
    from scipy.stats import beta  # loaded on use: scipy.stats slows start-up

    p_eff = beta.sf(efficacy_threshold, 1 + e, 1 + n - e)
    return p_eff, beta.sf(overdose_limit, 1 + y, 1 + n - y), None


def optimus_path(
    ds: xr.Dataset,
    scenario: EffToxScenario,
    stage: PickTheWinnerStage,
    *,
    random_seed: int,
    active_probability: float = 0.5,
    overdose_cutoff: float = 0.25,
    overdose_limit: float = 0.4,
) -> dict[str, np.ndarray]:
    """Continue simulated escalations by the dose range and the randomised pick-the-winner.

    The range reads the design's own posterior summaries at its recommendation where it
    recorded them (the joint probit design), and a dose its overdose control excluded (on the
    cautious side of the Monte Carlo error) stays out of the range: an escalation it stopped
    for safety ends with no dose. Otherwise it reads Beta(1, 1) summaries of the counts. A
    range of one dose is one arm, with the stage's interim look; it goes on unless No-Go.

    Parameters
    ----------
    ds : xarray.Dataset
        The escalation trials (:func:`dosezoo.simulate.simulate` of ``scenario``).
    scenario : EffToxScenario
        The truth; the randomised stage's patients respond with the scenario's response rate
        of their dose.
    stage : PickTheWinnerStage
        The randomised stage.
    random_seed : int
        Seed of the stage: trial ``i`` draws its stage patients from child ``i`` of
        ``SeedSequence([random_seed, 1])``, the same for every escalation design (common
        random numbers).
    active_probability, overdose_cutoff, overdose_limit : float
        The dose range's thresholds (:func:`~dosezoo.designs.therapeutic_dose_range`) and the
        over-toxic level of the Beta summaries.

    Returns
    -------
    dict of str to numpy.ndarray
        Per trial: ``final_level`` (-1: none), ``ends_optimal``, ``no_dose``,
        ``patients_above_mtd`` (patients at doses above the toxicity interval, escalation and
        stage), ``sample_size``, ``range_size``, ``range_has_optimal``, ``stage_n``.
    """
    levels = tuple(scenario.dose_levels)
    counts = _level_counts(ds, levels)
    p_eff, p_od, excluded = _range_summaries(
        ds, counts, scenario.efficacy_threshold, overdose_limit
    )
    n_trials = counts["n"].shape[0]
    ranges = [
        therapeutic_dose_range(
            p_eff[i],
            p_od[i],
            counts["n"][i],
            active_probability=active_probability,
            overdose_cutoff=overdose_cutoff,
            excluded=None if excluded is None else excluded[i],
        )
        for i in range(n_trials)
    ]
    uniforms = stage_uniforms(
        np.random.SeedSequence([random_seed, 1]).spawn(n_trials), stage.n_per_arm
    )
    p_response = np.asarray(scenario.p_response)
    final = np.full(n_trials, -1)
    stage_n = np.zeros(n_trials, dtype=np.int64)
    stage_overtoxic = np.zeros(n_trials, dtype=np.int64)
    overtoxic = np.asarray(scenario.p_tox) > scenario.tox_interval[1]
    two = np.array([len(r.rp2s) == 2 for r in ranges])
    if two.any():
        a = np.array([r.rp2s[0] for r, t in zip(ranges, two, strict=True) if t])
        b = np.array([r.rp2s[1] for r, t in zip(ranges, two, strict=True) if t])
        result = stage.run(p_response[a], p_response[b], uniforms[two])
        choice = result["choice"]
        final[two] = np.where(choice == "A", a, np.where(choice == "B", b, -1))
        stage_n[two] = result["n_a"] + result["n_b"]
        stage_overtoxic[two] = result["n_a"] * overtoxic[a] + result["n_b"] * overtoxic[b]
    one = np.array([len(r.rp2s) == 1 for r in ranges])
    if one.any():
        only = np.array([r.rp2s[0] for r, o in zip(ranges, one, strict=True) if o])
        arm = stage.run_one_arm(p_response[only], uniforms[one, 0])
        final[one] = np.where(arm["status"] == "no-go", -1, only)
        stage_n[one] = arm["n"]
        stage_overtoxic[one] = arm["n"] * overtoxic[only]
    optimal = optimal_level(scenario)
    escalation_overtoxic = counts["n"][:, overtoxic].sum(axis=1)
    return {
        "final_level": final,
        "ends_optimal": (final == optimal).astype(float),
        "no_dose": (final < 0).astype(float),
        "patients_above_mtd": (escalation_overtoxic + stage_overtoxic).astype(float),
        "sample_size": (counts["n"].sum(axis=1) + stage_n).astype(float),
        "range_size": np.array([len(r.levels) for r in ranges], dtype=float),
        "range_has_optimal": np.array([optimal in r.levels for r in ranges], dtype=float),
        "stage_n": stage_n.astype(float),
    }


def mtd_only_path(ds: xr.Dataset, scenario: EffToxScenario) -> dict[str, np.ndarray]:
    """End each escalation on its recommended dose, with no further stage (the MTD-only path).

    Returns the per-trial metrics of :func:`optimus_path` (no range, no stage).
    """
    levels = np.asarray(scenario.dose_levels)
    recommended = ds["recommended_dose"].values
    final = np.where(np.isnan(recommended), -1, np.searchsorted(levels, np.nan_to_num(recommended)))
    counts = _level_counts(ds, tuple(scenario.dose_levels))
    overtoxic = np.asarray(scenario.p_tox) > scenario.tox_interval[1]
    optimal = optimal_level(scenario)
    n_trials = final.size
    return {
        "final_level": final,
        "ends_optimal": (final == optimal).astype(float),
        "no_dose": (final < 0).astype(float),
        "patients_above_mtd": counts["n"][:, overtoxic].sum(axis=1).astype(float),
        "sample_size": counts["n"].sum(axis=1).astype(float),
        "range_size": np.full(n_trials, np.nan),
        "range_has_optimal": np.full(n_trials, np.nan),
        "stage_n": np.zeros(n_trials),
    }


def compare_optimus_paths(
    optimus: Design,
    mtd_only: Design,
    scenario: EffToxScenario,
    *,
    n_trials: int,
    random_seed: int,
    stage: PickTheWinnerStage | None = None,
    n_jobs: int = 1,
    paths: Mapping[str, str | os.PathLike[str]] | None = None,
    **range_options: float,
) -> dict[str, dict[str, float]]:
    """Simulate the whole Optimus trial against the MTD-only path on the same patients.

    Escalation by ``optimus`` then the dose range and the randomised pick-the-winner
    (:func:`optimus_path`), against escalation by ``mtd_only`` ending on its recommended dose
    (:func:`mtd_only_path`). Both escalations use ``random_seed`` (common random numbers: the
    ``i``-th patients of trial ``t`` carry the same latent pair). With ``paths``
    (``{"optimus": file, "mtd_only": file}``), the escalations' results are kept in those
    netCDF files (:func:`~dosezoo.simulate.simulate_designs`): a killed run resumes.

    Returns
    -------
    dict
        ``{"optimus": summary, "mtd_only": summary}``, each metric's mean and ``*_se``.
    """
    stage = stage or PickTheWinnerStage()
    escalations = simulate_designs(
        {"optimus": optimus, "mtd_only": mtd_only},
        scenario,
        n_trials,
        random_seed=random_seed,
        n_jobs=n_jobs,
        paths=paths,
        progress=False,
    )
    return {
        "optimus": mean_and_se(
            optimus_path(
                escalations["optimus"], scenario, stage, random_seed=random_seed, **range_options
            )
        ),
        "mtd_only": mean_and_se(mtd_only_path(escalations["mtd_only"], scenario)),
    }
