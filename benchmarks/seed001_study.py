"""Reproduce the simulation study of seed 001 (Lee 2023, "Simulation experiments", Table 1).

FSAD / CSAD x accelerated (gamma = 0.9, alpha = 0.01) / standard (gamma = 0.99,
alpha = 0.001), N in {18, 30, 45}, nu0 in {0.6, 1, 1.4}; delta = 0.1, eta = 3,
(x_min, x_max) = (5, 80), x_1 = 6, xi0 = 50, sigma0 = 0.1; 1000 trials per configuration.
Every posterior update is the exact quadrature posterior of the MTD.

Run ``make study`` (or ``python benchmarks/seed001_study.py --jobs 2``). Writes
``benchmarks/results/seed001_study.csv`` and ``.md`` (one row per configuration: medians of
NPD, NPO, BTM, RMSE with Monte Carlo SEs, and means) and ``seed001_study.json`` (wall time,
cores, posterior updates per second per core). Per-configuration results are netCDF files in
``benchmarks/results/seed001_runs/`` (not committed); an interrupted run resumes from them,
but the wall time is only recorded for a run that simulated every trial itself.
"""

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from md_table import md_table

from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.studies import seed001_configurations

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "seed001_runs"
METRICS = ("NPD", "NPO", "BTM", "RMSE")
SEED = 2023


def posterior_updates(results) -> int:
    """Decisions that needed a posterior: all but each trial's start dose."""
    kinds = results["decision_kind"].values
    starts = results["decision_bound_by"].values == "start_dose"
    return int(np.sum((kinds != "") & ~starts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials per configuration")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--resume", action="store_true", help="keep finished runs")
    args = parser.parse_args()
    if not args.resume:
        shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True, exist_ok=True)

    rows, updates, started = [], 0, time.perf_counter()
    configurations = seed001_configurations()
    for number, configuration in enumerate(configurations, 1):
        print(f"[{number}/{len(configurations)}] {configuration.name}", flush=True)
        results = simulate(
            configuration.design,
            configuration.scenario,
            args.trials,
            random_seed=SEED,
            n_jobs=args.jobs,
            path=RUNS / f"{configuration.name}.nc",
            progress=False,
        )
        updates += posterior_updates(results)
        summary = operating_characteristics(results).sel(metric=list(METRICS))
        row = dict(configuration.labels)
        for metric in METRICS:
            values = summary.sel(metric=metric)
            row[metric] = float(values["median"])
            row[f"{metric}_mcse"] = float(values["mcse_median"])
        for metric in METRICS:
            row[f"{metric}_mean"] = float(summary.sel(metric=metric)["mean"])
        row["trials"] = args.trials
        rows.append(row)
    wall = time.perf_counter() - started

    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / "seed001_study.csv", index=False, float_format="%.6g")
    shown = table[["design", "N", "nu0"]].copy()
    for metric in METRICS:
        shown[metric] = [
            f"{m:.3g} ({s:.2g})"
            for m, s in zip(table[metric], table[f"{metric}_mcse"], strict=True)
        ]
    (RESULTS / "seed001_study.md").write_text(
        "Medians over trials (Monte Carlo SE), made by `python benchmarks/seed001_study.py "
        f"--trials {args.trials} --jobs {args.jobs}`\n\n" + md_table(shown) + "\n"
    )
    if not args.resume:
        record = {
            "wall_seconds": round(wall, 1),
            "cores": args.jobs,
            "trials_per_configuration": args.trials,
            "configurations": len(configurations),
            "posterior_updates": updates,
            "updates_per_second_per_core": round(updates / wall / args.jobs, 1),
            "engine": "quadrature",
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "command": f"python benchmarks/seed001_study.py --trials {args.trials} "
            f"--jobs {args.jobs}",
        }
        (RESULTS / "seed001_study.json").write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record, indent=2))
    print(md_table(shown))


if __name__ == "__main__":
    main()
