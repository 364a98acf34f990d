"""Reproduce the simulation study of Lee (2023) ("Simulation experiments", Table 1).

FSAD / CSAD x accelerated (gamma = 0.9, alpha = 0.01) / standard (gamma = 0.99,
alpha = 0.001), N in {18, 30, 45}, nu0 in {0.6, 1, 1.4}; delta = 0.1, eta = 3,
(x_min, x_max) = (5, 80), x_1 = 6, xi0 = 50, sigma0 = 0.1; 1000 trials per configuration.
Every posterior update is the exact quadrature posterior of the MTD.

Run ``make study`` (or ``python benchmarks/lee2023_study.py --jobs 2``). Writes
``docs/results/lee2023_study.csv`` (one row per configuration: medians of NPD, NPO, BTM, RMSE
with Monte Carlo SEs, and means), ``lee2023_study.json`` (wall time, cores, posterior updates
per second per core) and the page ``lee2023_study.md``; ``--report-only`` rewrites the page
from the CSV and the JSON. Per-configuration results are netCDF files in
``benchmarks/runs/lee2023/`` (not committed); an interrupted run resumes from them, but the
wall time is only recorded for a run that simulated every trial itself.
"""

import argparse
import json
import os
import platform
import shutil
import time

import numpy as np
import pandas as pd
import report
from report import RESULTS, md_table, write_page

from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.studies import LEE2023_TRUE_MTD, lee2023_configurations

RUNS = report.RUNS / "lee2023"
METRICS = ("NPD", "NPO", "BTM", "RMSE")
SEED = 2023


def posterior_updates(results) -> int:
    """Decisions that needed a posterior: all but each trial's start dose."""
    kinds = results["decision_kind"].values
    starts = results["decision_bound_by"].values == "start_dose"
    return int(np.sum((kinds != "") & ~starts))


def check_claims(table: pd.DataFrame) -> list[str]:
    """Lee (2023)'s claims about its Table 1, checked cell by cell against this table."""
    keys = ["design", "nu0"]
    lines = []
    btm = table["BTM"]
    negative = table[btm < 0]
    lines.append(
        f"- Small negative median BTM: negative in {len(negative)} of {len(table)} "
        f"configurations; |median BTM| / xi0 at most {btm.abs().max() / LEE2023_TRUE_MTD:.1%} "
        f"(worst: {table.loc[btm.abs().idxmax(), 'design']}, N = "
        f"{table.loc[btm.abs().idxmax(), 'N']}, nu0 = {table.loc[btm.abs().idxmax(), 'nu0']:g})."
    )
    decreasing, exceptions = 0, []
    for (design, nu0), group in table.groupby(keys, sort=False):
        rmse = group.sort_values("N")["RMSE"].to_numpy()
        if np.all(np.diff(rmse) < 0):
            decreasing += 1
        else:
            exceptions.append(f"{design}, nu0 = {nu0:g}")
    lines.append(
        f"- RMSE decreasing with N: in {decreasing} of {decreasing + len(exceptions)} "
        f"(design, nu0) series" + (f"; not in {'; '.join(exceptions)}." if exceptions else ".")
    )
    standard = table[table["design"].str.contains("std")]
    zero = standard[(standard["NPD"] == 0) & (standard["NPO"] == 0)]
    lines.append(
        f"- Median NPD = NPO = 0 for the standard designs: in {len(zero)} of {len(standard)} "
        "configurations."
    )
    paired = table.assign(
        schedule=table["design"].str.split().str[0], strategy=table["design"].str[-4:-1]
    ).pivot_table(index=["schedule", "N", "nu0"], columns="strategy", values="RMSE")
    smaller = int((paired["acc"] < paired["std"]).sum())
    lines.append(
        f"- Smaller RMSE for the accelerated designs: in {smaller} of {len(paired)} "
        "(schedule, N, nu0) pairs."
    )
    accelerated = table[table["design"].str.contains("acc")]
    risky = int(((accelerated["NPD"] > 0) | (accelerated["NPO"] > 0)).sum())
    lines.append(
        f"- For contrast, the accelerated designs have median NPD or NPO above 0 in {risky} of "
        f"{len(accelerated)} configurations."
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials per configuration")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--resume", action="store_true", help="keep finished runs")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the page from the saved CSV and JSON (no simulation)",
    )
    args = parser.parse_args()
    if args.report_only:
        write_report()
        return
    if not args.resume:
        shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True, exist_ok=True)

    load_before = os.getloadavg()
    rows, updates, started = [], 0, time.perf_counter()
    configurations = lee2023_configurations()
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
    table.to_csv(RESULTS / "lee2023_study.csv", index=False, float_format="%.6g")
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
            "command": f"python benchmarks/lee2023_study.py --trials {args.trials} "
            f"--jobs {args.jobs}",
            # 1, 5 and 15-minute load averages: other jobs on the machine slow the run down.
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
        (RESULTS / "lee2023_study.json").write_text(json.dumps(record, indent=2) + "\n")
    write_report()


def markdown(table: pd.DataFrame, record: dict) -> str:
    """Return the page's body: the medians per configuration, the claims, the wall time."""
    shown = table[["design", "N", "nu0"]].copy()
    for metric in METRICS:
        shown[metric] = [
            f"{m:.3g} ({s:.2g})"
            for m, s in zip(table[metric], table[f"{metric}_mcse"], strict=True)
        ]
    (trials,) = table["trials"].unique()
    return (
        f"Medians over {trials} trials per configuration (Monte Carlo SE of the median, "
        "bootstrap).\n\n"
        + md_table(shown)
        + "\n\nLee (2023)'s claims, checked on this table:\n\n"
        + "\n".join(check_claims(table))
        + f"\n\nWall time of the whole study: {record['wall_seconds'] / 60:.1f} min on "
        f"{record['cores']} worker processes ({record['machine']}); "
        f"{record['posterior_updates']:,} posterior updates, "
        f"{record['updates_per_second_per_core']:g} per second per core (`{record['command']}`)"
        + (
            f"; load averages {record['load_average_before']} before and "
            f"{record['load_average_after']} after (1, 5, 15 min)."
            if "load_average_before" in record
            else "."
        )
    )


def write_report() -> None:
    """Write the page lee2023_study.md from the saved CSV and JSON."""
    table = pd.read_csv(RESULTS / "lee2023_study.csv")
    record = json.loads((RESULTS / "lee2023_study.json").read_text())
    text = markdown(table, record)
    write_page(
        "lee2023_study",
        "Lee (2023): the simulation study (36 configurations)",
        text,
        make="study",
        runs=["lee2023_study.py --trials 1000 --jobs 2"],
        rebuild="lee2023_study.py --report-only",
        data=["lee2023_study.csv", "lee2023_study.json"],
    )
    print(text)


if __name__ == "__main__":
    main()
