"""The O6-BG re-design of Lee (2023) (Application): 3PND, its variants and EWOC on the same patients.

Run ``make redesign`` (or ``python benchmarks/o6bg_redesign.py``). For the accelerated
(alpha = 0.1) and standard (alpha = 0.05) strategies, four designs (``dosezoo.studies.o6bg_arms``):

- ``3PND``: Lee's re-design (CSAD, C = 3, N = 30, x_1 = 40, levels 40-120, nearest level,
  monotone);
- ``3PND level-aware``: the same, escalating by levels as EWOC does (the highest level with
  P(MTD < level) <= alpha, at most one level above the highest given: ``rounding = "down"``,
  ``no_skipping = true``);
- ``3PND increasing alpha``: the same, the feasibility bound growing by 0.015 per patient up to
  0.5 (Lee 2023, Discussion: a variable feasibility bound);
- ``EWOC``: the paper's EWOC re-design (Table 3: theta = 0.4, dose range 20-140, first dose 40,
  uniform priors) on the dichotomised responses, DLT = 1(AGT < 5 fmol/mg).

Every design runs on the same simulated patients (common random numbers: trial ``i`` of every
design draws from child ``i`` of ``SeedSequence(2023)``; the ``j``-th patient of a trial draws
the same uniforms whatever the design). Writes ``docs/results/o6bg_redesign.json``: per design
the dose path, final dose, recommendation and number of patients with AGT < 5 fmol/mg of
trial 0 (the seeded trial ``dosezoo demo`` prints), and over the replicates the shares of the
final and recommended doses, the mean numbers of patients with undetectable AGT and at
120 mg/m^2 and the sample size (with Monte Carlo standard errors), and the paired differences
against Lee's re-design; and the page ``docs/results/o6bg_redesign.md`` (``--report-only``
rewrites it from the JSON). Deterministic: the same command gives the same numbers.
"""

import argparse
import json
import os
import time

import numpy as np
import xarray as xr
from report import RESULTS, write_page

from dosezoo.designs.registry import design_config
from dosezoo.studies import (
    BOUND_TOLERANCE,
    O6BG_ALPHA_STEP,
    O6BG_LEVELS,
    o6bg_arms,
    o6bg_scenario,
    o6bg_simulate,
    o6bg_summary,
    o6bg_trial,
)

SEED = 2023
#: What Lee (2023) reports for its one trial per design (Application, Tables 2 and 3):
#: the final dose and the patients (of 30) with AGT < 5 fmol/mg.
LEE2023_REPORTED = {
    "3PND, accelerated": (100, 3),
    "3PND, standard": (80, 0),
    "EWOC, accelerated": (100, 4),
    "EWOC, standard": (80, 3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="replicated trials per design")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the page from the saved JSON"
    )
    args = parser.parse_args()
    if args.report_only:
        write_report()
        return
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    record: dict = {
        "command": f"python benchmarks/o6bg_redesign.py --trials {args.trials} --jobs {args.jobs}",
        "scenario": o6bg_scenario().describe(),
        "random_seed": SEED,
        "alpha_step": O6BG_ALPHA_STEP,
        "designs": {},
    }
    results: dict[str, xr.Dataset] = {}
    for name, (design, scenario) in o6bg_arms().items():
        alpha = design.rule.alpha
        results[name] = o6bg_simulate(design, scenario, args.trials, SEED, n_jobs=args.jobs)
        record["designs"][name] = {
            "design": design_config(design),
            "seeded_trial": o6bg_trial(alpha, SEED, design=design, scenario=scenario),
            "replicates": o6bg_summary(results[name], alpha, SEED),
        }
    for name, entry in record["designs"].items():
        base = f"3PND, {name.rsplit(', ', 1)[1]}"
        if name != base:
            entry["paired"] = paired(results[name], results[base], base)
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    record["load_average"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    (RESULTS / "o6bg_redesign.json").write_text(json.dumps(record, indent=2) + "\n")
    write_report()


def paired(results: xr.Dataset, base: xr.Dataset, base_name: str) -> dict:
    """Paired differences of a design against ``base`` on the same simulated patients."""
    n = results.sizes["trial"]
    out: dict = {"against": base_name}
    for name in ("n_agt_below_5", "n_above_100"):
        diff = results[name].values - base[name].values
        out[f"{name}_diff"] = float(diff.mean())
        out[f"{name}_diff_se"] = float(diff.std(ddof=1) / np.sqrt(n))
    out["same_final_dose"] = float(
        np.mean(results["final_dose"].values == base["final_dose"].values)
    )
    out["higher_final_dose"] = float(
        np.mean(results["final_dose"].values > base["final_dose"].values)
    )
    return out


def write_report() -> None:
    """Write the page o6bg_redesign.md from the saved JSON."""
    record = json.loads((RESULTS / "o6bg_redesign.json").read_text())
    write_page(
        "o6bg_redesign",
        "Lee (2023): the O6-BG re-design, 3PND against EWOC",
        summary(record),
        make="redesign",
        runs=["o6bg_redesign.py"],
        rebuild="o6bg_redesign.py --report-only",
        data=["o6bg_redesign.json"],
    )
    print(summary(record))


def _share(value: float, n: int) -> str:
    """Return a share with its Monte Carlo standard error."""
    return f"{value:.1%} ± {np.sqrt(value * (1 - value) / n):.1%}"


def summary(record: dict) -> str:
    """Return the page's body: seeded trials, replicates, paired differences and the notes."""
    designs = record["designs"]
    n = next(iter(designs.values()))["replicates"]["n_trials"]
    levels = [f"{level:g}" for level in O6BG_LEVELS]
    load = record["load_average"]
    lines = [
        f"Made by `{record['command']}` in {record['wall_seconds']:.0f} s (load average "
        f"{load[0]:g} at the start, {load[1]:g} at the end, on 2 cores); all numbers, and the "
        "scenario (the real trial's AGT values, resampled with a perturbation), in "
        "[`o6bg_redesign.json`](o6bg_redesign.json). Every design treats the same simulated "
        f"patients: trial i of each draws from child i of `SeedSequence({record['random_seed']})` "
        "(common random numbers).",
        "",
        "## Patients with undetectable AGT, patients at 120 mg/m^2, sample size",
        "",
        f"Means and shares over {n} replicated trials per design ± Monte Carlo standard error "
        "(the shares of recommended doses, not to crowd the table, without theirs: the binomial "
        "sqrt(p (1 - p) / trials), in the JSON). "
        "Undetectable AGT (< 5 fmol/mg) is the paper's headline count; it is also EWOC's "
        "DLT. The scenario has no true MTD: as the paper, a patient at 120 mg/m^2 (above "
        "every dose the real trial gave) counts as overdosed. *Decisions over the bound*: the "
        "share of dose decisions (after the start dose) whose dose has a posterior probability "
        f"of overdosing, P(MTD < dose), above that decision's alpha by more than {BOUND_TOLERANCE:g}, "
        "the accuracy of the exact posteriors (rounding to the nearest level, or monotone, put "
        "it there). *Recommended over the limit*: the share of trials whose recommended dose "
        "has P(MTD < dose) above the hard overdose limit, 0.5 (the rules select as the paper "
        "does; the conduct option `select_within_overdose_limit = true` holds the "
        "recommendation to the limit as it holds every next dose).",
        "",
        "| design | patients with AGT < 5 | patients at 120 | P(any patient at 120) "
        "| sample size | decisions over the bound | recommended over the limit | "
        + " | ".join(f"recommended {level}" for level in levels)
        + " |",
        "|---|---|---|---|---|---|---|" + "---|" * len(levels),
    ]
    for name, entry in designs.items():
        r = entry["replicates"]
        lines.append(
            f"| {name} (alpha = {r['alpha']}) "
            f"| {r['mean_n_agt_below_5']:.2f} ± {r['mean_n_agt_below_5_se']:.2f} "
            f"| {r['mean_n_above_100']:.2f} ± {r['mean_n_above_100_se']:.2f} "
            f"| {r['p_any_patient_above_100']:.1%} ± {r['p_any_patient_above_100_se']:.1%} "
            f"| {r['mean_sample_size']:.1f} ± {r['mean_sample_size_se']:.1f} "
            f"| {r['share_decisions_over_bound']:.1%} ± {r['share_decisions_over_bound_se']:.1%} "
            f"| {r['share_recommended_over_limit']:.1%} "
            f"± {r['share_recommended_over_limit_se']:.1%} | "
            + " | ".join(f"{r['recommended'][level]:.1%}" for level in levels)
            + " |"
        )
    lines += [
        "",
        "## How typical the seeded trial is",
        "",
        f"Trial 0 of seed {record['random_seed']} of each design (the path `dosezoo demo` "
        "prints for Lee's re-design), and the shares of the final dose (the last cohort's) "
        f"over the {n} replicates, of which it is one (± Monte Carlo standard error of the "
        "share of its final dose).",
        "",
        "| design | seeded trial: cohort doses | final | recommended | AGT < 5 | "
        + " | ".join(f"final {level}" for level in levels)
        + " | replicates ending where it ends |",
        "|---|---|---|---|---|" + "---|" * len(levels) + "---|",
    ]
    for name, entry in designs.items():
        trial, r = entry["seeded_trial"], entry["replicates"]
        final = f"{trial['final_dose']:g}"
        lines.append(
            f"| {name} | {' -> '.join(f'{d:g}' for d in trial['cohort_doses'])} "
            f"| {final} | {trial['recommended']:g} | {trial['n_agt_below_5']} | "
            + " | ".join(f"{r['final_dose'][level]:.1%}" for level in levels)
            + f" | {_share(r['final_dose'][final], n)} |"
        )
    lines += [
        "",
        "## Paired differences against Lee's re-design (same patients)",
        "",
        "Per trial, the design's count minus that of `3PND` with the same alpha on the same "
        "simulated patients; mean ± its standard error over the trials (a paired comparison: "
        "the common random numbers remove most of the trial-to-trial noise).",
        "",
        "| design | against | extra patients with AGT < 5 | extra patients at 120 "
        "| same final dose | higher final dose |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in designs.items():
        if "paired" not in entry:
            continue
        p = entry["paired"]
        lines.append(
            f"| {name} | {p['against']} "
            f"| {p['n_agt_below_5_diff']:+.2f} ± {p['n_agt_below_5_diff_se']:.2f} "
            f"| {p['n_above_100_diff']:+.2f} ± {p['n_above_100_diff_se']:.2f} "
            f"| {p['same_final_dose']:.1%} | {p['higher_final_dose']:.1%} |"
        )
    reported = "; ".join(
        f"{name}: final dose {dose}, {count} of 30 with AGT < 5"
        for name, (dose, count) in LEE2023_REPORTED.items()
    )
    lines += [
        "",
        "## What was chosen where the paper is silent",
        "",
        "- **Dichotomisation.** The paper's EWOC outcome is 1 \"when tumor AGT activity is less "
        'than 5 fmol/mg, and 0 otherwise" (threshold 55 on y = 60 - AGT): here DLT = '
        "1(AGT < 5) = 1(y > 55), so AGT = 5 exactly is no DLT (the 3PND's own DLT, y >= eta, "
        "would count it; the perturbation is continuous, so no simulated patient is at 5). "
        "The patients are the same as the 3PND's: the scenario gives each patient y and its "
        "dichotomisation from the same draws (`O6BGResampling(dichotomise=True)`).",
        "- **EWOC doses.** The paper ran `ewoc_d1classical` (R package ewoc) with theta = 0.4, "
        "min_dose = 20, max_dose = 140, first_dose = 40 and uniform priors, but does not give "
        "its `type`, `dose_set`, `rounding` or `no_skip_dose`. The patients are resampled at "
        "the trial's levels, so the doses must be levels: 40-120, rounded down (the "
        'package\'s `rounding = "down"`, one of the two it requires for discrete doses: the '
        "highest level with P(MTD < level) <= alpha), with no skipping (the package's default "
        "`no_skip_dose = TRUE` counts one level from the current dose, this design from the "
        "highest dose given; they differ only after a de-escalation). The MTD's prior is uniform on the continuous range 20-140 and that of the "
        "DLT rate at 20 mg/m^2 uniform on (0, theta): `EWOC(theta=0.4, x_min=20, x_max=140)` "
        "with its default Beta(1, 1) priors, which the existing EWOC model already offers. "
        "No monotone option (the paper's EWOC has none); cohorts of 3, 30 patients.",
        f"- **Increasing alpha.** alpha_n = min(0.5, alpha + {record['alpha_step']:g} n) after "
        "n patients (`MTDQuantileRule(alpha_step=..., alpha_max=0.5)`): the paper says only "
        '"starting with some small value of alpha, and as the trial progresses, alpha '
        'increases in small increments" (after Tighiouart and Rogatko 2010); this step takes '
        "0.1 to 0.5 by the last decision (27 patients).",
        '- **Level-aware escalation.** `MTDQuantileRule(rounding="down", no_skipping=True)`: '
        "the next dose is the highest level whose posterior probability of overdosing is at "
        "most alpha, at most one level above the highest level given (the ewoc package: above "
        "the current dose). Lee's nearest rounding may move up to a level whose probability of "
        "overdosing exceeds alpha; this variant never does (unless monotone keeps the last "
        "dose).",
        "",
        f"The paper reports one trial per design: {reported}. Its headline claim, that EWOC "
        "needs more patients with undetectable AGT than 3PND, is the first table's first "
        "column (and the paired differences).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
