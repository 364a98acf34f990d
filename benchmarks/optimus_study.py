"""The Project Optimus study: joint-probit design vs BOIN12 vs CRM vs BOIN, and the whole trial.

Every design escalates on the six efficacy-toxicity scenarios of
:func:`dosezoo.studies.optimus_scenarios` (monotone, plateau, bell, flat-efficacy, all-toxic,
all-safe) with common random numbers (the same seed: the ``i``-th patients of trial ``t`` carry
the same latent pair in every design). Per cell (scenario, design, backfill) the CSV has the
escalation's operating characteristics (Lin 2023's target-dose selection, selection of the
optimal dose, allocation, toxicity) and those of the whole Optimus trial built on that
escalation (dose range -> randomised pick-the-winner, :func:`dosezoo.studies.optimus_path`),
each with its Monte Carlo SE (``*_se``). The MTD-only path of a design is its own
recommendation (``selected_optimal``, ``n_treated``).

Sensitivity: the joint-probit design's overdose cut-off (0.20, 0.25, 0.30, 0.35; each a new
escalation, the four simulated together by :func:`dosezoo.simulate.simulate_designs`: they
share one model, so a count state two of them reach in a trial is sampled once, and each
result is the one its own ``simulate`` gives), and the range thresholds, recomputed from the
saved escalations: the dose range's minimum-active-dose threshold (0.3, 0.5, 0.7) for every
design, and the joint-probit rule's ``range_probability`` (0.2, 0.3, 0.4) for its
recommendation.

``--backfill`` runs every escalation with the backfill conduct
(``Conduct(backfill=Backfill(1.0, 4.0))``: one patient a week on average, a 4-week DLT
window). ``--probit-draws`` sets the joint-probit design's MCMC draws per chain (its cost
dominates the study).

Run: ``make optimus-study`` or ``.venv/bin/python benchmarks/optimus_study.py [--trials N]
[--jobs J] [--backfill] [--probit-trials N] [--probit-draws D] [--no-sensitivity]
[--tag T] [--report-only]``. Outputs ``docs/results/optimus_study<T>.{csv,json,md}``. Each
escalation's results are kept in ``benchmarks/runs/optimus/`` (not committed): an interrupted
run resumes from them, and its wall time is then not the whole study's (the record names the
cells it resumed).
"""

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
from report import RESULTS, RUNS, md_table, write_page

from dosezoo.designs import (
    Backfill,
    Design,
    PickTheWinnerStage,
    boin12_design,
    boin_design,
    crm_design,
    optimus_design,
)
from dosezoo.designs.pick_the_winner_stage import mean_and_se
from dosezoo.diagnostics import ConvergenceCriteria
from dosezoo.models.crm import CRM, crm_skeleton
from dosezoo.models.joint_probit import JointProbit
from dosezoo.simulate import simulate_designs
from dosezoo.studies import OPTIMUS_LEVELS, optimal_level, optimus_path, optimus_scenarios

#: The runs of ``make optimus-study``: the study, then the designs with the backfill conduct.
MAKE_RUNS = (
    "optimus_study.py --trials 2000 --jobs 2",
    "optimus_study.py --trials 2000 --jobs 2 --backfill --no-sensitivity --tag _backfill",
)
SEED = 2026
#: Each escalation's netCDF results (``simulate_designs``'s ``paths``).
CELL_RUNS = RUNS / "optimus"
SAMPLE_SIZE = 36
#: Claims name every design within this many standard errors of the best one's value.
TIE_SES = 2.0
#: The backfill conduct's time: one patient a week on average, a 4-week DLT window.
ARRIVALS_PER_WEEK, DLT_WINDOW_WEEKS = 1.0, 4.0
DESIGNS = ("joint-probit", "boin12", "crm", "boin")
OVERDOSE_CUTOFFS = (0.20, 0.25, 0.30, 0.35)
ACTIVE_PROBABILITIES = (0.3, 0.5, 0.7)
RANGE_PROBABILITIES = (0.2, 0.3, 0.4)
ESCALATION_METRICS = (
    "correct_selection",
    "no_selection",
    "n_at_target_fraction",
    "n_overtoxic_fraction",
    "n_treated",
    "dlt_rate",
    "response_rate",
)


#: The joint-probit design's sampling in the studies: the ``imh`` engine, 2 chains of 700 draws
#: after 50 (a chain starts at a proposal draw, near the posterior already); a fit is judged on
#: the rates the rule reads and redone with 2 then 4 times the draws before it is refused.
PROBIT_CONDUCT = {
    "convergence": ConvergenceCriteria(max_rhat=1.02, min_ess_bulk=200, min_ess_tail=100),
    "draws": 700,
    "tune": 50,
    "chains": 2,
    "refits": 2,
    "refit_factor": 2,
    "random_seed": 1,
}


def build_designs(
    name: str, cutoffs: tuple[float, ...] = (0.25,), *, probit_draws: int = 700
) -> dict[float, Design]:
    """Return the study's design ``name`` (36 patients in cohorts of 3) by overdose cut-off.

    The joint-probit design's variants share one model, hence its posteriors of a count
    state when they are simulated together; the other designs have no cut-off (0.25 only).
    """
    if name == "joint-probit":
        model = JointProbit(OPTIMUS_LEVELS)
        return {
            cutoff: optimus_design(
                model,
                overdose_cutoff=cutoff,
                sample_size=SAMPLE_SIZE,
                on_refusal="stop",
                **(PROBIT_CONDUCT | {"draws": probit_draws}),
            )
            for cutoff in cutoffs
        }
    if name == "boin12":
        # BOIN12 with the Lin (2023) criterion's limits: toxicity 0.33, efficacy 0.2.
        return {
            0.25: boin12_design(0.33, OPTIMUS_LEVELS, efficacy_limit=0.2, sample_size=SAMPLE_SIZE)
        }
    if name == "crm":
        model = CRM(
            crm_skeleton(0.25, 0.05, 3, len(OPTIMUS_LEVELS)),
            target=0.25,
            dose_levels=OPTIMUS_LEVELS,
        )
        return {0.25: crm_design(model, sample_size=SAMPLE_SIZE)}
    if name == "boin":
        return {0.25: boin_design(0.25, OPTIMUS_LEVELS, sample_size=SAMPLE_SIZE)}
    raise ValueError(f"unknown design {name!r}; one of {DESIGNS}")


def with_backfill(design: Design) -> Design:
    """Return the design with the backfill conduct of the study (arrivals and DLT window)."""
    backfill = Backfill(arrival_rate=ARRIVALS_PER_WEEK, dlt_window=DLT_WINDOW_WEEKS)
    return Design(design.model, design.rule, replace(design.conduct, backfill=backfill))


def cell_metrics(ds, scenario, stage: PickTheWinnerStage, **range_options: float) -> dict:
    """Escalation and whole-trial metrics of one simulated cell (mean and ``*_se`` each)."""
    per_trial = {name: ds[name].values for name in ESCALATION_METRICS}
    levels = np.asarray(scenario.dose_levels)
    recommended = ds["recommended_dose"].values
    chosen = np.where(
        np.isnan(recommended), -1, np.searchsorted(levels, np.nan_to_num(recommended))
    )
    per_trial["selected_optimal"] = (chosen == optimal_level(scenario)).astype(float)
    if "duration" in ds:  # with the backfill conduct's time (arrivals and DLT windows)
        per_trial["duration"] = ds["duration"].values
    path = optimus_path(ds, scenario, stage, random_seed=SEED, **range_options)
    for name in ("ends_optimal", "no_dose", "patients_above_mtd", "sample_size", "range_size"):
        per_trial[f"trial_{name}"] = path[name]
    return mean_and_se(per_trial)


def range_probability_selection(
    ds, scenario, range_probability: float, overdose_cutoff: float = 0.25
) -> dict:
    """Recompute the joint-probit recommendation with another ``range_probability``.

    The rule recommends the dose maximising P(target) among the given, non-excluded doses if
    that probability is at least ``range_probability``; the recommendation records P(target)
    and the exclusion of every level, so the selection follows from the saved decisions.
    """
    last = ds["decision_kind"].values == "recommend"
    levels = len(scenario.dose_levels)

    def final(name: str) -> np.ndarray:
        return np.where(last, ds[f"decision_{name}"].values, 0.0).sum(axis=1)

    p_target = np.stack([final(f"p_target_{k}") for k in range(levels)], axis=1)
    p_overdose = np.stack([final(f"p_overdose_{k}") for k in range(levels)], axis=1)
    n_at = np.stack([ds[f"n_at_{k}"].values for k in range(levels)], axis=1)
    candidates = (n_at > 0) & ~(p_overdose > overdose_cutoff) & ~np.isnan(p_target)
    in_range = candidates & (p_target >= range_probability)
    score = np.where(in_range, p_target, -np.inf)
    chosen = np.where(in_range.any(axis=1), np.argmax(score, axis=1), -1)
    target = list(scenario.target_levels)
    correct = np.isin(chosen, target) if target else chosen < 0
    return mean_and_se(
        {
            "correct_selection": correct.astype(float),
            "selected_optimal": (chosen == optimal_level(scenario)).astype(float),
            "range_size": in_range.sum(axis=1).astype(float),
        }
    )


def run(args: argparse.Namespace) -> dict:
    """Simulate every cell; return the JSON record (rows, sensitivity, timing)."""
    scenarios = optimus_scenarios(planned_sample_size=SAMPLE_SIZE)
    stage = PickTheWinnerStage()
    rows, sensitivity, seconds, resumed = [], [], {}, []
    load_start = os.getloadavg()
    started = time.perf_counter()
    for scenario_name, scenario in scenarios.items():
        for design_name in args.designs:
            cutoffs = (
                OVERDOSE_CUTOFFS if args.sensitivity and design_name == "joint-probit" else (0.25,)
            )
            designs = build_designs(design_name, cutoffs, probit_draws=args.probit_draws)
            if args.backfill:
                designs = {cutoff: with_backfill(design) for cutoff, design in designs.items()}
            n_trials = args.probit_trials if design_name == "joint-probit" else args.trials
            backfill = "_backfill" if args.backfill else ""
            paths = {
                f"{cutoff:g}": CELL_RUNS / f"{scenario_name}_{design_name}{backfill}_c{cutoff:g}"
                f"_n{n_trials}_d{args.probit_draws}.nc"
                for cutoff in designs
            }
            if any(
                path.exists() or path.with_name(f"{path.name}.parts").exists()
                for path in paths.values()
            ):
                resumed.append(f"{scenario_name}/{design_name}")
            clock = time.perf_counter()
            # The cut-off variants on the same trials, together: they share the posteriors of
            # the count states they reach alike (each result is its own simulate's).
            results = simulate_designs(
                {f"{cutoff:g}": design for cutoff, design in designs.items()},
                scenario,
                n_trials,
                random_seed=SEED,
                n_jobs=args.jobs,
                paths=paths,
                progress=False,
            )
            seconds[f"{scenario_name}/{design_name}"] = time.perf_counter() - clock
            ds = results["0.25"]
            base = {
                "scenario": scenario_name,
                "design": design_name,
                "backfill": bool(args.backfill),
                "n_trials": n_trials,
            }
            rows.append(base | cell_metrics(ds, scenario, stage))
            if not args.sensitivity:
                continue
            for active in ACTIVE_PROBABILITIES:
                metrics = cell_metrics(ds, scenario, stage, active_probability=active)
                sensitivity.append(
                    base | {"parameter": "active_probability", "value": active} | metrics
                )
            if design_name != "joint-probit":
                continue
            for probability in RANGE_PROBABILITIES:
                metrics = range_probability_selection(ds, scenario, probability)
                sensitivity.append(
                    base | {"parameter": "range_probability", "value": probability} | metrics
                )
            for cutoff in OVERDOSE_CUTOFFS:
                metrics = cell_metrics(
                    results[f"{cutoff:g}"], scenario, stage, overdose_cutoff=cutoff
                )
                sensitivity.append(
                    base | {"parameter": "overdose_cutoff", "value": cutoff} | metrics
                )
    wall = time.perf_counter() - started
    return {
        "command": " ".join(["benchmarks/optimus_study.py", *sys.argv[1:]]),
        "n_trials": args.trials,
        "probit_trials": args.probit_trials,
        "probit_draws": args.probit_draws,
        "n_jobs": args.jobs,
        "backfill": bool(args.backfill),
        "designs": list(args.designs),
        "pick_the_winner": {
            "n_per_arm": stage.n_per_arm,
            "delta": stage.delta,
            "lrv": stage.criteria.lrv,
            "tv": stage.criteria.tv,
        },
        "scenarios": {name: s.describe() for name, s in scenarios.items()},
        "optimal_levels": {name: optimal_level(s) for name, s in scenarios.items()},
        "wall_seconds": wall,
        "seconds": seconds,
        "resumed_cells": resumed,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "rows": rows,
        "sensitivity": sensitivity,
    }


def projection(record: dict, trials: int = 2000, jobs: int = 2) -> float:
    """Minutes the study would take at ``trials`` per cell on ``jobs`` workers, from this run."""
    total = 0.0
    for key, value in record["seconds"].items():
        design = key.split("/")[1]
        measured = record["probit_trials"] if design == "joint-probit" else record["n_trials"]
        total += value * record["n_jobs"] * trials / measured / jobs
    return total / 60


def with_se(frame: pd.DataFrame, columns: list[str], labels: int) -> pd.DataFrame:
    """Return the ``columns`` of ``frame``, each after the first ``labels`` as ``mean (SE)``."""
    table = frame[columns].copy()
    for column in columns[labels:]:
        table[column] = [
            f"{m:.3f} ({s:.3f})" for m, s in zip(frame[column], frame[column + "_se"], strict=True)
        ]
    return table


def join(items: list[str]) -> str:
    """Join names as ``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def leaders(cells: pd.DataFrame, metric: str) -> list[str]:
    """Return the design with the highest ``metric`` and those Monte Carlo cannot tell from it."""
    ranked = cells.sort_values(metric, ascending=False)
    top = ranked.iloc[0]
    gap = top[metric] - ranked[metric]
    within = gap <= TIE_SES * np.sqrt(top[metric + "_se"] ** 2 + ranked[metric + "_se"] ** 2)
    return [
        f"{row['design']} ({row[metric]:.3f} +/- {row[metric + '_se']:.3f})"
        for _, row in ranked[within].iterrows()
    ]


def page(record: dict, tag: str) -> str:
    """Return the Markdown body: the command, the claims (from the data), the tables."""
    frame = pd.DataFrame(record["rows"])
    lines = [
        f"Command: `{record['command']}` ({record['n_trials']} trials per cell, "
        f"{record['probit_trials']} for the joint-probit design with {record['probit_draws']} "
        f"draws per chain; backfill: {record['backfill']}; {record['n_jobs']} worker(s)). "
        f"Wall time {record['wall_seconds']:.0f} s; load averages "
        f"{', '.join(f'{v:.2f}' for v in record['load_average_start'])} at the start and "
        f"{', '.join(f'{v:.2f}' for v in record['load_average_end'])} at the end on "
        f"{record['cpu_count']} CPUs. Projected time of 2000 trials per cell on 2 workers "
        f"from this run's per-cell times: {projection(record):.0f} min"
        + (
            f" (resumed cells, whose times are not a whole run's: "
            f"{', '.join(record['resumed_cells'])})."
            if record.get("resumed_cells")
            else "."
        ),
        "",
        "Optimal dose of each scenario (the lowest dose as active as the best acceptable one, "
        "within 0.05): "
        + ", ".join(f"{name} {level}" for name, level in record["optimal_levels"].items())
        + " (-1: none).",
        "",
        "## Claims (computed from the CSV)",
        "",
    ]
    for metric, verb, label in (
        ("selected_optimal", "select", "the optimal dose at the end of escalation"),
        ("trial_ends_optimal", "end", "the whole Optimus trial on the optimal dose"),
    ):
        for scenario, cells in frame.groupby("scenario", sort=True):
            named = leaders(cells, metric)
            verbs = verb if len(named) > 1 else verb + "s"
            lines.append(f"- {scenario}: {join(named)} most often {verbs} {label}.")
    lines.append("")
    lines.append(
        f"(Designs within {TIE_SES:g} standard errors of their difference, "
        "sqrt(SE_1^2 + SE_2^2), of the highest are named with it: Monte Carlo cannot order "
        "them. The designs share their patients' outcomes, so the difference's own SE is "
        "smaller and the rule conservative.)"
    )
    lines += ["", "## Escalation and whole trial", ""]
    shown = [
        "scenario",
        "design",
        "n_trials",
        "correct_selection",
        "selected_optimal",
        "n_overtoxic_fraction",
        "n_treated",
        "trial_ends_optimal",
        "trial_no_dose",
        "trial_patients_above_mtd",
        "trial_sample_size",
    ]
    if "duration" in frame:  # weeks, with the backfill conduct's arrivals and DLT windows
        shown.append("duration")
    lines.append(md_table(with_se(frame, shown, 3)))
    lines += [
        "",
        "`correct_selection` is Lin (2023)'s criterion: a dose with toxicity in the target "
        "interval and enough efficacy, or no dose when there is none. In all-safe every dose "
        "is below the interval, so none is a target and selecting nothing scores as correct "
        "there; `selected_optimal` scores the optimal dose, which all-safe has.",
    ]
    without = RESULTS / "optimus_study.csv"
    if record["backfill"] and without.exists():
        compared = ["selected_optimal", "trial_ends_optimal", "n_overtoxic_fraction"]
        both = pd.read_csv(without).merge(frame, on=["scenario", "design"], suffixes=("", "_bf"))
        for metric in compared:
            both[f"{metric} with backfill"] = both[f"{metric}_bf"]
            both[f"{metric} with backfill_se"] = both[f"{metric}_se_bf"]
        columns = [c for metric in compared for c in (metric, f"{metric} with backfill")]
        lines += [
            "",
            "## Without and with backfill (the main run's CSV, `optimus_study.csv`)",
            "",
            md_table(with_se(both, ["scenario", "design", *columns], 2)),
        ]
    if record["sensitivity"]:
        sens = pd.DataFrame(record["sensitivity"])
        lines += ["", "## Sensitivity", ""]
        for parameter, part in sens.groupby("parameter"):
            metric = "trial_ends_optimal" if "trial_ends_optimal" in part else "selected_optimal"
            if parameter == "range_probability":
                metric = "selected_optimal"
            view = part[["scenario", "design", "value"]].copy()
            view[metric] = [
                f"{m:.3f} ({s:.3f})"
                for m, s in zip(part[metric], part[metric + "_se"], strict=True)
            ]
            lines += [f"### {parameter} ({metric})", "", md_table(view), ""]
    return "\n".join(lines)


def write(record: dict, tag: str) -> None:
    """Write the CSV, JSON and page of a run."""
    name = f"optimus_study{tag}"
    pd.DataFrame(record["rows"]).to_csv(RESULTS / f"{name}.csv", index=False)
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=1, default=float))
    write_page(
        name,
        "Project Optimus: joint probit vs BOIN12 vs CRM vs BOIN, and the whole trial"
        + (", with backfill" if record["backfill"] else ""),
        page(record, tag),
        make="optimus-study",
        runs=MAKE_RUNS,
        rebuild="optimus_study.py --report-only" + (f" --tag {tag}" if tag else ""),
        data=[
            f"{name}.csv",
            f"{name}.json",
            *(["optimus_study.csv"] if record["backfill"] else []),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--probit-trials", type=int, default=None)
    parser.add_argument("--probit-draws", type=int, default=700)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--backfill", action="store_true")
    parser.add_argument("--no-sensitivity", dest="sensitivity", action="store_false")
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=DESIGNS)
    parser.add_argument("--tag", default="")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.probit_trials is None:
        args.probit_trials = args.trials
    name = f"optimus_study{args.tag}"
    if args.report_only:
        record = json.loads((RESULTS / f"{name}.json").read_text())
    else:
        record = run(args)
    write(record, args.tag)
    print(
        f"wrote {RESULTS / name}.{{csv,json,md}}; projected 2000 trials x 2 workers: "
        f"{projection(record):.0f} min"
    )


if __name__ == "__main__":
    main()
