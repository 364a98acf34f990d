r"""Large-sample behaviour of the 3PND design (Lee 2023, Theorem 2): NPD/n, NPO/n, BTM, RMSE.

Lee (2023)'s Theorem 2 (posterior consistency of the MTD, by Doob's theorem) and the law of
large numbers argument beside it ("Performance metrics") say that, as the number ``n`` of
patients grows,

- ``NPD(n) / n`` (the share of patients with a DLT, ``y >= eta``) tends to at most
  ``1 - gamma``;
- ``NPO(n) / n`` (the share dosed above the true MTD) is kept small by the feasibility bound
  ``alpha`` (a Bayesian control, no limit is proved);
- ``BTM(n) = x_n - xi_0`` and ``RMSE(n) = |x_n - xi_0| / xi_0`` tend to 0 (consistency of the
  dose sequence; ``x_n`` is the dose of the n-th patient).

This script runs Lee's simulation setting (``dosezoo.studies``: eta = 3, (x_min, x_max) =
(5, 80), delta = 0.1, x_1 = 6, xi_0 = 50, sigma_0 = 0.1) with the accelerated CSAD design
(gamma = 0.9, alpha = 0.01, cohorts of 3) for 1000 patients, under the three true curvatures
nu_0 of the paper, and scores every trial at n in ``SIZES`` from its first n patients. The
prefix of a 1000-patient trial *is* an n-patient trial of the same design (the rule never
reads the sample size, the engine truncates the last cohort to the sample size, and trial i
draws from child i of the seed whatever the number of trials); the script checks that
on a few trials against ``simulate`` run with ``sample_size = n``. The metrics at n are those
``simulate`` records (``ContinuousToxicityScenario.trial_metrics`` on the first n patients
and the design's recommendation from them), summarised by ``operating_characteristics``;
it adds the 5 %-95 % width of the exact (quadrature) posterior of the MTD at n, which
Theorem 2 says shrinks to 0.

Run ``make three-pnd-large-sample`` (or ``python benchmarks/three_pnd_large_sample.py
--trials 8 --jobs 2``). Writes ``docs/results/three_pnd_large_sample.json`` (per nu_0 and
n: mean, median and their Monte Carlo SEs of every metric; wall time and load averages) and
the page ``three_pnd_large_sample.md`` with the figure ``three_pnd_large_sample.png``;
``--report-only`` rewrites the page and the figure from the JSON. Per-nu_0 runs are netCDF
files in ``benchmarks/runs/three_pnd_large_sample/`` (not committed).
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
import xarray as xr
from report import RESULTS, md_table, write_page

from dosezoo.data import TrialData
from dosezoo.designs import MTDQuantileRule, mtd_quantile_design
from dosezoo.models import ThreePND
from dosezoo.scenarios import ContinuousToxicityScenario
from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.studies import (
    LEE2023_NU0,
    LEE2023_SCHEDULES,
    LEE2023_SHARED,
    LEE2023_SIGMA0,
    LEE2023_START_DOSE,
    LEE2023_STRATEGIES,
    LEE2023_TRUE_MTD,
)

RUNS = report.RUNS / "three_pnd_large_sample"
NAME = "three_pnd_large_sample"
SEED = 2023
#: Numbers of patients at which every trial is scored.
SIZES = (30, 100, 300, 1000)
#: The design: Lee (2023)'s accelerated CSAD.
SCHEDULE, STRATEGY = "CSAD", "acc"
#: Metrics summarised per n: the paper's four (NPD and NPO as shares of n), the recommended
#: dose's bias, and the width of the posterior's 5 %-95 % interval of the MTD.
METRICS = ("NPD_per_n", "NPO_per_n", "BTM", "RMSE", "BTM_recommended", "mtd_width_90")
#: Trials re-run with ``sample_size = n`` to check that a prefix is an n-patient trial.
PREFIX_CHECK_TRIALS = 2


def model_and_rule() -> tuple[ThreePND, MTDQuantileRule]:
    """Return the accelerated design's model and rule in Lee (2023)'s simulation setting."""
    gamma, alpha = LEE2023_STRATEGIES[STRATEGY]
    return ThreePND(gamma=gamma, **LEE2023_SHARED), MTDQuantileRule(alpha=alpha)


def design(sample_size: int):
    """Return Lee (2023)'s accelerated CSAD design with ``sample_size`` patients."""
    model, rule = model_and_rule()
    return mtd_quantile_design(
        model,
        rule,
        start_dose=LEE2023_START_DOSE,
        cohort_size=LEE2023_SCHEDULES[SCHEDULE],
        sample_size=sample_size,
    )


def scenario(nu0: float) -> ContinuousToxicityScenario:
    """Return the truth of Lee (2023)'s simulation setting with curvature ``nu0``."""
    model, _ = model_and_rule()
    return ContinuousToxicityScenario(
        true_mtd=LEE2023_TRUE_MTD,
        nu=nu0,
        sigma=LEE2023_SIGMA0,
        eta=model.eta,
        gamma=model.gamma,
        x_min=model.x_min,
        x_max=model.x_max,
    )


def trial_data(results: xr.Dataset, trial: int) -> TrialData:
    """Return the patients of one simulated trial as TrialData."""
    one = results.isel(trial=trial)
    n = int(one["n_patients"])
    frame = pd.DataFrame(
        {
            "dose": one["dose"].values[:n],
            "cohort": one["cohort"].values[:n],
            "y": one["y"].values[:n],
        }
    )
    return TrialData.from_dataframe(frame)


def score_prefixes(results: xr.Dataset, truth: ContinuousToxicityScenario) -> xr.Dataset:
    """Score every trial at each n of ``SIZES`` as ``simulate`` would score an n-patient trial.

    Returns a Dataset with dims (size, trial), one variable per metric, the ``stop_reason``
    of the whole trial and ``attrs["metrics"]``, the layout ``operating_characteristics``
    reads (per size).
    """
    model, _ = model_and_rule()
    values = {name: np.full((len(SIZES), results.sizes["trial"]), np.nan) for name in METRICS}
    for trial in range(results.sizes["trial"]):
        data = trial_data(results, trial)
        for k, n in enumerate(SIZES):
            head = data.head(n)
            if head.n_patients < n:  # stopped early: no n-patient score
                continue
            metrics = truth.trial_metrics(head, design(n).recommend(head))
            values["NPD_per_n"][k, trial] = metrics["NPD"] / n
            values["NPO_per_n"][k, trial] = metrics["NPO"] / n
            for name in ("BTM", "RMSE", "BTM_recommended"):
                values[name][k, trial] = metrics[name]
            posterior = model.mtd_posterior(head)
            values["mtd_width_90"][k, trial] = posterior.quantile(0.95) - posterior.quantile(0.05)
    return xr.Dataset(
        {name: (("size", "trial"), array) for name, array in values.items()}
        | {"stop_reason": ("trial", results["stop_reason"].values)},
        coords={"size": list(SIZES), "trial": results["trial"].values},
        attrs={"metrics": ",".join(METRICS)},
    )


def check_prefixes(results: xr.Dataset, truth: ContinuousToxicityScenario, jobs: int) -> int:
    """Re-run the first trials with ``sample_size = n`` and require the prefix's doses."""
    checked = 0
    for n in SIZES[:-1]:
        short = simulate(
            design(n), truth, PREFIX_CHECK_TRIALS, random_seed=SEED, n_jobs=1, progress=False
        )
        for trial in range(PREFIX_CHECK_TRIALS):
            prefix = results["dose"].values[trial, :n]
            if not np.array_equal(short["dose"].values[trial, :n], prefix):
                raise AssertionError(
                    f"nu0 = {truth.nu}: trial {trial}'s first {n} doses differ from an "
                    f"{n}-patient trial's; the prefix scores would not be n-patient trials"
                )
            checked += 1
    return checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8, help="trials per nu0")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--resume", action="store_true", help="keep finished runs")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the page and figure from the saved JSON (no simulation)",
    )
    args = parser.parse_args()
    if args.report_only:
        write_report()
        return
    if not args.resume:
        shutil.rmtree(RUNS, ignore_errors=True)
    RUNS.mkdir(parents=True, exist_ok=True)

    load_before = os.getloadavg()
    started, cpu_started = time.perf_counter(), time.process_time()
    rows, checked = [], 0
    for nu0 in LEE2023_NU0:
        print(f"nu0 = {nu0:g}", flush=True)
        truth = scenario(nu0)
        results = simulate(
            design(max(SIZES)),
            truth,
            args.trials,
            random_seed=SEED,
            n_jobs=args.jobs,
            path=RUNS / f"nu{nu0:g}.nc",
            progress=False,
        )
        checked += check_prefixes(results, truth, args.jobs)
        scored = score_prefixes(results, truth)
        for n in SIZES:
            summary = operating_characteristics(scored.sel(size=n), random_seed=SEED)
            row: dict = {"nu0": nu0, "n": n}
            for metric in METRICS:
                values = summary.sel(metric=metric)
                for column in ("mean", "mcse_mean", "median", "mcse_median", "n"):
                    row[f"{metric}_{column}"] = float(values[column])
            rows.append(row)
    record = {
        "command": f"python benchmarks/three_pnd_large_sample.py --trials {args.trials} "
        f"--jobs {args.jobs}",
        "design": f"{SCHEDULE} ({STRATEGY})",
        "gamma": model_and_rule()[0].gamma,
        "alpha": model_and_rule()[1].alpha,
        "true_mtd": LEE2023_TRUE_MTD,
        "sizes": list(SIZES),
        "trials_per_nu0": args.trials,
        "prefix_checks": checked,
        "wall_seconds": round(time.perf_counter() - started, 1),
        "main_process_cpu_seconds": round(time.process_time() - cpu_started, 1),
        "jobs": args.jobs,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "nice": os.nice(0),
        "rows": rows,
    }
    (RESULTS / f"{NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    write_report()


def _cell(table: pd.DataFrame, metric: str, digits: str = ".3g") -> list[str]:
    return [
        f"{m:{digits}} ({s:.2g})"
        for m, s in zip(table[f"{metric}_mean"], table[f"{metric}_mcse_mean"], strict=True)
    ]


def markdown(record: dict) -> str:
    """Return the page's body: the means per nu0 and n, the limits checked, the run."""
    table = pd.DataFrame(record["rows"])
    shown = table[["nu0", "n"]].copy()
    labels = {
        "NPD_per_n": "NPD/n",
        "NPO_per_n": "NPO/n",
        "BTM": "BTM",
        "RMSE": "RMSE",
        "BTM_recommended": "BTM (recommended)",
        "mtd_width_90": "90% width of MTD posterior",
    }
    for metric, label in labels.items():
        shown[label] = _cell(table, metric)
    limit = 1 - record["gamma"]
    largest = table[table["n"] == max(record["sizes"])]
    smallest = table[table["n"] == min(record["sizes"])]
    lines = []
    for nu0 in sorted(table["nu0"].unique()):
        first = smallest[smallest["nu0"] == nu0].iloc[0]
        last = largest[largest["nu0"] == nu0].iloc[0]
        lines.append(
            f"- nu0 = {nu0:g}: mean RMSE {first['RMSE_mean']:.3g} at n = {int(first['n'])}, "
            f"{last['RMSE_mean']:.3g} at n = {int(last['n'])}; mean BTM "
            f"{first['BTM_mean']:.3g} -> {last['BTM_mean']:.3g}; posterior 90% width "
            f"{first['mtd_width_90_mean']:.3g} -> {last['mtd_width_90_mean']:.3g}; NPD/n at "
            f"n = {int(last['n'])}: {last['NPD_per_n_mean']:.3g} (MC SE "
            f"{last['NPD_per_n_mcse_mean']:.2g}; the limit is at most 1 - gamma = {limit:.2g}); "
            f"NPO/n {last['NPO_per_n_mean']:.3g}."
        )
    return (
        f"Lee (2023)'s {record['design']} design (gamma = {record['gamma']:g}, alpha = "
        f"{record['alpha']:g}) in the paper's simulation setting (true MTD "
        f"{record['true_mtd']:g}), {record['trials_per_nu0']} trials of "
        f"{max(record['sizes'])} patients per true curvature nu0, each scored at n = "
        f"{', '.join(map(str, record['sizes']))} from its first n patients (a prefix is an "
        f"n-patient trial of the design: checked on {record['prefix_checks']} (trial, n) "
        "pairs against runs with that sample size).\n\n"
        "Means over trials (Monte Carlo SE of the mean). NPD/n: share of patients with a DLT "
        "(y >= eta); NPO/n: share dosed above the true MTD; BTM = x_n - xi0 and RMSE = "
        "|x_n - xi0| / xi0 for the n-th patient's dose x_n (Lee's definitions); BTM "
        "(recommended): the design's recommendation after n patients; the last column is the "
        "width of the exact posterior's 5%-95% interval of the MTD after n patients.\n\n"
        + md_table(shown)
        + "\n\n![NPD/n, NPO/n, BTM, RMSE and the posterior width against n]"
        f"({NAME}.png)\n\n"
        "What Theorem 2 and the law-of-large-numbers argument predict, read on the table:\n\n"
        + "\n".join(lines)
        + "\n\nIn Lee (2023) NPD counts the patients with a DLT and NPO those dosed above the "
        "true MTD; both are shown as shares of n. The table has few trials per cell; the "
        "Monte Carlo SEs in brackets say how precise each mean is.\n\n"
        f"Run: `{record['command']}` at nice {record['nice']}, wall time "
        f"{record['wall_seconds'] / 60:.1f} min on {record['jobs']} worker processes "
        f"({record['machine']}); load average (1, 5, 15 min) "
        f"{', '.join(f'{v:g}' for v in record['load_average_before'])} before and "
        f"{', '.join(f'{v:g}' for v in record['load_average_after'])} after (a shared "
        "machine)."
    )


def figure(record: dict) -> None:
    """Write the figure: every metric's mean (+- 2 MC SE) against n, one line per nu0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(record["rows"])
    panels = (
        ("NPD_per_n", "NPD(n) / n"),
        ("NPO_per_n", "NPO(n) / n"),
        ("BTM", "BTM(n) = x_n - xi0"),
        ("RMSE", "RMSE(n)"),
        ("mtd_width_90", "90% width of the MTD posterior"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for nu0, rows in table.groupby("nu0"):
            ax.errorbar(
                rows["n"],
                rows[f"{metric}_mean"],
                yerr=2 * rows[f"{metric}_mcse_mean"],
                marker="o",
                capsize=3,
                label=f"nu0 = {nu0:g}",
            )
        if metric == "NPD_per_n":
            ax.axhline(1 - record["gamma"], color="grey", linestyle="--", label="1 - gamma")
        if metric in ("BTM",):
            ax.axhline(0, color="grey", linestyle=":")
        if metric in ("RMSE", "mtd_width_90"):
            ax.set_yscale("log")
        ax.set(xscale="log", xlabel="n (patients)", title=title)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"3PND {record['design']}, {record['trials_per_nu0']} trials per nu0 (mean +- 2 MC SE)"
    )
    fig.tight_layout()
    fig.savefig(RESULTS / f"{NAME}.png", dpi=90)
    plt.close(fig)


def write_report() -> None:
    """Write the page and the figure from the saved JSON."""
    record = json.loads((RESULTS / f"{NAME}.json").read_text())
    figure(record)
    text = markdown(record)
    write_page(
        NAME,
        "3PND in large samples (Lee 2023, Theorem 2): NPD/n, NPO/n, BTM, RMSE up to n = 1000",
        text,
        make="three-pnd-large-sample",
        runs=[record["command"].removeprefix("python benchmarks/")],
        rebuild=f"{NAME}.py --report-only",
        data=[f"{NAME}.json", f"{NAME}.png"],
    )
    print(text)


if __name__ == "__main__":
    main()
