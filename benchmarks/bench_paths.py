"""Benchmark the dose transition pathways of the binary designs (the 2-cohort goal: <= 50 ms).

Run ``make bench-paths`` or ``python benchmarks/bench_paths.py`` (options: ``--runs R``,
``--report-only``). For each of the example designs of CRM, BLRM, EWOC, BOIN and 3+3
(``examples/<family>.toml``) on the example trial ``examples/binary_cohorts.csv`` (15 patients),
it times ``dose_paths(design, data, 2)`` on one core (BLAS pinned to one thread):

- cold: a design built afresh from its configuration (empty posterior caches), ``--runs`` times;
- warm: the same design again (the model's own posterior cache filled by the cold run).

The machine may be shared: every run is reported with the load averages (``os.getloadavg``)
before it. Writes ``docs/results/dose_paths_speed.json`` and the page ``dose_paths_speed.md``;
``--report-only`` rewrites the page from the JSON.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd
import report

from dosezoo.config import design_from_config, read_config
from dosezoo.data import TrialData
from dosezoo.designs.pathways import dose_paths

EXAMPLES = report.ROOT / "examples"
FAMILIES = {"CRM": "crm", "BLRM": "blrm", "EWOC": "ewoc", "BOIN": "boin", "3+3": "three_plus_three"}
JSON = report.RESULTS / "dose_paths_speed.json"
#: The goal of the 2-cohort pathways of a CRM or BLRM design, in ms.
GOAL_MS = 50.0


def measure(runs: int) -> dict:
    data = TrialData.from_csv(EXAMPLES / "binary_cohorts.csv")
    rows = []
    for label, stem in FAMILIES.items():
        config = read_config(EXAMPLES / f"{stem}.toml")
        for run in range(runs):
            load = os.getloadavg()
            design = design_from_config(config, stem)
            started = time.perf_counter()
            paths = dose_paths(design, data, 2)
            cold = time.perf_counter() - started
            started = time.perf_counter()
            dose_paths(design, data, 2)
            warm = time.perf_counter() - started
            rows.append(
                {
                    "design": label,
                    "run": run,
                    "nodes": len(paths.table),
                    "posteriors": paths.posteriors,
                    "cold_ms": 1e3 * cold,
                    "warm_ms": 1e3 * warm,
                    "load_1min": load[0],
                }
            )
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "runs": runs,
        "rows": rows,
    }


def page(results: dict) -> str:
    frame = pd.DataFrame(results["rows"])
    summary = []
    for label, group in frame.groupby("design", sort=False):
        summary.append(
            {
                "design": label,
                "nodes": int(group["nodes"].iloc[0]),
                "posteriors": int(group["posteriors"].iloc[0]),
                "cold ms (median)": f"{statistics.median(group['cold_ms']):.1f}",
                "cold ms (min)": f"{group['cold_ms'].min():.1f}",
                "warm ms (median)": f"{statistics.median(group['warm_ms']):.1f}",
                "load (1 min) range": f"{group['load_1min'].min():.2f}-{group['load_1min'].max():.2f}",
            }
        )
    return "\n".join(
        [
            f"Two cohorts of each example design's cohort size from the example trial "
            f"(`examples/binary_cohorts.csv`, 15 patients), {results['runs']} runs per design on "
            f"one core ({results['machine']}, {results['cpus']} CPUs, Python {results['python']}). "
            f"Goal for CRM and BLRM: <= {GOAL_MS:g} ms cold. 'posteriors' counts the distinct "
            "sufficient statistics (the memo's size); BOIN and 3+3 decide from counts. The load "
            "averages were read before each run: on a loaded machine the times are upper bounds.",
            "",
            report.md_table(pd.DataFrame(summary)),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads(JSON.read_text())
    else:
        results = measure(args.runs)
        JSON.write_text(json.dumps(results, indent=1))
    path = report.write_page(
        "dose_paths_speed",
        "Speed of the dose transition pathways",
        page(results),
        make="bench-paths",
        runs=["bench_paths.py"],
        rebuild="bench_paths.py --report-only",
        data=[JSON.name],
    )
    print(path.read_text())


if __name__ == "__main__":
    main()
