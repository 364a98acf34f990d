"""Benchmark BOIN12's simulation speed: 2000 trials of one scenario on one core (target <= 1 s).

Run ``make bench-boin12`` or ``python benchmarks/bench_boin12.py`` (options ``--trials N``,
``--runs R``, ``--report-only``). BOIN12 decides from the patients, DLTs and responses per dose,
so ``simulate`` runs its trials in lockstep (:mod:`dosezoo.simulate.lockstep`). The script pins
BLAS to one thread and ``n_jobs=1``, warms up once, then times ``--runs`` runs of ``--trials``
trials of the ``plateau`` scenario (:func:`dosezoo.studies.optimus_scenarios`), each with its
wall and CPU time and the load averages (``os.getloadavg``) before it (the machine may be
shared: the fastest run is the figure), and checks that every run gives the same Dataset.

Writes ``docs/results/boin12_speed.json`` and the page ``boin12_speed.md``.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from report import RESULTS, md_table, write_page  # noqa: E402

from dosezoo.designs import boin12_design  # noqa: E402
from dosezoo.simulate import simulate  # noqa: E402
from dosezoo.studies import OPTIMUS_LEVELS, optimus_scenarios  # noqa: E402

SEED = 2026
TARGET_SECONDS = 1.0


def measure(trials: int, runs: int) -> dict:
    """Time ``runs`` simulations of ``trials`` BOIN12 trials; return the JSON record."""
    scenario = optimus_scenarios()["plateau"]
    design = boin12_design(0.33, OPTIMUS_LEVELS, efficacy_limit=0.2)
    simulate(design, scenario, 50, random_seed=SEED, progress=False)  # warm-up (imports)
    reference, timings = None, []
    for _ in range(runs):
        load = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        result = simulate(design, scenario, trials, random_seed=SEED, n_jobs=1, progress=False)
        timings.append(
            {
                "wall_seconds": time.perf_counter() - wall,
                "cpu_seconds": time.process_time() - cpu,
                "load_average": list(load),
            }
        )
        if reference is None:
            reference = result
        else:
            xr.testing.assert_identical(result, reference)
    assert reference is not None
    return {
        "trials": trials,
        "scenario": scenario.describe(),
        "design": design.describe(),
        "runs": timings,
        "fastest_wall_seconds": min(t["wall_seconds"] for t in timings),
        "target_seconds": TARGET_SECONDS,
        "correct_selection": float(reference["correct_selection"].mean()),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def page(record: dict) -> str:
    """Return the Markdown body of the page: the figure, every run, the verdict."""
    rows = [
        {
            "run": i + 1,
            "wall (s)": f"{t['wall_seconds']:.3f}",
            "CPU (s)": f"{t['cpu_seconds']:.3f}",
            "load averages before": ", ".join(f"{v:.2f}" for v in t["load_average"]),
        }
        for i, t in enumerate(record["runs"])
    ]
    fastest = record["fastest_wall_seconds"]
    verdict = "meets" if fastest <= record["target_seconds"] else "misses"
    return "\n".join(
        [
            f"BOIN12 (target 0.33, efficacy limit 0.2, 36 patients in cohorts of 3), "
            f"{record['trials']} trials of the plateau scenario on one core (lockstep engine). "
            f"Fastest run: {fastest:.3f} s, which {verdict} the target of "
            f"{record['target_seconds']:g} s; every run gave the same results "
            f"(proportion selecting a target dose {record['correct_selection']:.3f}). "
            f"{record['cpu_count']} CPUs, Python {record['python']}; the machine may be shared "
            "(load averages below).",
            "",
            md_table(pd.DataFrame(rows)),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    path = RESULTS / "boin12_speed.json"
    if args.report_only:
        record = json.loads(path.read_text())
    else:
        record = measure(args.trials, args.runs)
        path.write_text(json.dumps(record, indent=1))
    write_page(
        "boin12_speed",
        "BOIN12: simulation speed",
        page(record),
        make="bench-boin12",
        runs=[f"bench_boin12.py --trials {record['trials']} --runs {len(record['runs'])}"],
        rebuild="bench_boin12.py --report-only",
        data=["boin12_speed.json"],
    )
    print(f"fastest of {len(record['runs'])}: {record['fastest_wall_seconds']:.3f} s")


if __name__ == "__main__":
    main()
