"""Speed of the Weibull D-optimal family: designs, MLE, fits and simulated trials, on one core.

Targets: one locally D-optimal design with its GET check <= 10 ms; one MLE with its
observed information on 300 censored patients <= 2 ms. Medians of repeated calls after a
warm-up (numba kernels compiled and cached), BLAS pinned to one thread.

Run ``make bench-weibull`` (``python benchmarks/bench_weibull.py``). Writes
``docs/results/weibull_d_optimal_speed.json`` (with the load average of the machine) and the page
``weibull_d_optimal_speed.md``; ``--report-only`` rewrites the page from the JSON.
"""

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from report import RESULTS, md_table, write_page
from threadpoolctl import threadpool_limits

from dosezoo.data import TrialData
from dosezoo.designs import (
    adaptive_d_optimal_design,
    bayesian_d_optimal,
    information_matrix,
    locally_d_optimal,
    optimal_design,
    run_staged_trial,
    uniform_design,
    with_reference,
)
from dosezoo.models import WeibullAFT
from dosezoo.models.weibull_aft import EULER_GAMMA
from dosezoo.scenarios import weibull_scenario, weibull_scenarios
from dosezoo.simulate import simulate

MODEL = WeibullAFT()


def timed(call: Callable[[], object], repeats: int) -> dict[str, float]:
    """Median and 90th percentile of ``repeats`` calls, in milliseconds (after one warm-up)."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(1e3 * (time.perf_counter() - started))
    return {
        "median_ms": round(statistics.median(times), 3),
        "p90_ms": round(float(np.quantile(times, 0.9)), 3),
        "repeats": repeats,
    }


def censored_trial(n: int, seed: int) -> TrialData:
    scenario = weibull_scenario("I", EULER_GAMMA, 0.5)
    rng = np.random.default_rng(seed)
    doses = uniform_design().allocate(rng.random(n))
    return TrialData.from_dataframe(pd.DataFrame({"dose": doses, **scenario.respond(doses, rng)}))


def one_blas_thread() -> None:
    """Run BLAS on one thread here and in the worker processes (they inherit the variables).

    Tiny matrices gain nothing from threads, and two workers with two threads each
    oversubscribe two cores (measured: 2.4 times slower).
    """
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    threadpool_limits(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--skip-nuts", action="store_true", help="leave out the NUTS fit")
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the page from the saved JSON"
    )
    args = parser.parse_args()
    one_blas_thread()
    if args.report_only:
        write_report()
        return
    load_start = os.getloadavg()
    rows: dict[str, dict] = {}

    theta = {"beta": (1.9, 0.6, 2.8), "b": EULER_GAMMA}
    rows["locally D-optimal design + GET check (shape I, b = gamma, tau = 14.887)"] = timed(
        lambda: locally_d_optimal(MODEL, theta, tau=14.887), args.repeats
    )
    scenarios = weibull_scenarios(0.5)
    per_scenario = [
        timed(lambda s=s: locally_d_optimal(MODEL, s.theta, s.tau), 20)["median_ms"]
        for s in scenarios
    ]
    rows["locally D-optimal design + GET check, 24 scenarios at 50% events (median of medians)"] = {
        "median_ms": round(statistics.median(per_scenario), 3),
        "p90_ms": round(float(np.quantile(per_scenario, 0.9)), 3),
        "repeats": 20 * len(scenarios),
    }
    prior = 90 * information_matrix(MODEL, uniform_design(), MODEL.theta(theta), 14.887)
    rows["stage design of eq 8 (90 patients accrued, stage of 210)"] = timed(
        lambda: optimal_design(
            MODEL,
            MODEL.theta(theta),
            14.887,
            prior_information=prior,
            stage_size=210,
            grid_size=21,
        ),
        args.repeats,
    )
    draws = MODEL.theta(theta) + np.random.default_rng(1).normal(size=(200, 4)) * [
        0.06,
        0.5,
        0.8,
        0.04,
    ]
    rows["Bayesian design, 200 posterior draws"] = timed(
        lambda: bayesian_d_optimal(MODEL, draws, 14.887, max_points=200), 20
    )

    data = censored_trial(300, 3)
    design, log_time, event = MODEL._arrays(data)
    rows["MLE + observed information, 300 patients, 50% censored (TrialData)"] = timed(
        lambda: MODEL.mle(data), args.repeats
    )
    rows["MLE + observed information, 300 patients, 50% censored (arrays)"] = timed(
        lambda: MODEL.estimate(design, log_time, event), args.repeats
    )

    scenario = with_reference(weibull_scenario("I", EULER_GAMMA, 0.5))
    two_stage = adaptive_d_optimal_design(MODEL, first_stage=90, sample_size=300, tau=scenario.tau)
    rng = np.random.default_rng(2)
    streams = [(rng.standard_exponential(300), rng.random(300)) for _ in range(args.repeats)]
    index = iter(range(10**9))
    rows["two-stage trial, n = 300 (fast runner: 2 MLEs + 1 design)"] = timed(
        lambda: run_staged_trial(two_stage, scenario, *streams[next(index) % len(streams)]),
        args.repeats,
    )
    started = time.perf_counter()
    simulate(two_stage, scenario, 10, random_seed=1, progress=False)
    rows["two-stage trial, n = 300 (simulation engine, patient by patient)"] = {
        "median_ms": round(1e3 * (time.perf_counter() - started) / 10, 1),
        "p90_ms": float("nan"),
        "repeats": 10,
    }
    if not args.skip_nuts:
        started = time.perf_counter()
        MODEL.fit(data, engine="nuts", draws=1000, tune=1000, chains=2, random_seed=1)
        rows["NUTS fit, 300 patients, 2 chains x (1000 + 1000)"] = {
            "median_ms": round(1e3 * (time.perf_counter() - started), 0),
            "p90_ms": float("nan"),
            "repeats": 1,
        }
    load_end = os.getloadavg()
    record = {
        "results": rows,
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in load_end],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "command": "python benchmarks/bench_weibull.py",
        "threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
    }
    (RESULTS / "weibull_d_optimal_speed.json").write_text(json.dumps(record, indent=2) + "\n")
    write_report()


def write_report() -> None:
    """Write the page weibull_d_optimal_speed.md from the saved JSON."""
    record = json.loads((RESULTS / "weibull_d_optimal_speed.json").read_text())
    table = pd.DataFrame(
        [{"operation": name, **values} for name, values in record["results"].items()]
    )
    load_start, load_end = record["load_average_start"], record["load_average_end"]
    text = (
        f"One process, {record['machine']}, BLAS threads {record['threads']}; load average "
        f"{load_start[0]:.2f} at the start and {load_end[0]:.2f} at the end (on a shared machine "
        "read the numbers to within tens of percent). Medians of repeated calls after a warm-up "
        "(the numba kernels compiled and cached). Targets: one locally D-optimal design with its "
        "GET check <= 10 ms; one MLE with its observed information on 300 censored patients "
        "<= 2 ms.\n\n" + md_table(table)
    )
    write_page(
        "weibull_d_optimal_speed",
        "The Weibull D-optimal family: speed of designs, fits and trials",
        text,
        make="bench-weibull",
        runs=["bench_weibull.py"],
        rebuild="bench_weibull.py --report-only",
        data=["weibull_d_optimal_speed.json"],
    )
    print(text)


if __name__ == "__main__":
    main()
