"""The comparison study of Seno et al. (2025) (Section 5.2): LSE (lambda 0 and 1), BO, CRM and BOIN.

Five doses, 12 cohorts of 3 (36 patients), start at the lowest dose, the 20 scenarios of
Table 1 (:mod:`dosezoo.scenarios.seno2025`; target 0.2 for 1-10, 0.3 for 11-20), 2000 trials each
by default. Designs:

- ``LSE_lambda0``, ``LSE_lambda1``: :func:`dosezoo.designs.lse.lse_design` (two-stage, BOIN
  until 2 DLTs, misclassification acquisition with overdose weight lambda);
- ``BO``: :func:`dosezoo.designs.lse.bo_design` (same two stages, expected improvement);
- ``CRM``: empiric model, Lee and Cheung skeleton (prior MTD at dose 3, half-width 0.05),
  prior variance 1.34, posterior-mean estimates, no skipping up or down, safety stop with the
  same cut-off as the GP designs (0.9);
- ``BOIN``: Liu and Yuan's defaults with the R package's extra-safe stop.

Every design uses the same ``random_seed`` per scenario, so trial ``t`` gives its patients
the same latent tolerances under every design (common random numbers).

Metrics (percent, with Monte Carlo SEs): PCS (correct selection), PCA (patients at the MTD),
POS (selection above the MTD), POA (patients above the MTD), pDLT (DLTs); allocation metrics
over the planned 36 patients (the paper's convention) in the CSV, and also over the patients
treated in the markdown.

Writes ``docs/results/lse_comparison.csv`` (columns scenario, design, every metric and its
``*_se``), ``.json`` (``wall_seconds``, ``cores`` and the measured seconds per trial of each
design) and the page ``lse_comparison.md``. Per-cell netCDF files in ``benchmarks/runs/lse/``
(not committed) make an interrupted run resume (simulate's ``path=``).
``--lambda-sensitivity`` runs Section 5.2.3 (lambda in 0, 0.25, ..., 1.25) on
``--sensitivity-scenarios`` (all 20 by default; ``make lse-appendix`` runs it through
``lse_appendix.py``) and writes ``lse_lambda_sensitivity.csv``, ``.json`` and the page
``lse_lambda_sensitivity.md``. ``--report-only`` rewrites the pages from the saved CSV and JSON
files (no simulation).

Usage: ``make lse-study`` or ``python benchmarks/lse_comparison.py --trials 2000 --jobs 2``.
"""

import os

# One BLAS thread: the GP designs multiply small matrices, and threads only contend (the
# variables must be set before numpy is imported).
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import report  # noqa: E402
from report import RESULTS, write_page  # noqa: E402

from dosezoo.designs import boin_design, crm_design  # noqa: E402
from dosezoo.designs.lse import bo_design, lse_design  # noqa: E402
from dosezoo.models.crm import CRM, crm_skeleton  # noqa: E402
from dosezoo.scenarios import (  # noqa: E402
    SENO2025_DOSE_LEVELS,
    SENO2025_SCENARIOS,
    seno2025_scenario,
    seno2025_target,
)
from dosezoo.simulate import operating_characteristics, simulate  # noqa: E402

RUNS = report.RUNS / "lse"
SEED = 3003
DESIGNS = ("LSE_lambda0", "LSE_lambda1", "BO", "CRM", "BOIN")
#: Metric name in the table -> per-trial variable of BinaryToxicityScenario.
PLANNED = {
    "PCS": "correct_selection",
    "PCA": "n_at_mtd_over_planned",
    "POS": "overdose_selection",
    "POA": "n_overdosed_over_planned",
    "pDLT": "dlt_over_planned",
}
TREATED = {
    "PCA_treated": "n_at_mtd_fraction",
    "POA_treated": "n_overdosed_fraction",
    "pDLT_treated": "dlt_rate",
    "no_selection": "no_selection",
}
SENSITIVITY_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)
#: Cells whose results (or some of their batches) were on disk before this run: the wall
#: time of a run that resumed any is not the time of the whole study, and the record says so.
RESUMED: list[str] = []
SAFETY_CUTOFF = 0.9
#: MCMC settings of the GP designs (one chain); --draws / --tune change them. Half the
#: designs' defaults (1000 / 200): the kernel's ESS is about 0.9 per draw, so P(p_k < phi)
#: carries a Monte Carlo SE of at most 0.025, and the study fits the 30-minute budget.
MCMC = {"draws": 500, "tune": 100}
#: What `make lse-study` runs.
MAKE_RUN = "lse_comparison.py --trials 2000 --jobs 2"
#: What `make lse-appendix` runs, the lambda sensitivity on all 20 scenarios among it.
APPENDIX_RUN = (
    "lse_appendix.py --trials 2000 --jobs 2 --acquisition-comparison --lambda-sensitivity "
    "--lowest-dose-sensitivity --monotonicity"
)


def crm_arm(target: float):
    """Return the CRM arm of Appendix C.1."""
    skeleton = crm_skeleton(target, 0.05, 3, len(SENO2025_DOSE_LEVELS))
    model = CRM(skeleton, target, model="empiric", dose_levels=SENO2025_DOSE_LEVELS)
    return crm_design(
        model,
        cohort_size=3,
        sample_size=36,
        estimate="mean",
        max_step_up=1,
        max_step_down=1,
        safety_cutoff=SAFETY_CUTOFF,
    )


def make_design(name: str, target: float):
    """Return the design called ``name`` for a trial with this target."""
    levels = SENO2025_DOSE_LEVELS
    if name.startswith("LSE_lambda"):
        weight = float(name.removeprefix("LSE_lambda"))
        return lse_design(target, levels, overdose_weight=weight, random_seed=SEED, **MCMC)
    if name == "BO":
        return bo_design(target, levels, random_seed=SEED, **MCMC)
    if name == "CRM":
        return crm_arm(target)
    if name == "BOIN":
        return boin_design(target, levels, cohort_size=3, sample_size=36, extra_safe=True)
    raise ValueError(f"unknown design {name!r}")


def summarise(results, metrics: dict[str, str]) -> dict[str, float]:
    """Means (percent) and their Monte Carlo SEs of per-trial metrics."""
    # Only means and their SEs are reported: the bootstrap SE of the median (1000 resamples
    # of every metric by default) would cost the coordinating process seconds per cell,
    # while the workers wait for it.
    summary = operating_characteristics(results, n_bootstrap=2).sel(metric=list(metrics.values()))
    row = {}
    for name, variable in metrics.items():
        values = summary.sel(metric=variable)
        row[name] = 100 * float(values["mean"])
        row[f"{name}_se"] = 100 * float(values["mcse_mean"])
    return row


def run_cell(
    design_name: str, scenario: int, trials: int, jobs: int, factory=None
) -> tuple[dict, float]:
    """Simulate one (design, scenario) cell; return its row and the seconds it took.

    ``factory(target)`` builds the design (``make_design(design_name, target)`` by default);
    ``design_name`` also names the cell's saved run, so it must tell the designs apart.
    The row also has ``lowest_selected``: the percentage of trials recommending the lowest dose.
    """
    target = seno2025_target(scenario)
    design = make_design(design_name, target) if factory is None else factory(target)
    path = RUNS / f"{design_name}_s{scenario:02d}_n{trials}_d{MCMC['draws']}t{MCMC['tune']}.nc"
    if path.exists() or path.with_name(path.name + ".parts").exists():
        RESUMED.append(path.name)
    started = time.perf_counter()
    results = simulate(
        design,
        seno2025_scenario(scenario),
        trials,
        random_seed=SEED + scenario,
        n_jobs=jobs,
        # few, large batches: each saved batch is a netCDF write in this process
        batch_size=max(1, min(500, -(-trials // (2 * jobs)))),
        path=path,
        progress=False,
    )
    elapsed = time.perf_counter() - started
    row = {"scenario": scenario, "design": design_name}
    row |= summarise(results, PLANNED | TREATED)
    lowest = np.asarray(results["recommended_dose"]) == SENO2025_DOSE_LEVELS[0]
    row["lowest_selected"] = 100 * float(lowest.mean())
    row["lowest_selected_se"] = 100 * float(lowest.std() / np.sqrt(lowest.size))
    return row, elapsed


def _cell_text(table: pd.DataFrame, metric: str) -> pd.Series:
    return (
        table[metric].map("{:.1f}".format) + " (" + table[f"{metric}_se"].map("{:.1f}".format) + ")"
    )


def _wide_table(table: pd.DataFrame, metric: str) -> list[str]:
    """Markdown lines of one metric: scenarios as rows, designs as columns, ``mean (SE)``."""
    wide = (
        table.assign(cell=_cell_text(table, metric))
        .pivot(index="scenario", columns="design", values="cell")
        .reindex(columns=[d for d in DESIGNS if d in set(table["design"])])
    )
    lines = ["| scenario | " + " | ".join(wide.columns) + " |"]
    lines.append("|---" * (len(wide.columns) + 1) + "|")
    lines += [
        f"| {scenario} | " + " | ".join(values) + " |" for scenario, values in wide.iterrows()
    ]
    return lines


#: Scenarios where Seno et al. (2025) report CRM with the best PCS (Section 5.2.1).
CRM_FAVOURED = (8, 9, 10, 20)


def claims(table: pd.DataFrame) -> list[str]:
    """Count the qualitative claims of Seno et al. (2025) (Sections 5.2.1-5.2.2) on this table."""
    designs = [d for d in DESIGNS if d in set(table["design"])]
    if set(designs) != set(DESIGNS):
        return ["- (the claims compare all five designs; this run has " + ", ".join(designs) + ")"]
    pivot = {m: table.pivot(index="scenario", columns="design", values=m) for m in PLANNED}
    pcs, pos, poa = pivot["PCS"][designs], pivot["POS"][designs], pivot["POA"][designs]
    others = [s for s in pcs.index if s not in CRM_FAVOURED]
    favoured = [s for s in pcs.index if s in CRM_FAVOURED]
    # POS and POA are 0 for every design when the MTD is the highest dose.
    overdosable = [s for s in pos.index if pos.loc[s].max() > 0]
    best, worst = pcs.idxmax(axis=1), pcs.idxmin(axis=1)

    def listed(scenarios) -> str:
        return ", ".join(str(s) for s in scenarios) or "none"

    return [
        f"- LSE (lambda 1) has the highest PCS in {(best[others] == 'LSE_lambda1').sum()} of the "
        f"{len(others)} scenarios other than {listed(CRM_FAVOURED)} (paper: all of them); "
        f"elsewhere the best is {', '.join(f'{s}: {best[s]}' for s in others if best[s] != 'LSE_lambda1') or 'none'}.",
        f"- CRM has the highest PCS in {(best[favoured] == 'CRM').sum()} of scenarios "
        f"{listed(CRM_FAVOURED)} (paper: all four).",
        f"- LSE lambda 1 has a higher PCS than lambda 0 in "
        f"{(pcs['LSE_lambda1'] > pcs['LSE_lambda0']).sum()} of {len(pcs)} scenarios (paper: "
        "lambda 0 slightly lower).",
        f"- BOIN has the lowest PCS in {(worst == 'BOIN').sum()} of {len(pcs)} scenarios "
        f"(paper: all but 15); CRM the lowest in {listed(worst.index[worst == 'CRM'])} "
        "(paper: 15).",
        f"- BO has a higher PCS than both CRM and BOIN in "
        f"{((pcs['BO'] > pcs['CRM']) & (pcs['BO'] > pcs['BOIN'])).sum()} of {len(pcs)} scenarios "
        f"and a lower one than LSE lambda 1 in {(pcs['BO'] < pcs['LSE_lambda1']).sum()} (paper: "
        "better than CRM and BOIN in many, slightly below LSE lambda 1).",
        f"- Of the {len(overdosable)} scenarios whose MTD is below the highest dose: BOIN has the "
        f"lowest POS in {(pos.loc[overdosable].idxmin(axis=1) == 'BOIN').sum()} (paper: most), "
        f"CRM the highest in {(pos.loc[overdosable].idxmax(axis=1) == 'CRM').sum()} (paper: all "
        f"but 12), and lambda 1 has a lower POS than lambda 0 in "
        f"{(pos.loc[overdosable, 'LSE_lambda1'] < pos.loc[overdosable, 'LSE_lambda0']).sum()} and "
        f"a lower POA in "
        f"{(poa.loc[overdosable, 'LSE_lambda1'] < poa.loc[overdosable, 'LSE_lambda0']).sum()} "
        "(paper: generally lower).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per cell")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--scenarios", type=str, default="1-20", help="e.g. '1-20' or '1,5,13'")
    parser.add_argument("--designs", type=str, default=",".join(DESIGNS))
    parser.add_argument("--lambda-sensitivity", action="store_true")
    parser.add_argument("--sensitivity-scenarios", type=str, default="1-20")
    parser.add_argument("--draws", type=int, default=MCMC["draws"], help="GP draws per fit")
    parser.add_argument("--tune", type=int, default=MCMC["tune"], help="GP burn-in per fit")
    parser.add_argument(
        "--output", type=str, default="lse_comparison", help="file stem in docs/results"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the pages from the saved CSV and JSON files (no simulation)",
    )
    args = parser.parse_args()
    if args.report_only:
        write_report(args.output)
        return
    scenarios = parse_scenarios(args.scenarios)
    MCMC.update(draws=args.draws, tune=args.tune)
    designs = [name for name in args.designs.split(",") if name]
    RUNS.mkdir(parents=True, exist_ok=True)

    load_before = os.getloadavg()
    rows, seconds, started = [], {}, time.perf_counter()
    for design_name in designs:
        for scenario in scenarios:
            row, elapsed = run_cell(design_name, scenario, args.trials, args.jobs)
            rows.append(row)
            seconds[design_name] = seconds.get(design_name, 0.0) + elapsed
            print(
                f"{design_name:12s} scenario {scenario:2d}: PCS {row['PCS']:5.1f} "
                f"POA {row['POA']:5.1f}  ({elapsed:.1f} s)",
                flush=True,
            )
    wall = time.perf_counter() - started
    table = pd.DataFrame(rows)
    columns = ["scenario", "design"] + [c for m in (*PLANNED, *TREATED) for c in (m, f"{m}_se")]
    command = (
        f"python benchmarks/lse_comparison.py --trials {args.trials} --jobs {args.jobs} "
        f"--scenarios {args.scenarios} --draws {args.draws} --tune {args.tune}"
    )
    table[columns].to_csv(RESULTS / f"{args.output}.csv", index=False, float_format="%.6g")
    n_trials = args.trials * len(scenarios)
    record = {
        "wall_seconds": round(wall, 1),
        "cores": args.jobs,
        "trials_per_cell": args.trials,
        "scenarios": scenarios,
        "designs": designs,
        "seconds_per_trial": {name: s * args.jobs / n_trials for name, s in seconds.items()},
        "command": command,
        "resumed_cells": list(RESUMED),
        # 1, 5 and 15-minute load averages: other jobs on the machine slow the run down.
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    (RESULTS / f"{args.output}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    if args.lambda_sensitivity:
        sensitivity(
            parse_scenarios(args.sensitivity_scenarios),
            args.trials,
            args.jobs,
            command=f"python benchmarks/lse_comparison.py --trials {args.trials} --jobs "
            f"{args.jobs} --lambda-sensitivity --sensitivity-scenarios {args.sensitivity_scenarios}"
            f" --draws {args.draws} --tune {args.tune}",
        )
    write_report(args.output)


def markdown(table: pd.DataFrame, record: dict) -> str:
    """Return the page's body: the run, the paper's claims, one table per metric of the CSV."""
    lines = [
        f"Made by `{record['command']}`: {record['trials_per_cell']} trials per cell, "
        f"{len(record['scenarios'])} scenarios x {len(record['designs'])} designs in "
        f"{record['wall_seconds'] / 60:.1f} min on {record['cores']} worker processes "
        f"({record['machine']}, {record['cpu_count']} CPUs"
        + (
            f"; load averages {record['load_average_before'][0]:.1f} before and "
            f"{record['load_average_after'][0]:.1f} after"
            if "load_average_before" in record
            else ""
        )
        + ")"
        + (
            f"; resumed cells: {', '.join(record['resumed_cells'])}"
            if record["resumed_cells"]
            else ""
        )
        + ". Means in percent, Monte Carlo SE in brackets. PCA, POA and pDLT are over the "
        "planned 36 patients (the paper's convention); the `_treated` tables are over the "
        "patients treated; `no_selection` is the percentage of trials with no MTD.",
        "",
        "The qualitative claims of Seno et al. (2025), counted on this table:",
        "",
        *claims(table),
        "",
        "The lambda sensitivity of Section 5.2.3 (`--lambda-sensitivity`): "
        "[`lse_lambda_sensitivity.md`](lse_lambda_sensitivity.md).",
    ]
    missing = [metric for metric in TREATED if metric not in table]
    if missing:
        lines += [
            "",
            "This run's CSV holds no "
            + ", ".join(f"`{m}`" for m in missing)
            + " (the script saved only the metrics over the planned patients then); a new run "
            "saves them.",
        ]
    for metric in (*PLANNED, *TREATED):
        if metric in table:
            lines += ["", f"## {metric} (%)", "", *_wide_table(table, metric)]
    return "\n".join(lines)


def write_report(output: str) -> None:
    """Write the page ``<output>.md`` (and the sensitivity page) from the saved CSV and JSON."""
    table = pd.read_csv(RESULTS / f"{output}.csv")
    record = json.loads((RESULTS / f"{output}.json").read_text())
    write_page(
        output,
        "Seno et al. (2025): the comparison study (LSE, BO, CRM, BOIN)",
        markdown(table, record),
        make="lse-study",
        runs=[MAKE_RUN],
        rebuild="lse_comparison.py --report-only",
        data=[f"{output}.csv", f"{output}.json"],
    )
    if (RESULTS / "lse_lambda_sensitivity.csv").exists():
        write_sensitivity_report()


def run_record(wall: float, jobs: int, trials: int, scenarios: list[int], command: str) -> dict:
    """Return the JSON record of a run: wall time, cores, size, command, load, machine."""
    return {
        "wall_seconds": round(wall, 1),
        "cores": jobs,
        "trials_per_cell": trials,
        "scenarios": scenarios,
        "command": command,
        "mcmc": dict(MCMC),
        # 1, 5 and 15-minute load averages: other jobs on the machine slow the run down.
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def run_text(record: dict) -> str:
    """One sentence on how a run was made (command, size, wall time, load)."""
    load = record.get("load_average_before")
    return (
        f"Made by `{record['command']}`: {record['trials_per_cell']} trials per cell, "
        f"{record['wall_seconds']:.0f} s wall time on {record['cores']} worker process(es) "
        f"({record['machine']}, {record['cpu_count']} CPUs"
        + (f"; load average {load[0]:.1f} before" if load else "")
        + (
            f", {record['load_average_after'][0]:.1f} after"
            if "load_average_after" in record
            else ""
        )
        + ")."
    )


def sensitivity(
    scenarios: list[int],
    trials: int,
    jobs: int,
    *,
    results=RESULTS,
    command: str = "",
) -> None:
    """Section 5.2.3: the LSE design for lambda in 0, 0.25, ..., 1.25."""
    rows = []
    load_before = os.getloadavg()
    started = time.perf_counter()
    for weight in SENSITIVITY_LAMBDAS:
        for scenario in scenarios:
            row, _ = run_cell(f"LSE_lambda{weight:g}", scenario, trials, jobs)
            rows.append(row | {"lambda": weight})
    wall = time.perf_counter() - started
    table = pd.DataFrame(rows)
    table.to_csv(results / "lse_lambda_sensitivity.csv", index=False, float_format="%.6g")
    record = run_record(wall, jobs, trials, scenarios, command) | {
        "lambdas": list(SENSITIVITY_LAMBDAS),
        "load_average_before": [round(v, 2) for v in load_before],
    }
    (results / "lse_lambda_sensitivity.json").write_text(json.dumps(record, indent=2) + "\n")
    write_sensitivity_report(results)


def sensitivity_markdown(table: pd.DataFrame, record: dict | None) -> str:
    """Return the sensitivity page's body: one table per metric, lambdas as columns."""
    if record and "command" in record:
        run = run_text(record) + " "
    elif record:
        run = (
            f"{record['trials_per_cell']} trials per cell, {record['wall_seconds']:.0f} s on "
            f"{record['cores']} worker(s). "
        )
    else:
        run = ""
    lines = [f"{run}Percent (Monte Carlo SE)."]
    for metric in PLANNED:
        wide = table.assign(cell=_cell_text(table, metric)).pivot(
            index="scenario", columns="lambda", values="cell"
        )
        lines += ["", f"## {metric}", ""]
        lines.append("| scenario | " + " | ".join(f"lambda {c:g}" for c in wide.columns) + " |")
        lines.append("|---" * (len(wide.columns) + 1) + "|")
        lines += [f"| {s} | " + " | ".join(v) + " |" for s, v in wide.iterrows()]
    return "\n".join(lines)


def write_sensitivity_report(results=RESULTS) -> None:
    """Write the page lse_lambda_sensitivity.md from the saved CSV (and JSON, when saved)."""
    table = pd.read_csv(results / "lse_lambda_sensitivity.csv")
    path = results / "lse_lambda_sensitivity.json"
    record = json.loads(path.read_text()) if path.exists() else None
    write_page(
        "lse_lambda_sensitivity",
        "Seno et al. (2025): sensitivity of the LSE design to lambda (Section 5.2.3)",
        sensitivity_markdown(table, record),
        make="lse-appendix",
        runs=[APPENDIX_RUN],
        rebuild="lse_comparison.py --report-only",
        data=["lse_lambda_sensitivity.csv", *(["lse_lambda_sensitivity.json"] if record else [])],
        results=results,
    )


def parse_scenarios(text: str) -> list[int]:
    """'1-20' or '1,5,13' -> scenario numbers, each checked against Table 1."""
    numbers: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = (int(v) for v in part.split("-"))
            numbers += list(range(low, high + 1))
        elif part:
            numbers.append(int(part))
    unknown = [n for n in numbers if n not in SENO2025_SCENARIOS]
    if unknown:
        raise SystemExit(f"--scenarios: unknown scenario(s) {unknown}; Table 1 has 1..20")
    return numbers


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
