"""Parallel simulation: local worker processes (joblib / loky) and a dask cluster of processes.

Two studies, each simulated in this process, on 2 loky worker processes (``n_jobs=2``), and on
a dask ``LocalCluster`` of 1 and of 2 worker processes (one thread each):

- the CRM setting of dfcrm's ``crmsim`` (24 patients in cohorts of 3, skeleton
  (.05, .12, .25, .40, .55), target 0.25, truth (.05, .10, .20, .35, .50), empiric model),
  ``--trials`` trials: a fraction of a millisecond per trial, where the cost of handing
  batches to workers and back shows;
- one configuration of Lee (2023)'s 3PND study (FSAD-acc-N45-nu0.6, 45 patients, the
  quadrature posterior at every patient), ``--lee-trials`` trials: tens of milliseconds per
  trial, where the work dominates.

Every run of a study must give the identical Dataset. Each timed run (``--repeats`` of each
setting, median) is a fresh design's first: its kernels were loaded where it runs by a small
run of another design object (starting a worker process and importing dosezoo is paid once
per worker, not per run), and whatever it memoises starts empty, as in a new session. The
per-trial cost of the 2-worker cluster projects the wall time of a 10^6-trial run on a real
cluster of W workers: ``10^6 x cost x 2 / W``.

Then the five binary designs of ``bench_binary.py`` (CRM, BOIN, 3+3, BLRM, EWOC), each over
its three scenarios (``--design-trials`` trials each), in this process and on 2 loky worker
processes: the study with memos cold (fresh designs), then a study of other trials (the next
seed) with the same designs, their memos holding the first study's posteriors (warm).

Last, the most any split of a run's trials over 2 workers can give, for each binary design
(``--split-trials`` trials of its middle scenario): each worker runs at least half of the
trials, as a fresh design's run (its memos empty), so with no cost of handing them over the
speed-up is at most the CPU time of the whole run over that of half of it, both in this
process. Where that bound is below 1.8, ``n_jobs=2`` cannot reach 1.8x at that size. Then the
floor under handing the halves to 2 warm loky workers and back: two tasks that do nothing, and
two that return arrays of the shapes and types of a half's results (made in the worker, so
only the hand-back is timed), and the same bytes sent by 2 processes down bare pipes (what any
transport that copies the results costs at least). For the designs that memoise nothing
(BOIN, 3+3), whose trials each cost the same, the bound also holds if a run's fixed part cost
nothing: the whole run then costs twice the half's marginal cost, and a worker at least that
cost plus the floor.

Run ``make bench-scaleout`` (or ``python benchmarks/bench_scaleout.py``). Writes
``docs/results/scaleout.json`` and the page ``scaleout.md``; ``--report-only`` rewrites the page
from the JSON.
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import time

import bench_binary
import distributed
import numpy as np
import pandas as pd
import report
import xarray as xr
from joblib.externals.loky import get_reusable_executor
from report import RESULTS, md_table, write_page

from dosezoo.designs import crm_design
from dosezoo.levels import level_index
from dosezoo.models import CRM
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate, simulate_designs
from dosezoo.studies import lee2023_configurations

SKELETON = (0.05, 0.12, 0.25, 0.40, 0.55)
TRUTH = (0.05, 0.10, 0.20, 0.35, 0.50)
LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0)
SEED = 2024
JSON = RESULTS / "scaleout.json"
PROJECTED_TRIALS = 1_000_000
PROJECTED_WORKERS = (10, 100, 1000)
#: The configuration of Lee (2023)'s study that is timed (its largest trials).
LEE_CONFIGURATION = "FSAD-acc-N45-nu0.6"
#: The binary designs whose posteriors are memoised by count state.
MEMOISED = ("CRM", "BLRM", "EWOC")
#: Timed rounds of the hand-over floor (each a few milliseconds; the fastest is kept).
HANDOVER_REPEATS = 41


def crmsim_study():
    """Return the crmsim CRM design and scenario."""
    model = CRM(SKELETON, target=0.25, dose_levels=LEVELS, model="empiric")
    design = crm_design(model, cohort_size=3, sample_size=24)
    scenario = BinaryToxicityScenario(LEVELS, TRUTH, target=0.25, planned_sample_size=24)
    return design, scenario


def lee_study():
    """Return the design and scenario of :data:`LEE_CONFIGURATION`."""
    (configuration,) = [c for c in lee2023_configurations() if c.name == LEE_CONFIGURATION]
    return configuration.design, configuration.scenario


#: Each study timed: its description and its design and scenario.
STUDIES = {
    "crmsim": ("CRM, dfcrm crmsim setting (n = 24, cohorts of 3)", crmsim_study),
    "lee2023": (f"Lee (2023), 3PND, {LEE_CONFIGURATION} (quadrature posterior)", lee_study),
}


def timed(run, repeats: int) -> tuple[float, xr.Dataset]:
    """Median wall seconds of ``repeats`` calls of ``run`` and its (last) result."""
    walls, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), result


def load_kernels(make, scenario, **where) -> None:
    """Load the kernels of ``make``'s designs where the trials run, with a small run of a pair.

    On loky the pair is another pickle than any one design: the workers let go of the design
    they held, so the next run's design is unpickled anew, its memo empty.
    """
    pair = {"load": make(), "again": make()}
    simulate_designs(pair, scenario, 10, random_seed=1, progress=False, **where)


def measure(study: str, trials: int, repeats: int) -> dict:
    """Time one study in this process, on loky and on dask clusters of 1 and 2 processes.

    Every timed run is a fresh design's first (memos empty, kernels loaded), as one call of
    ``simulate`` in a new session is.
    """
    description, make = STUDIES[study]
    _, scenario = make()

    def design() -> object:
        return make()[0]

    def run(**where):
        return simulate(design(), scenario, trials, random_seed=SEED, progress=False, **where)

    load_before = os.getloadavg()
    walls, results = {}, {}
    load_kernels(design, scenario)
    walls["in process"], results["in process"] = timed(run, repeats)

    def on_loky():
        load_kernels(design, scenario, n_jobs=2)  # untimed: a fresh design for the workers
        start = time.perf_counter()
        result = run(n_jobs=2)
        return time.perf_counter() - start, result

    loky = [on_loky() for _ in range(repeats)]
    walls["loky, 2 processes"] = statistics.median(wall for wall, _ in loky)
    results["loky, 2 processes"] = loky[-1][1]
    for workers in (1, 2):
        with (
            distributed.LocalCluster(
                # its HTTP server on a free port (with no dashboard it would take 8787)
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            client.run(lambda: __import__("dosezoo.simulate"))  # warm: the import, once
            load_kernels(design, scenario, client=client)
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
        "study": description,
        "trials": trials,
        "wall_seconds": {k: round(v, 3) for k, v in walls.items()},
        "speedup_loky_2": round(walls["in process"] / walls["loky, 2 processes"], 2),
        "speedup_dask_2_over_1": round(walls["dask, 1 process"] / walls["dask, 2 processes"], 2),
        "identical_to_in_process": identical,
        "worker_seconds_per_trial": per_trial,
        "projected_hours_1e6_trials": {
            # three significant digits: a fast study's hours on many workers are tiny
            str(w): float(f"{PROJECTED_TRIALS * per_trial / w / 3600:.3g}")
            for w in PROJECTED_WORKERS
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def measure_designs(trials: int, repeats: int) -> dict:
    """Time an OC study of each binary design in this process and on 2 loky processes.

    The study: the design over the three scenarios of ``bench_binary.py``, ``trials`` trials
    each. Each repeat builds fresh designs and loads their kernels (`load_kernels`), times the
    study on 2 processes and in this process with memos empty (cold), then a second study of
    other trials (the next seed) with the same designs, their memos holding the first
    study's posteriors (warm).
    """
    scenarios = list(bench_binary.scenarios().values())
    load_before = os.getloadavg()
    rows = []
    for name in bench_binary.designs():

        def fresh(name=name):
            return bench_binary.designs()[name]

        def study(design, seed, **where):
            return [
                simulate(design, s, trials, random_seed=seed, progress=False, **where)
                for s in scenarios
            ]

        walls: dict[str, list[float]] = {}
        identical = True
        for _ in range(repeats):
            for jobs in (1, 2):
                load_kernels(fresh, scenarios[0], n_jobs=jobs)
            designs = {"2 processes": fresh(), "in process": fresh()}
            results = {}
            for memo, seed in (("cold", SEED), ("warm", SEED + 1)):
                for where, design in designs.items():
                    options = {"n_jobs": 2} if where == "2 processes" else {}
                    start = time.perf_counter()
                    results[where, memo] = study(design, seed, **options)
                    walls.setdefault(f"{where}, memo {memo}", []).append(
                        time.perf_counter() - start
                    )
            for memo in ("cold", "warm"):
                for got, expected in zip(
                    results["2 processes", memo], results["in process", memo], strict=True
                ):
                    identical = identical and got.identical(expected)
        wall = {key: statistics.median(values) for key, values in walls.items()}
        rows.append(
            {
                "design": name,
                "wall_seconds": {key: round(value, 3) for key, value in wall.items()},
                "speedup_cold": round(
                    wall["in process, memo cold"] / wall["2 processes, memo cold"], 2
                ),
                "speedup_warm": round(
                    wall["in process, memo warm"] / wall["2 processes, memo warm"], 2
                ),
                "identical": identical,
            }
        )
        print(rows[-1], flush=True)
    return {
        "trials_per_scenario": trials,
        "scenarios": list(bench_binary.scenarios()),
        "repeats": repeats,
        "designs": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def cpu_seconds(run) -> float:
    """CPU seconds of this process taken by ``run()``."""
    start = time.process_time()
    run()
    return time.process_time() - start


def count_state_paths(results: xr.Dataset, levels: tuple[float, ...]) -> list[list[tuple]]:
    """Return each trial's count states (patients and DLTs per level).

    One before each cohort, and one after the last (the recommendation's).
    """
    states = []
    for dose, dlt, cohort in zip(
        results["dose"].values, results["dlt"].values, results["cohort"].values, strict=True
    ):
        n, y = np.zeros(len(levels), dtype=int), np.zeros(len(levels), dtype=int)
        path = [(tuple(n), tuple(y))]
        for number in np.unique(cohort[cohort > 0]):
            treated = cohort == number
            at = level_index(dose[treated], levels, owner="count_state_paths")
            np.add.at(n, at, 1)
            np.add.at(y, at, dlt[treated].astype(int))
            path.append((tuple(n), tuple(y)))
        states.append(path)
    return states


def states_of_halves(paths: list[list[tuple]]) -> dict:
    """Count the distinct count states of all trials, of two consecutive halves, of two sorted.

    Sorted: the trials ordered by their whole path of count states, then halved, which keeps
    trials that share states together as far as two halves can; it needs the paths, known only
    once the trials have run.
    """

    def distinct(trials) -> int:
        return len({state for trial in trials for state in paths[trial]})

    half = len(paths) // 2
    order = sorted(range(len(paths)), key=paths.__getitem__)
    return {
        "all": distinct(range(len(paths))),
        "consecutive_halves": [distinct(range(half)), distinct(range(half, len(paths)))],
        "sorted_halves": [distinct(order[:half]), distinct(order[half:])],
    }


def arrays_like(shapes: dict[str, tuple[tuple[int, ...], str]]) -> dict[str, np.ndarray]:
    """Return zeroed arrays of ``shapes`` (name: shape and dtype), as a worker hands back."""
    return {name: np.zeros(shape, dtype) for name, (shape, dtype) in shapes.items()}


def handover_seconds(shapes: dict[str, tuple[tuple[int, ...], str]], repeats: int) -> float:
    """Return the fastest of ``repeats`` rounds of 2 tasks on 2 warm loky workers (wall s).

    Each task returns ``arrays_like(shapes)``. The executor is loky's reusable one, as
    ``simulate(n_jobs=2)`` takes it; its workers are started and warmed by untimed rounds
    first. The fastest round, not the median: a floor, which the machine's noise only raises.
    """
    executor = get_reusable_executor(max_workers=2)

    def round_trip() -> None:
        for task in [executor.submit(arrays_like, shapes) for _ in range(2)]:
            task.result()

    for _ in range(5):
        round_trip()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        round_trip()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def send_on_request(connection) -> None:
    """Serve a bare pipe: for each number of bytes asked for, send that many; stop at None."""
    while (size := connection.recv()) is not None:
        connection.send_bytes(bytes(size))


def pipe_seconds(sizes: list[int], repeats: int) -> list[float]:
    """Return the fastest of ``repeats`` rounds of 2 processes sending ``size`` bytes by pipe.

    The least any transport that copies a worker's results costs: no executor, no pickling,
    the bytes made in the worker. One time (wall seconds) per size in ``sizes``.
    """
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for _ in range(2):
        here, there = context.Pipe()
        worker = context.Process(target=send_on_request, args=(there,), daemon=True)
        worker.start()
        pipes.append(here)
        workers.append(worker)
    fastest = []
    try:
        for size in sizes:
            seconds = []
            for round_ in range(5 + repeats):
                start = time.perf_counter()
                for pipe in pipes:
                    pipe.send(size)
                for pipe in pipes:
                    pipe.recv_bytes()
                if round_ >= 5:
                    seconds.append(time.perf_counter() - start)
            fastest.append(min(seconds))
    finally:
        for pipe, worker in zip(pipes, workers, strict=True):
            pipe.send(None)
            worker.join()
    return fastest


def measure_split_bound(trials: int, repeats: int) -> dict:
    """Measure the most a 2-way split of ``trials`` trials can speed up each binary design.

    Each worker of a split into consecutive trials, as `simulate` makes it, runs ``trials //
    2`` trials as a fresh design would: the bound is the median CPU time of ``trials`` trials
    over that of ``trials // 2``, each a fresh design's run in this process (kernels loaded,
    memos empty), the runs of the two sizes alternated ``repeats`` times. For the designs that
    memoise posteriors by count state, the count states each half reaches
    (`states_of_halves`).
    """
    scenario = list(bench_binary.scenarios().values())[1]
    load_before = os.getloadavg()
    rows = []
    for name in bench_binary.designs():
        load_kernels(lambda name=name: bench_binary.designs()[name], scenario)
        seconds: dict[int, list[float]] = {trials: [], trials // 2: []}
        for _ in range(repeats):
            for size in seconds:
                design = bench_binary.designs()[name]
                seconds[size].append(
                    cpu_seconds(
                        lambda d=design, n=size: simulate(
                            d, scenario, n, random_seed=SEED, progress=False
                        )
                    )
                )
        whole, half = (statistics.median(seconds[size]) for size in (trials, trials // 2))
        results = simulate(
            bench_binary.designs()[name], scenario, trials // 2, random_seed=SEED, progress=False
        )
        shapes = {key: (var.shape, var.dtype.str) for key, var in results.variables.items()}
        handback = handover_seconds(shapes, HANDOVER_REPEATS)
        rows.append(
            {
                "design": name,
                "cpu_seconds_whole": round(whole, 4),
                "cpu_seconds_half": round(half, 4),
                "bound": round(whole / half, 2),
                "results_bytes_half": results.nbytes,
                "handback_seconds": round(handback, 5),
            }
        )
        if name in MEMOISED:
            results = simulate(
                bench_binary.designs()[name], scenario, trials, random_seed=SEED, progress=False
            )
            rows[-1]["count_states"] = states_of_halves(
                count_state_paths(results, tuple(scenario.dose_levels))
            )
        print(rows[-1], flush=True)
    piped = pipe_seconds([row["results_bytes_half"] for row in rows], HANDOVER_REPEATS)
    for row, seconds in zip(rows, piped, strict=True):
        row["pipe_seconds"] = round(seconds, 5)
    return {
        "trials": trials,
        "scenario": list(bench_binary.scenarios())[1],
        "repeats": repeats,
        "empty_round_trip_seconds": round(handover_seconds({}, HANDOVER_REPEATS), 5),
        "handover_repeats": HANDOVER_REPEATS,
        "designs": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }


def split_bound_section(data: dict) -> str:
    """Return the page's section of the bound on a 2-way split of a run's trials."""
    trials, half = data["trials"], data["trials"] // 2
    rows = [
        {
            "design": row["design"],
            f"{trials} trials, CPU (ms)": f"{1e3 * row['cpu_seconds_whole']:.1f}",
            f"{half} trials, CPU (ms)": f"{1e3 * row['cpu_seconds_half']:.1f}",
            "most 2 consecutive halves can give": f"{row['bound']}x",
        }
        for row in data["designs"]
    ]
    below = [row["design"] for row in data["designs"] if row["bound"] < 1.8]
    memoised = [row for row in data["designs"] if "count_states" in row]
    handover = [row for row in data["designs"] if "handback_seconds" in row]
    states = [
        {
            "design": row["design"],
            f"all {trials} trials": row["count_states"]["all"],
            "consecutive halves": " + ".join(map(str, row["count_states"]["consecutive_halves"])),
            "halves sorted by path": " + ".join(map(str, row["count_states"]["sorted_halves"])),
            "all over the larger sorted half": (
                f"{row['count_states']['all'] / max(row['count_states']['sorted_halves']):.2f}"
            ),
        }
        for row in memoised
    ]
    parts = [
        f"## The most 2 workers can give at {trials} trials",
        f"Measured by `{data['command']}`. Each design of `bench_binary.py` on "
        f"{data['scenario']}: the CPU time of {trials} trials and of {half}, each a fresh "
        f"design's run in this process (kernels loaded, memos empty), median of "
        f"{data['repeats']} alternated runs (load averages {data['load_average_before']} "
        f"before, {data['load_average_after']} after). `simulate` splits a run into batches "
        f"of consecutive trials, so each of 2 workers runs {half} trials as a fresh design "
        "runs them: even with no cost of handing the trials over and back, the speed-up is "
        "at most the ratio of the two.",
        md_table(pd.DataFrame(rows)),
        (
            f"Below 1.8x: {', '.join(below)}. A run of these designs costs a fixed part "
            "(the steps of the lockstep engine, its Dataset, the posteriors of the count "
            "states early trials all reach) that each worker pays in full."
            if below
            else "Every bound is at least 1.8x."
        ),
    ]
    if handover:
        parts += handover_parts(data, handover)
    if memoised:
        parts += [
            f"For the designs that memoise a posterior per count state, the count states "
            f"(patients and DLTs per level before a cohort, or after the last) that the {trials} trials of the "
            f"run above reach, all together and by half: the two halves of consecutive "
            "trials, and the two halves of the trials sorted by their whole path of count "
            "states, the split that keeps trials that share states together.",
            md_table(pd.DataFrame(states)),
            "A split by path would leave each worker fewer posteriors to compute than a split "
            "of consecutive trials, but a trial's path is known only once it has run: a split "
            "by the first cohorts' states would need those cohorts decided first, on one "
            "process, and the BOIN and 3+3 runs it would not help.",
        ]
    return "\n\n".join(parts)


def handover_parts(data: dict, rows: list[dict]) -> list[str]:
    """Return the paragraphs and table of the floor under handing 2 halves over and back."""
    trials, half = data["trials"], data["trials"] // 2
    empty = data["empty_round_trip_seconds"]
    table = []
    for row in rows:
        whole, half_cost = row["cpu_seconds_whole"], row["cpu_seconds_half"]
        # Twice the marginal cost of a half is the whole run without its fixed part.
        marginal = whole - half_cost
        fixed_free = row["design"] not in MEMOISED
        table.append(
            {
                "design": row["design"],
                f"results of {half} trials (MB)": f"{row['results_bytes_half'] / 1e6:.2f}",
                "hand-back, loky (ms)": f"{1e3 * row['handback_seconds']:.2f}",
                "hand-back, bare pipes (ms)": f"{1e3 * row['pipe_seconds']:.2f}",
                "most, with the loky hand-back": (
                    f"{whole / (half_cost + row['handback_seconds']):.2f}x"
                ),
                "no fixed part, empty loky round trip": (
                    f"{2 * marginal / (marginal + empty):.2f}x" if fixed_free else "-"
                ),
                "no fixed part, bare pipes": (
                    f"{2 * marginal / (marginal + row['pipe_seconds']):.2f}x" if fixed_free else "-"
                ),
            }
        )
    return [
        f"The floor under the hand-over (the fastest of {data['handover_repeats']} rounds). On "
        f"loky's reusable executor with 2 warm workers, two tasks that do nothing take "
        f"{1e3 * empty:.2f} ms from submission to both results; two that each return arrays "
        f"of the shapes and types of {half} trials' results, made in the worker, take the "
        "*hand-back, loky*. The same bytes sent by 2 processes down bare pipes (no executor, "
        "no pickling) take the *hand-back, bare pipes*: what any transport that copies the "
        "results costs at least. Added to a half's CPU time, the loky hand-back bounds what 2 "
        "workers can give whatever the rest of the run costs. BOIN and 3+3 memoise nothing, "
        f"so their trials each cost the same: with no fixed part at all, {trials} trials "
        f"would cost twice the marginal cost of {half} ({trials} trials' CPU time less "
        f"{half}'s), and a worker at least that marginal cost plus the floor.",
        md_table(pd.DataFrame(table)),
        f"The {trials} trials of BOIN or 3+3 are milliseconds of work, and handing half of "
        "them to a worker process and their results back is a sizeable part of it. Where the "
        "*no fixed part, empty loky round trip* column is below 1.8x, no run of these trials "
        "on 2 loky workers (what `n_jobs=2` uses) reaches 1.8x over one process, even if the "
        "run had no fixed cost and handed nothing back; the last column is the same bound for "
        "a transport of one's own that copies the results, with no executor at all.",
    ]


def designs_section(data: dict) -> str:
    """Return the page's section of the binary designs' OC studies."""
    rows = [
        {
            "design": row["design"],
            "in process, cold (s)": f"{row['wall_seconds']['in process, memo cold']:.2f}",
            "2 processes, cold (s)": f"{row['wall_seconds']['2 processes, memo cold']:.2f}",
            "speed-up, cold": f"{row['speedup_cold']}x",
            "in process, warm (s)": f"{row['wall_seconds']['in process, memo warm']:.2f}",
            "2 processes, warm (s)": f"{row['wall_seconds']['2 processes, memo warm']:.2f}",
            "speed-up, warm": f"{row['speedup_warm']}x",
            "identical": "yes" if row["identical"] else "NO",
        }
        for row in data["designs"]
    ]
    scenarios = ", ".join(data["scenarios"])
    return "\n\n".join(
        [
            "## The binary designs: an OC study on 2 processes",
            f"Each design of `bench_binary.py` over its scenarios ({scenarios}), "
            f"{data['trials_per_scenario']} trials each, in this process and with `n_jobs=2`; "
            f"median of {data['repeats']} (load averages {data['load_average_before']} before, "
            f"{data['load_average_after']} after). *Cold*: fresh designs, whose posterior memos "
            "start empty (in this process and in the workers); *warm*: then a study of other "
            "trials (the next seed) with the same designs, whose memos hold the first study's "
            "posteriors.",
            md_table(pd.DataFrame(rows)),
            "These designs' posteriors depend on the data only through the counts per level, "
            "and CRM, BLRM and EWOC memoise them by count state (BOIN and 3+3 need none, and "
            "run in lockstep): in one process a trial costs a fraction of a millisecond, cold "
            "or warm. Two workers each compute the posteriors of the count states their own "
            "trials reach, and the trials of both reach many of the same states, so the work "
            "does not halve: `n_jobs` pays for designs whose trials cost milliseconds (the 3PND "
            "configuration above), little or nothing for these.",
        ]
    )


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


def study_section(data: dict, repeats: int) -> str:
    """Return the page's section of one study: the runs, the speed-ups, the projection."""
    rows = [
        {
            "where": key,
            "wall (s)": f"{wall:.2f}",
            "trials / s": f"{data['trials'] / wall:,.1f}",
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
    return "\n\n".join(
        [
            f"## {data['study']}",
            f"{data['trials']} trials per run, median of {repeats} runs (load averages "
            f"{data['load_average_before']} before, {data['load_average_after']} after). Each "
            "run is a fresh design's first: its kernels loaded where it runs, its memos empty.",
            md_table(pd.DataFrame(rows)),
            f"Speed-up of 2 loky processes over one process: {data['speedup_loky_2']}x; "
            f"of a dask cluster of 2 worker processes over 1: {data['speedup_dask_2_over_1']}x.",
            f"Measured cost: {data['worker_seconds_per_trial'] * 1e3:.3g} ms of worker time per "
            f"trial (the 2-process dask run). Projected wall time of {PROJECTED_TRIALS:,} trials "
            "on W workers (cost x trials / W, no start-up):",
            md_table(projection),
        ]
    )


def write_report(data: dict) -> None:
    body = "\n\n".join(
        [
            f"Measured by `{data['command']}` on {data['machine']}.",
            *(study_section(study, data["repeats"]) for study in data["studies"]),
            designs_section(data["binary_designs"]),
            *([split_bound_section(data["split_bound"])] if "split_bound" in data else []),
            "## A 10^6-trial run on a real cluster",
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
    parser.add_argument("--trials", type=int, default=600, help="trials of the crmsim study")
    parser.add_argument(
        "--lee-trials", type=int, default=200, help="trials of the Lee (2023) configuration"
    )
    parser.add_argument(
        "--design-trials", type=int, default=2000, help="trials per scenario of a binary design"
    )
    parser.add_argument(
        "--split-trials", type=int, default=500, help="trials of the 2-way split bound"
    )
    parser.add_argument(
        "--split-repeats", type=int, default=5, help="alternated runs of the split bound"
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--only-split", action="store_true", help="measure the split bound only (keep the rest)"
    )
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.only_split:
        data = json.loads(JSON.read_text())
        data["split_bound"] = measure_split_bound(args.split_trials, args.split_repeats)
        data["split_bound"]["command"] = (
            f"python benchmarks/bench_scaleout.py --only-split --split-trials {args.split_trials} "
            f"--split-repeats {args.split_repeats}"
        )
        JSON.write_text(json.dumps(data, indent=2) + "\n")
    elif not args.report_only:
        command = (
            f"python benchmarks/bench_scaleout.py --trials {args.trials} "
            f"--lee-trials {args.lee_trials} --design-trials {args.design_trials} "
            f"--split-trials {args.split_trials} --split-repeats {args.split_repeats} "
            f"--repeats {args.repeats}"
        )
        data = {
            "studies": [
                measure("crmsim", args.trials, args.repeats),
                measure("lee2023", args.lee_trials, args.repeats),
            ],
            "binary_designs": measure_designs(args.design_trials, args.repeats),
            "split_bound": measure_split_bound(args.split_trials, args.split_repeats)
            | {"command": command},
            "repeats": args.repeats,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "command": command,
        }
        JSON.write_text(json.dumps(data, indent=2) + "\n")
    write_report(json.loads(JSON.read_text()))
    print(f"wrote {report.RESULTS / 'scaleout.md'}")


if __name__ == "__main__":
    main()
