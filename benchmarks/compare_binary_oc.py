"""Operating characteristics of CRM, BLRM and EWOC before and after the exact-tail posteriors.

The binary models' grid posteriors now integrate tail probabilities exactly along the grid's
rows (``DosePosterior.tails``) instead of counting cells by a linear share, and EWOC's grid has
128 cells per axis (96 before): the rules' inputs (CRM's ``P(p_1 > target)``, BLRM's interval
probabilities, EWOC's MTD quantile) moved by up to about 1e-2, so the operating
characteristics may move too, within Monte Carlo error.

Run ``make compare-binary-oc`` or ``python benchmarks/compare_binary_oc.py --trials N
[--report-only]``. It simulates ``--trials`` trials (default 2000) of the three designs of
``bench_binary.py`` on its three scenarios with its seed and compares every metric with
``binary_oc_grid.csv``: the ``binary_oc.csv`` that ``bench_binary.py`` wrote with the earlier
grid (2000 trials, same seed: trial ``i`` has the same random numbers in both runs), kept as it
was at commit 58f7cba, since ``binary_oc.csv`` itself was rerun with the exact tails (compared
with that rerun, every difference is 0). For each metric it reports both
means, the difference and ``z = difference / sqrt(se_old^2 + se_new^2)`` (``se_new`` at least
``se_old * sqrt(n_old / n_new)``, for a short run that saw no rare event); the two runs share
their first ``--trials`` trials, so this ``z`` is conservative (the errors are positively
correlated). Writes ``binary_oc_comparison.csv`` and the page ``binary_oc_comparison.md``.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import bench_binary
import numpy as np
import pandas as pd
import report

from dosezoo.simulate import simulate

RESULTS = report.RESULTS
OLD = RESULTS / "binary_oc_grid.csv"
CSV = RESULTS / "binary_oc_comparison.csv"
META = RESULTS / "binary_oc_comparison.json"
DESIGNS = ("CRM", "BLRM", "EWOC")
METRICS = (
    "correct_selection",
    "overdose_selection",
    "no_selection",
    "n_at_mtd_fraction",
    "n_overdosed_fraction",
    "dlt_rate",
    "n_treated",
)


def measure(n_trials: int) -> pd.DataFrame:
    designs = bench_binary.designs()
    rows = []
    for scenario_name, scenario in bench_binary.scenarios().items():
        for name in DESIGNS:
            results = simulate(
                designs[name],
                scenario,
                n_trials,
                random_seed=bench_binary.RANDOM_SEED,
                progress=False,
            )
            rows += bench_binary.oc_rows(results, name, scenario_name)
            print(scenario_name, name, flush=True)
    return pd.DataFrame(rows)


def compare(new: pd.DataFrame) -> pd.DataFrame:
    old = pd.read_csv(OLD)
    keys = ["scenario", "design", "metric"]
    merged = old.merge(new, on=keys, suffixes=("_old", "_new"))
    merged = merged[merged["metric"].isin(METRICS)].copy()
    merged["difference"] = merged["mean_new"] - merged["mean_old"]
    # A short new run may see no event of a rare outcome (its SE 0): its SE is taken at least
    # the old run's scaled to the new run's size.
    scaled = merged["mcse_old"] * np.sqrt(merged["n_old"] / merged["n_new"])
    se = np.sqrt(merged["mcse_old"] ** 2 + np.maximum(merged["mcse_new"], scaled) ** 2)
    merged["z"] = np.where(se > 0, merged["difference"] / se.where(se > 0, 1.0), 0.0)
    return merged[[*keys, "mean_old", "n_old", "mean_new", "n_new", "difference", "z"]]


def markdown(frame: pd.DataFrame, meta: dict) -> str:
    shown = frame.copy()
    for column in ("mean_old", "mean_new", "difference"):
        shown[column] = shown[column].map(lambda v: f"{v:.4f}")
    shown["z"] = shown["z"].map(lambda v: f"{v:+.2f}")
    largest = float(frame["z"].abs().max())
    beyond = int((frame["z"].abs() > 3).sum())
    return "\n".join(
        [
            f"Trials of the new run: {meta['n_trials']} per design and scenario; the old run "
            f"(`binary_oc_grid.csv`: `binary_oc.csv` as the earlier grid wrote it, at commit "
            f"58f7cba) has {int(frame['n_old'].max())}. Same seed "
            f"({bench_binary.RANDOM_SEED}): the new run's trials are the old run's first ones.",
            "",
            f"Largest |z| over {len(frame)} metrics: {largest:.2f}; metrics with |z| > 3: "
            f"{beyond}. Command: `{report.PYTHON} benchmarks/{meta['command']}`.",
            "",
            report.md_table(shown),
        ]
    )


def write_report(frame: pd.DataFrame, meta: dict) -> None:
    report.write_page(
        "binary_oc_comparison",
        "Operating characteristics of CRM, BLRM and EWOC: exact tails against the earlier grid",
        markdown(frame, meta),
        make="compare-binary-oc",
        runs=["compare_binary_oc.py"],
        rebuild="compare_binary_oc.py --report-only",
        data=["binary_oc_comparison.csv", "binary_oc_comparison.json", "binary_oc_grid.csv"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(pd.read_csv(CSV), json.loads(META.read_text()))
        return
    meta = {
        "n_trials": args.trials,
        "command": " ".join(
            ["compare_binary_oc.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "load_average": list(os.getloadavg()),
    }
    frame = compare(measure(args.trials))
    frame.to_csv(CSV, index=False)
    META.write_text(json.dumps(meta, indent=2) + "\n")
    write_report(frame, meta)


if __name__ == "__main__":
    main()
