"""Parallel simulation: local worker processes (joblib / loky) and a dask cluster of processes.

One study, the CRM setting of dfcrm's ``crmsim`` (24 patients in cohorts of 3, skeleton
(.05, .12, .25, .40, .55), target 0.25, truth (.05, .10, .20, .35, .50), empiric model), is
simulated in this process, on 2 loky worker processes (``n_jobs=2``), and on a dask
``LocalCluster`` of 1 and of 2 worker processes (one thread each). Every run must give the
identical Dataset. Workers are warmed by one small run first (starting a worker process and
importing dosezoo is paid once per worker, not per run), then each setting is timed
``--repeats`` times (median). The per-trial cost of the 2-worker cluster projects the wall time
of a 10^6-trial run on a real cluster of W workers: ``10^6 x cost x 2 / W``.

Run ``make bench-scaleout`` (or ``python benchmarks/bench_scaleout.py``). Writes
``docs/results/scaleout.json`` and the page ``scaleout.md``; ``--report-only`` rewrites the page
from the JSON.
"""

import argparse
import json
import os
import platform
import statistics
import time

import distributed
import pandas as pd
import report
import xarray as xr
from report import RESULTS, md_table, write_page

from dosezoo.designs import crm_design
from dosezoo.models import CRM
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate

SKELETON = (0.05, 0.12, 0.25, 0.40, 0.55)
TRUTH = (0.05, 0.10, 0.20, 0.35, 0.50)
LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
SEED = 2024
JSON = RESULTS / "scaleout.json"
PROJECTED_TRIALS = 1_000_000
PROJECTED_WORKERS = (10, 100, 1000)


def study():
    """Return the crmsim CRM design and scenario."""
    model = CRM(SKELETON, target=0.25, dose_levels=LEVELS, model="empiric")
    design = crm_design(model, cohort_size=3, sample_size=24)
    scenario = BinaryToxicityScenario(LEVELS, TRUTH, target=0.25, planned_sample_size=24)
    return design, scenario


def timed(run, repeats: int) -> tuple[float, xr.Dataset]:
    """Median wall seconds of ``repeats`` calls of ``run`` and its (last) result."""
    walls, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result


def measure(trials: int, repeats: int) -> dict:
    design, scenario = study()

    def run(**where):
        return simulate(design, scenario, trials, random_seed=SEED, progress=False, **where)

    load_before = os.getloadavg()
    walls, results = {}, {}
    walls["in process"], results["in process"] = timed(run, repeats)
    simulate(design, scenario, 20, random_seed=1, n_jobs=2, progress=False)  # warm loky
    walls["loky, 2 processes"], results["loky, 2 processes"] = timed(lambda: run(n_jobs=2), repeats)
    for workers in (1, 2):
        with (
            distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            client.run(lambda: __import__("dosezoo.simulate"))  # warm: the import, once
            simulate(design, scenario, 20, random_seed=1, client=client, progress=False)
            key = f"dask, {workers} process{'es' if workers > 1 else ''}"
            walls[key], results[key] = timed(lambda c=client: run(client=c), repeats)
    reference = results["in process"]
    identical = {}
    for key, result in results.items():
        try:
            xr.testing.assert_identical(result, reference)
            identical[key] = True
        except AssertionError:
            identical[key] = False
    per_trial = walls["dask, 2 processes"] * 2 / trials
    return {
        "study": "CRM, dfcrm crmsim setting (n = 24, cohorts of 3)",
        "trials": trials,
        "repeats": repeats,
        "wall_seconds": {k: round(v, 3) for k, v in walls.items()},
        "speedup_loky_2": round(walls["in process"] / walls["loky, 2 processes"], 2),
        "speedup_dask_2_over_1": round(walls["dask, 1 process"] / walls["dask, 2 processes"], 2),
        "identical_to_in_process": identical,
        "worker_seconds_per_trial": per_trial,
        "projected_hours_1e6_trials": {
            str(w): round(PROJECTED_TRIALS * per_trial / w / 3600, 3) for w in PROJECTED_WORKERS
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": f"python benchmarks/bench_scaleout.py --trials {trials} --repeats {repeats}",
    }


CLUSTER = """On a real cluster the only change is the client: start a cluster of worker processes with
[dask-jobqueue](https://jobqueue.dask.org) (SLURM, PBS, SGE, ...) or
[dask-kubernetes](https://kubernetes.dask.org) and pass its client to `simulate`:

```python
from dask.distributed import Client
from dask_jobqueue import SLURMCluster  # or dask_kubernetes.operator.KubeCluster

cluster = SLURMCluster(cores=1, processes=1, memory="2GB")  # the line
cluster.scale(jobs=100)
# each finished batch is saved: a killed run resumes
results = simulate(
    design, scenario, 1_000_000, random_seed=1, client=Client(cluster), path="big_run.nc"
)
```

Each worker imports dosezoo once (PyMC only if the design's engine is a PyMC one) and
receives the design once (`client.scatter`); trial `i` uses child `i` of
`SeedSequence(random_seed)`, so the result is identical for any number of workers."""


def write_report(data: dict) -> None:
    rows = [
        {
            "where": key,
            "wall (s)": f"{wall:.2f}",
            "trials / s": f"{data['trials'] / wall:.0f}",
            "identical": "yes" if data["identical_to_in_process"][key] else "NO",
        }
        for key, wall in data["wall_seconds"].items()
    ]
    projection = pd.DataFrame(
        [
            {"workers": w, "projected wall (h)": f"{h:.3g}"}
            for w, h in data["projected_hours_1e6_trials"].items()
        ]
    )
    body = "\n\n".join(
        [
            f"Measured by `{data['command']}`.",
            f"{data['study']}: {data['trials']} trials per run, median of {data['repeats']} "
            f"runs after a warm-up, on {data['machine']} (load averages "
            f"{data['load_average_before']} before, {data['load_average_after']} after).",
            md_table(pd.DataFrame(rows)),
            f"Speed-up of 2 loky processes over one process: {data['speedup_loky_2']}x; "
            f"of a dask cluster of 2 worker processes over 1: {data['speedup_dask_2_over_1']}x.",
            "## A 10^6-trial run on a real cluster",
            f"Measured cost: {data['worker_seconds_per_trial'] * 1e3:.3g} ms of worker time per "
            f"trial (the 2-process dask run). Projected wall time of "
            f"{PROJECTED_TRIALS:,} trials on W workers (cost x trials / W, no start-up):",
            md_table(projection),
            CLUSTER,
        ]
    )
    write_page(
        "scaleout",
        "Parallel simulation: worker processes and a dask cluster",
        body,
        make="bench-scaleout",
        runs=["bench_scaleout.py"],
        rebuild="bench_scaleout.py --report-only",
        data=["scaleout.json"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if not args.report_only:
        data = measure(args.trials, args.repeats)
        JSON.write_text(json.dumps(data, indent=2) + "\n")
    write_report(json.loads(JSON.read_text()))
    print(f"wrote {report.RESULTS / 'scaleout.md'}")


if __name__ == "__main__":
    main()
