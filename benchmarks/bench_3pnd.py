"""Benchmark one 3PND posterior update: NUTS vs the PyMC step methods vs the numba kernel.

Run ``make bench`` (or ``python benchmarks/bench_3pnd.py``). Writes
``docs/results/three_pnd_speed.json`` and the page ``docs/results/three_pnd_speed.md``;
``--report-only`` rewrites the page from the JSON. Times are wall-clock on one core (BLAS
pinned to one thread), medians over repeats; ESS is ArviZ's rank-normalised bulk ESS.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from report import RESULTS, write_page
from scipy.special import ndtri

from dosezoo.data import TrialData
from dosezoo.datasets import load_o6bg
from dosezoo.designs import MTDQuantileRule
from dosezoo.diagnostics import convergence_table
from dosezoo.models import ThreePND

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ["beta", "sigma", "nu", "mtd"]
#: Kernel settings for the target "1000 effective draws of mtd in 10 ms": 2 chains of
#: KERNEL_DRAWS kept draws after KERNEL_TUNE burn-in iterations each.
KERNEL_DRAWS, KERNEL_TUNE = 600, 100
KERNEL_REPEATS = 30


def simulated_45(seed: int = 2023) -> tuple[ThreePND, TrialData]:
    """45 patients from the simulation setting of Lee (2023), doses spread as a fully sequential trial's."""
    model = ThreePND(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0, delta=0.1)
    xi0, nu0, sigma0 = 50.0, 1.0, 0.1
    beta0 = (model.eta - sigma0 * ndtri(model.gamma)) / (xi0 - model.x_min) ** nu0
    rng = np.random.default_rng(seed)
    dose = np.sort(rng.uniform(6.0, 60.0, 45))
    y = rng.normal(beta0 * (dose - model.x_min) ** nu0, sigma0)
    return model, TrialData.from_dataframe(pd.DataFrame({"dose": dose, "y": y}))


def summarise_fit(idata, seconds: float) -> dict:
    table = convergence_table(idata, PARAMS)
    ess = float(table.loc["mtd", "ess_bulk"])
    return {
        "seconds": seconds,
        "mtd_ess_bulk": ess,
        "mtd_ess_per_second": ess / seconds,
        "min_ess_bulk": float(table["ess_bulk"].min()),
        "max_rhat": float(table["r_hat"].max()),
    }


def bench_pymc(model: ThreePND, data: TrialData, engine: str) -> dict:
    started = time.perf_counter()
    idata = model.fit(data, engine=engine, draws=1000, tune=1000, chains=2, random_seed=1)
    return summarise_fit(idata, time.perf_counter() - started) | {
        "settings": "2 x (1000 tune + 1000 draws)"
    }


def bench_kernel(
    model: ThreePND, data: TrialData, *, draws: int, tune: int, ridge: bool = True
) -> dict:
    dose, y = data.dose, data.column("y")
    model.sample_kernel(dose, y, draws=10, tune=10, chains=2, random_seed=0, ridge=ridge)  # JIT
    times, ess, rhat, min_ess = [], [], [], []
    for seed in range(KERNEL_REPEATS):
        started = time.perf_counter()
        raw = model.sample_kernel(
            dose, y, draws=draws, tune=tune, chains=2, random_seed=seed, ridge=ridge
        )
        times.append(time.perf_counter() - started)
        per_param = {name: (float(az.ess(raw[name])), float(az.rhat(raw[name]))) for name in PARAMS}
        ess.append(per_param["mtd"][0])
        min_ess.append(min(e for e, _ in per_param.values()))
        rhat.append(max(r for _, r in per_param.values()))
    seconds = statistics.median(times)
    # The first fit() builds the PyMC model behind the InferenceData; later fits reuse it.
    model.fit(data, engine="kernel", draws=draws, tune=tune, chains=2, random_seed=0, ridge=ridge)
    started = time.perf_counter()
    model.fit(data, engine="kernel", draws=draws, tune=tune, chains=2, random_seed=1, ridge=ridge)
    with_idata = time.perf_counter() - started
    return {
        "settings": f"2 x ({tune} tune + {draws} draws), median of {KERNEL_REPEATS}",
        "seconds": seconds,
        "seconds_with_inferencedata": with_idata,
        "mtd_ess_bulk": statistics.median(ess),
        "mtd_ess_bulk_min_over_repeats": min(ess),
        "mtd_ess_per_second": statistics.median(ess) / seconds,
        "min_ess_bulk": statistics.median(min_ess),
        "max_rhat": statistics.median(rhat),
        "max_rhat_over_repeats": max(rhat),
    }


def bench_quadrature(model: ThreePND, data: TrialData) -> dict:
    """One posterior as a design uses it: the refined quadrature, 0.1-quantile, P(MTD < dose)."""
    rule = MTDQuantileRule(alpha=0.1)
    rule.choose(model.posterior(data), data)  # JIT
    times = []
    for _ in range(KERNEL_REPEATS):
        started = time.perf_counter()
        rule.choose(model.posterior(data), data)
        times.append(time.perf_counter() - started)
    return {"seconds": statistics.median(times), "repeats": KERNEL_REPEATS}


def first_call_cost() -> dict:
    """Seconds for the first kernel fit in a fresh process, without and with numba's disk cache."""
    code = (
        "import time; t = time.perf_counter();"
        "from dosezoo.datasets import load_o6bg; from dosezoo.models import ThreePND;"
        "d = load_o6bg(); m = ThreePND(eta=55, gamma=0.6, x_min=20, x_max=140, delta=0.5);"
        "t0 = time.perf_counter(); m.sample_kernel(d.dose, d.column('y'), draws=600, tune=100, chains=2, random_seed=0);"
        "print(time.perf_counter() - t0)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"NUMBA_CACHE_DIR": cache}
        for label in ("cold_compile", "warm_cache"):
            run = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            out[label] = float(run.stdout.strip().splitlines()[-1])
    return out


def markdown(results: dict) -> str:
    lines = [
        "| data | engine | settings | wall time | mtd bulk ESS | mtd ESS/s | min bulk ESS (all params) | max R-hat |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for data_name, engines in results["runs"].items():
        for engine, r in engines.items():
            lines.append(
                f"| {data_name} | {engine} | {r['settings']} | {r['seconds'] * 1e3:,.1f} ms | "
                f"{r['mtd_ess_bulk']:,.0f} | {r['mtd_ess_per_second']:,.0f} | {r['min_ess_bulk']:,.0f} | "
                f"{r['max_rhat']:.3f} |"
            )
    lines.append("")
    for data_name, engines in results["runs"].items():
        kernel, nuts = engines["kernel"], engines["NUTS (pm.sample)"]
        lines.append(
            f"- {data_name}: kernel / NUTS effective draws per second = "
            f"{kernel['mtd_ess_per_second'] / nuts['mtd_ess_per_second']:,.0f}x; the kernel's smallest "
            f"mtd ESS over {KERNEL_REPEATS} seeds was {kernel['mtd_ess_bulk_min_over_repeats']:,.0f} and its "
            f"largest R-hat (any parameter) {kernel['max_rhat_over_repeats']:.4f}; with the InferenceData "
            f"built (model already built by an earlier fit), one kernel fit took "
            f"{kernel['seconds_with_inferencedata'] * 1e3:,.1f} ms."
        )
    for data_name, engines in results["runs"].items():
        kernel = engines["kernel"]
        met = (
            kernel["seconds"] <= 0.010
            and kernel["mtd_ess_bulk"] >= 1000
            and kernel["max_rhat"] < 1.01
        )
        lines.append(
            f"- Target (>= 1000 effective draws of mtd in <= 10 ms, R-hat < 1.01) on {data_name}: "
            f"{'met' if met else 'NOT met'} in this run (median {kernel['seconds'] * 1e3:.1f} ms, median mtd "
            f"ESS {kernel['mtd_ess_bulk']:,.0f})."
        )
    for data_name, seconds in results["quadrature_seconds"].items():
        lines.append(
            f"- {data_name}: one quadrature posterior with the rule's decision (refined to "
            f"tolerance 1e-3: 0.1-quantile of the MTD, P(MTD < dose)) took {seconds * 1e3:.2f} ms "
            f"(median of {KERNEL_REPEATS}); it has no Monte Carlo error, so no ESS."
        )
    first = results["first_call_seconds"]
    lines.append(
        f"- First kernel call in a new process: {first['cold_compile']:.1f} s with numba compiling, "
        f"{first['warm_cache']:.2f} s from numba's disk cache."
    )
    lines.append(f"- Machine: {results['machine']}; {results['date']}.")
    if "load_averages" in results:
        loads = results["load_averages"]
        lines.append(
            "- Load averages (1, 5, 15 min) at the start: "
            f"{', '.join(f'{x:.2f}' for x in loads['before'])}; at the end: "
            f"{', '.join(f'{x:.2f}' for x in loads['after'])} (other processes slow the timings)."
        )
    return "\n".join(lines)


def write_report() -> None:
    """Write the page three_pnd_speed.md from the saved JSON."""
    results = json.loads((RESULTS / "three_pnd_speed.json").read_text())
    write_page(
        "three_pnd_speed",
        "3PND: speed of one posterior update",
        markdown(results),
        make="bench",
        runs=["bench_3pnd.py"],
        rebuild="bench_3pnd.py --report-only",
        data=["three_pnd_speed.json"],
    )
    print(markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the page from the saved JSON"
    )
    if parser.parse_args().report_only:
        write_report()
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    o6bg_model = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
    datasets = {
        "O6-BG, 24 patients": (o6bg_model, load_o6bg()),
        "simulated, 45 patients": simulated_45(),
    }
    load_before = list(os.getloadavg())
    runs = {}
    for name, (model, data) in datasets.items():
        print(f"benchmarking {name} ...", flush=True)
        runs[name] = {
            "NUTS (pm.sample)": bench_pymc(model, data, "nuts"),
            "step methods (pm.sample)": bench_pymc(model, data, "pymc"),
            "kernel": bench_kernel(model, data, draws=KERNEL_DRAWS, tune=KERNEL_TUNE),
            "kernel, Lee (2023)'s sweep (no ridge move)": bench_kernel(
                model, data, draws=KERNEL_DRAWS, tune=KERNEL_TUNE, ridge=False
            ),
        }
    results = {
        "runs": runs,
        "quadrature_seconds": {
            name: bench_quadrature(model, data)["seconds"]
            for name, (model, data) in datasets.items()
        },
        "first_call_seconds": first_call_cost(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "load_averages": {"before": load_before, "after": list(os.getloadavg())},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "three_pnd_speed.json").write_text(json.dumps(results, indent=2))
    write_report()


if __name__ == "__main__":
    main()
