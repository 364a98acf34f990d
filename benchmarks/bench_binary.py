"""Benchmark the binary-toxicity designs: decision speed, simulation speed, operating characteristics.

Run ``make bench-binary`` or ``python benchmarks/bench_binary.py`` (options: ``--trials N``,
``--timing-trials N``, ``--timing-runs R``, ``--report-only``). It measures, on one core (BLAS pinned to one thread, ``n_jobs=1``):

(a) decisions per second of each design: the median wall time of ``design.next(data)`` on one
    mid-trial data set (15 patients in 5 cohorts of 3), as a count state new to the design
    (:func:`decision_seconds`), with the grid posterior's share of it for the model-based
    designs;
(b) the wall time of ``simulate`` for ``--timing-trials`` trials (2000) of 36 patients of BOIN and
    3+3 on the first scenario (target: < 1 s; they run in lockstep, deciding from counts), then
    the per-trial engine on the same trials, asserted identical, and where its time goes: the
    design's own calls (``next`` and ``recommend``), the scenario's (``respond`` and
    ``trial_metrics``), the engine's per-trial bookkeeping (``TrialData.with_cohort``, the trial
    record) and the assembly of the results into one ``xarray.Dataset``; for CRM, BLRM and EWOC,
    whose decisions dominate, the wall time of their operating-characteristics runs (c);
(c) the operating characteristics of the five designs on three scenarios of Table 1 of Seno et al.
    (2025)
    with ``--trials`` trials each, every design simulated with the same ``random_seed`` (common
    random numbers: patient ``i`` of trial ``t`` has the same latent tolerance in every design).

The machine may be shared, so the timing part (a, b) runs ``--timing-runs`` times and every run
is reported with the load averages (``os.getloadavg``) before it; a rerun of a simulation must
reproduce the first run exactly.

Writes ``docs/results/binary_designs.json``, ``binary_oc.csv`` (one row per scenario, design and
metric: mean, Monte Carlo SE, trials used) and the page ``binary_designs.md``; ``--report-only``
rewrites the page from the JSON without measuring anything.
"""

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import report
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.designs import (
    CountDesign,
    blrm_design,
    boin_design,
    crm_design,
    ewoc_design,
    three_plus_three_design,
)
from dosezoo.models.blrm import BLRM
from dosezoo.models.crm import CRM, crm_skeleton
from dosezoo.models.ewoc import EWOC
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import engine, operating_characteristics, runner, simulate

RESULTS = report.RESULTS

#: Dose levels (mg) of every design and scenario; BLRM and EWOC use the values, the others
#: only their order.
DOSE_LEVELS = (10.0, 20.0, 40.0, 60.0, 80.0)
TARGET = 0.3
PLANNED = 36
#: Scenarios 13, 16 and 18 of Seno et al. (2025), Table 1 (target 0.3): the true MTD at level 2,
#: 3, 4.
SCENARIOS = {
    "Seno2025-13 (MTD 20)": (0.08, 0.30, 0.38, 0.42, 0.52),
    "Seno2025-16 (MTD 40)": (0.01, 0.12, 0.30, 0.41, 0.55),
    "Seno2025-18 (MTD 60)": (0.02, 0.05, 0.16, 0.30, 0.36),
}
RANDOM_SEED = 2024
#: Representative mid-trial data: 5 cohorts of 3, escalating to 60 with DLTs there.
MID_TRIAL = {
    "dose": [10.0] * 3 + [20.0] * 3 + [40.0] * 6 + [60.0] * 3,
    "dlt": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0],
}
DECISION_REPEATS = {"model": 50, "rule": 1000}
#: Speed targets of the binary designs: one decision (seconds) and 2000 simulated trials
#: (seconds).
DECISION_TARGET = {"CRM": 1e-3, "BLRM": 5e-3, "EWOC": 5e-3}
SIMULATION_TARGET = {"BOIN": 1.0, "3+3": 1.0}
SIMULATION_TARGET_TRIALS = 2000
#: (metric, label, scale) of the operating-characteristics table.
OC_COLUMNS = (
    ("correct_selection", "PCS %", 100),
    ("overdose_selection", "POS %", 100),
    ("no_selection", "no MTD %", 100),
    ("n_at_mtd_fraction", "PCA % treated", 100),
    ("n_at_mtd_over_planned", "PCA % planned", 100),
    ("n_overdosed_fraction", "POA % treated", 100),
    ("n_overdosed_over_planned", "POA % planned", 100),
    ("dlt_rate", "DLT % treated", 100),
    ("dlt_over_planned", "DLT % planned", 100),
    ("stopped_early", "fewer than 36 %", 100),
    ("n_treated", "mean n", 1),
)


def designs() -> dict[str, object]:
    """Return the five designs, each with its papers' defaults except where said.

    Cohorts of 3 and 36 patients for all but 3+3 (at most 6 per level, so 30). CRM: empiric
    model, skeleton by Lee and Cheung's indifference intervals (half-width 0.07, prior MTD at
    level 3), dfcrm's prior. BLRM: OncoBayes2's weakly informative prior with the reference dose
    at level 3, target interval [0.2, 0.4) around 0.3 (the 0.16-0.33 default is for a 0.25
    target). EWOC: dose range from the lowest to the highest level, uniform priors, alpha 0.25,
    cohorts of 3 (Babb et al. enrol one patient at a time).
    """
    return {
        "CRM": crm_design(
            CRM(crm_skeleton(TARGET, 0.07, 3, len(DOSE_LEVELS)), TARGET, dose_levels=DOSE_LEVELS)
        ),
        "BOIN": boin_design(TARGET, DOSE_LEVELS),
        "3+3": three_plus_three_design(DOSE_LEVELS),
        "BLRM": blrm_design(BLRM(DOSE_LEVELS, DOSE_LEVELS[2]), target_interval=(0.2, 0.4)),
        "EWOC": ewoc_design(
            EWOC(TARGET, DOSE_LEVELS[0], DOSE_LEVELS[-1], dose_levels=DOSE_LEVELS), cohort_size=3
        ),
    }


def scenarios() -> dict[str, BinaryToxicityScenario]:
    return {
        name: BinaryToxicityScenario(DOSE_LEVELS, p_true, TARGET, planned_sample_size=PLANNED)
        for name, p_true in SCENARIOS.items()
    }


def mid_trial_data() -> TrialData:
    cohort = np.repeat(np.arange(1, 6), 3)
    return TrialData.from_dataframe(pd.DataFrame(MID_TRIAL | {"cohort": cohort}))


def load() -> dict[str, float]:
    one, five, fifteen = os.getloadavg()
    return {"1 min": one, "5 min": five, "15 min": fifteen}


def decision_seconds(design, method: str, data: TrialData, repeats: int) -> float:
    """Median wall seconds of ``design.<method>(data)`` on a count state new to the design."""
    call = getattr(design, method)
    return stage_seconds(design, data, repeats, lambda fresh, _: call(fresh))[0]


def stage_seconds(design, data: TrialData, repeats: int, *stages) -> list[float]:
    """Median wall seconds of each stage of a decision on a count state new to the design.

    ``stages`` run in order, each timed apart, each called with the data and what the stage
    before it returned (None for the first). As a trial reaching a state the design has not
    seen: before each repetition, outside the timing, the model's posterior memo is emptied
    and the data copied. Grid models keep recent posteriors by the counts per dose, and the
    counts of the last data (the same object), so timing the same data again would time
    lookups, not a decision. What a model makes once (e.g. the CRM's scaled doses) stays
    made, as it does in a trial; so does what the first, untimed repetition compiles or loads.
    """
    cache = getattr(getattr(design, "model", None), "_cache", None)
    times: list[list[float]] = [[] for _ in stages]
    for repetition in range(repeats + 1):
        if cache is not None:
            cache.pop("posteriors", None)
        fresh = copy.copy(data)
        result = None
        for stage, spent in zip(stages, times, strict=True):
            started = time.perf_counter()
            result = stage(fresh, result)
            if repetition:
                spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def bench_decisions(all_designs: dict, data: TrialData) -> dict:
    out = {}
    for name, design in all_designs.items():
        model_based = not isinstance(design, CountDesign)
        repeats = DECISION_REPEATS["model" if model_based else "rule"]
        seconds = decision_seconds(design, "next", data, repeats)
        decision = design.next(data)
        row = {
            "seconds": seconds,
            "per_second": 1.0 / seconds,
            "repeats": repeats,
            "decision": (
                f"dose {decision.next_dose:g}"
                if decision.next_dose is not None
                else f"stop: {decision.stop_reason}"
            ),
        }
        if model_based:
            row["posterior_seconds"] = decision_seconds(design, "posterior", data, repeats)
        out[name] = row
    return out


# --------------------------------------------------------------------------- (b) simulation


class _Timed:
    """Forward every attribute to ``inner``; add the time spent in ``methods`` to ``clock``."""

    def __init__(self, inner, methods: tuple[str, ...], clock: dict[str, float]) -> None:
        self._inner, self._methods, self._clock = inner, methods, clock

    def __getattr__(self, name: str):
        value = getattr(self._inner, name)
        if name not in self._methods:
            return value

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                self._clock[name] = self._clock.get(name, 0.0) + time.perf_counter() - started

        return timed


class _PerTrial:
    """A design offering only the `Design` protocol (timed), so `simulate` runs it trial by trial.

    BOIN and 3+3 also offer `CountRuleDesign`, with which `simulate` runs a batch of trials in
    lockstep; this wrapper hides that, to time the per-trial engine on the same trials.
    """

    def __init__(self, design, clock: dict[str, float]) -> None:
        timed = _Timed(design, ("next", "recommend"), clock)
        self.cohort_size, self.sample_size = design.cohort_size, design.sample_size
        self.next, self.recommend, self.describe = timed.next, timed.recommend, design.describe


@contextmanager
def _engine_clock(clock: dict[str, float]):
    """Time ``TrialData.with_cohort`` and the engine's assembly of results, then restore them."""
    originals = {
        "with_cohort": (TrialData, TrialData.with_cohort),
        # Each is replaced where it is looked up: the per-trial engine pads its records with
        # `_to_dataset`, `simulate` (the runner) gathers the batches with `_combine`.
        "_to_dataset": (engine, engine._to_dataset),
        "_combine": (runner, runner._combine),
    }

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                clock[name] = clock.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    try:
        for name, (owner, function) in originals.items():
            setattr(owner, name, timed(name, function))
        yield
    finally:
        for name, (owner, function) in originals.items():
            setattr(owner, name, function)


def bench_simulation(design, scenario, n_trials: int) -> tuple[dict, xr.Dataset]:
    """Time ``simulate``; then the per-trial engine on the same trials, every call timed.

    BOIN and 3+3 run in lockstep (`dosezoo.protocols.CountRuleDesign`): that is the timing
    against the target. The per-trial run must give the identical Dataset; its breakdown shows
    where a design without the count capability spends its time.
    """
    started = time.perf_counter()
    results = simulate(
        design, scenario, n_trials, random_seed=RANDOM_SEED, n_jobs=1, progress=False
    )
    wall = time.perf_counter() - started

    clock: dict[str, float] = {}
    timed_scenario = _Timed(scenario, ("respond", "trial_metrics", "empty_data"), clock)
    with _engine_clock(clock):
        started = time.perf_counter()
        again = simulate(
            _PerTrial(design, clock),
            timed_scenario,
            n_trials,
            random_seed=RANDOM_SEED,
            n_jobs=1,
            progress=False,
        )
        per_trial = time.perf_counter() - started
    xr.testing.assert_identical(results, again)
    parts = {
        "design (next, recommend)": clock.get("next", 0.0) + clock.get("recommend", 0.0),
        "scenario (respond, metrics)": sum(
            clock.get(k, 0.0) for k in ("respond", "trial_metrics", "empty_data")
        ),
        "TrialData.with_cohort": clock.get("with_cohort", 0.0),
        "assembly (_to_dataset, _combine)": clock.get("_to_dataset", 0.0)
        + clock.get("_combine", 0.0),
    }
    parts["rest of run_trial and simulate"] = per_trial - sum(parts.values())
    return {
        "n_trials": n_trials,
        "seconds": wall,
        "trials_per_second": n_trials / wall,
        "per_trial_seconds": per_trial,
        "breakdown_seconds": parts,
    }, results


# --------------------------------------------------------------------------- (c) OC


def oc_rows(results: xr.Dataset, design: str, scenario: str) -> list[dict]:
    oc = operating_characteristics(results, random_seed=0, n_bootstrap=2)
    rows = [
        {
            "scenario": scenario,
            "design": design,
            "metric": str(metric),
            "mean": float(oc["mean"].sel(metric=metric)),
            "mcse": float(oc["mcse_mean"].sel(metric=metric)),
            "n": int(oc["n"].sel(metric=metric)),
        }
        for metric in oc["metric"].values
    ]
    p = float(oc["p_stopped_early"])
    n = results.sizes["trial"]
    rows.append(
        {
            "scenario": scenario,
            "design": design,
            "metric": "design_stopped",
            "mean": p,
            "mcse": float(np.sqrt(p * (1 - p) / n)),
            "n": n,
        }
    )
    return rows


def oc_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per scenario and design: ``mean (SE)`` of each OC column."""
    columns = (*OC_COLUMNS[:9], ("design_stopped", "design stopped %", 100), *OC_COLUMNS[9:])
    rows = []
    for (scenario, design), group in frame.groupby(["scenario", "design"], sort=False):
        by_metric = group.set_index("metric")
        row = {"scenario": scenario, "design": design}
        for metric, label, scale in columns:
            mean, se = by_metric.loc[metric, "mean"] * scale, by_metric.loc[metric, "mcse"] * scale
            row[label] = f"{mean:.1f} ({se:.1f})"
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- report


def markdown(results: dict, command: str) -> str:
    lines = [
        f"Produced by `{command.strip()}` ({results['machine']}; {results['date']}). One core, "
        "`n_jobs=1`; other jobs on the machine would slow the timings down, so the load "
        "averages before each timing run are given below.",
        "",
        "Decision time: median wall time of `design.next(data)` on 15 patients in 5 cohorts of "
        "3, each on a fresh copy of the data (model-based designs: the exact grid engine, its "
        "posterior memo emptied before each call, as on a count state new to the design; in "
        "brackets the posterior's time in ms).",
        "",
    ]
    names = list(results["timing_runs"][0]["decisions"])
    header = ["design", "target"]
    for i, run in enumerate(results["timing_runs"], start=1):
        header += [f"run {i}: ms per decision", f"run {i}: decisions/s"]
    rows = []
    for name in names:
        target = DECISION_TARGET.get(name)
        row = [name, f"< {target * 1e3:g} ms" if target else ""]
        for run in results["timing_runs"]:
            d = run["decisions"][name]
            share = f" ({d['posterior_seconds'] * 1e3:.2f})" if "posterior_seconds" in d else ""
            met = ""
            if target:
                met = " met" if d["seconds"] < target else " NOT met"
            row += [f"{d['seconds'] * 1e3:.3f}{share}{met}", f"{d['per_second']:,.0f}"]
        rows.append(row)
    lines.append(report.md_table(pd.DataFrame(rows, columns=header)))
    first_scenario = next(iter(SCENARIOS))
    lines += [
        "",
        f"Simulation time of the rule-based designs: `simulate(design, scenario, "
        f"{results['timing_trials']}, n_jobs=1)` on {first_scenario}. BOIN and 3+3 decide from "
        "the counts per level, so `simulate` runs a batch of trials in lockstep (one array call "
        "decides the next cohort of every running trial). For comparison, the per-trial engine "
        "on the same trials (the design wrapped to hide its count capability; the Dataset is "
        "asserted identical), with every call timed (seconds: the design's `next` and "
        "`recommend` / the scenario's `respond` and `trial_metrics` / `TrialData.with_cohort` / "
        "the engine's assembly of the Dataset (`_to_dataset`, `_combine`) / the rest of "
        "`run_trial` and `simulate` (records, checks, seeds), with the timers' own overhead).",
        "",
    ]
    header = ["design", "target"]
    for i, _ in enumerate(results["timing_runs"], start=1):
        header += [
            f"run {i}: wall s",
            f"run {i}: trials/s",
            f"run {i}: per-trial engine s",
            f"run {i}: per-trial design / scenario / with_cohort / assembly / rest s",
        ]
    rows = []
    for name, target in SIMULATION_TARGET.items():
        row = [name, f"< {target:g} s for {SIMULATION_TARGET_TRIALS} trials"]
        for run in results["timing_runs"]:
            s = run["simulation"][name]
            parts = " / ".join(f"{v:.2f}" for v in s["breakdown_seconds"].values())
            met = ""
            if results["timing_trials"] == SIMULATION_TARGET_TRIALS:
                met = " met" if s["seconds"] < target else " NOT met"
            row += [
                f"{s['seconds']:.2f}{met}",
                f"{s['trials_per_second']:,.0f}",
                f"{s['per_trial_seconds']:.2f}",
                parts,
            ]
        rows.append(row)
    lines.append(report.md_table(pd.DataFrame(rows, columns=header)))
    for name in SIMULATION_TARGET:
        s = results["timing_runs"][-1]["simulation"][name]
        per_trial = {k: v / s["n_trials"] * 1e3 for k, v in s["breakdown_seconds"].items()}
        lines.append(
            f"- {name} (last run), per trial in the per-trial engine: "
            + ", ".join(f"{k} {v:.2f} ms" for k, v in per_trial.items())
            + f"; the target allows {SIMULATION_TARGET[name] / SIMULATION_TARGET_TRIALS * 1e3:.2f} ms "
            "per trial in all."
        )
    lines += [
        "",
        f"Simulation time of every design in the operating-characteristics runs below "
        f"({results['n_trials']} trials per cell, n_jobs=1): trials/s (wall s).",
        "",
    ]
    rows = []
    for scenario, by_design in results["oc_simulation_seconds"].items():
        rows.append(
            [scenario]
            + [f"{v['trials_per_second']:,.1f} ({v['seconds']:.0f})" for v in by_design.values()]
        )
    lines.append(report.md_table(pd.DataFrame(rows, columns=["scenario", *names])))
    loads = "; ".join(
        f"run {i}: " + ", ".join(f"{v:.2f}" for v in run["load_before"].values())
        for i, run in enumerate(results["timing_runs"], start=1)
    )
    lines += ["", f"Load averages (1, 5, 15 min) before each timing run: {loads}.", ""]
    lines += [
        f"Operating characteristics: {results['n_trials']} trials per design and scenario, "
        f"random_seed={RANDOM_SEED} for every design (common random numbers), target {TARGET}, "
        f"dose levels {', '.join(f'{d:g}' for d in DOSE_LEVELS)}, 36 patients planned (3+3: at "
        "most 30). Mean (Monte Carlo SE), in % except mean n. PCS/POS: selection of the true "
        'MTD / of a dose above it; PCA/POA: patients at / above the true MTD; "% treated": '
        "each trial's fraction of its own patients, averaged over the trials (the BOIN "
        "package divides the mean count by the mean sample size instead, which weighs long "
        'trials more); "design stopped": '
        'the design stopped before its sample size by one of its rules; "fewer than 36": fewer '
        "patients than planned. Full table: [`binary_oc.csv`](binary_oc.csv).",
        "",
    ]
    table = oc_table(pd.DataFrame(results["oc_rows"]))
    keep = [
        "scenario",
        "design",
        "PCS %",
        "POS %",
        "no MTD %",
        "PCA % treated",
        "POA % treated",
        "DLT % treated",
        "DLT % planned",
        "design stopped %",
        "mean n",
    ]
    lines.append(report.md_table(table[keep]))
    return "\n".join(lines)


def write_report() -> str:
    """Write the page binary_designs.md from the saved JSON (no measurement); return its body."""
    results = json.loads((RESULTS / "binary_designs.json").read_text())
    text = markdown(results, results["command"])
    report.write_page(
        "binary_designs",
        "Binary-DLT designs: speed and operating characteristics",
        text,
        make="bench-binary",
        runs=["bench_binary.py"],
        rebuild="bench_binary.py --report-only",
        data=["binary_designs.json", "binary_oc.csv"],
    )
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per OC cell")
    parser.add_argument(
        "--timing-trials", type=int, default=SIMULATION_TARGET_TRIALS, help="BOIN and 3+3"
    )
    parser.add_argument("--timing-runs", type=int, default=2)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the page from the saved JSON",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        write_report()
        return
    command = " ".join(
        ["python benchmarks/bench_binary.py", *(sys.argv[1:] if argv is None else argv)]
    )

    all_designs = designs()
    all_scenarios = scenarios()
    data = mid_trial_data()
    first_scenario = next(iter(all_scenarios.values()))

    timing_runs, first_results = [], {}
    for run in range(args.timing_runs):
        print(f"timing run {run + 1}", flush=True)
        entry = {"load_before": load(), "decisions": bench_decisions(all_designs, data)}
        entry["simulation"] = {}
        for name in SIMULATION_TARGET:
            timing, results = bench_simulation(
                all_designs[name], first_scenario, args.timing_trials
            )
            entry["simulation"][name] = timing
            if run == 0:
                first_results[name] = results
            else:  # same seed, same trials: a rerun must reproduce the first run exactly
                xr.testing.assert_identical(first_results[name], results)
        entry["load_after"] = load()
        timing_runs.append(entry)

    oc, oc_seconds = [], {}
    for scenario_name, scenario in all_scenarios.items():
        oc_seconds[scenario_name] = {}
        for name, design in all_designs.items():
            print(f"OC: {scenario_name}, {name}", flush=True)
            started = time.perf_counter()
            results = simulate(
                design, scenario, args.trials, random_seed=RANDOM_SEED, n_jobs=1, progress=False
            )
            seconds = time.perf_counter() - started
            oc_seconds[scenario_name][name] = {
                "seconds": seconds,
                "trials_per_second": args.trials / seconds,
                "load_after": load(),
            }
            oc += oc_rows(results, name, scenario_name)

    results = {
        "command": command,
        "n_trials": args.trials,
        "timing_trials": args.timing_trials,
        "random_seed": RANDOM_SEED,
        "dose_levels": DOSE_LEVELS,
        "target": TARGET,
        "scenarios": SCENARIOS,
        "designs": {name: design.describe() for name, design in all_designs.items()},
        "mid_trial_data": MID_TRIAL,
        "timing_runs": timing_runs,
        "oc_simulation_seconds": oc_seconds,
        "oc_rows": oc,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "binary_designs.json").write_text(json.dumps(results, indent=2))
    pd.DataFrame(oc).to_csv(RESULTS / "binary_oc.csv", index=False)
    print(write_report())


if __name__ == "__main__":
    main()
