"""Cost of the result store: `simulate` of BOIN with and without ``path``.

For 2000 trials of BOIN (36 patients, cohorts of 3, Seno et al. 2025's scenario 13) on one
process, ``simulate`` runs without ``path`` (the simulation) and with a fresh ``path`` (the
simulation, every batch saved with its checksum in the manifest, the netCDF file written once
and the batches removed), alternately, ``--repeats`` times each in one warm process (a first run
of each, which imports h5py and compiles, is not counted). Each run is timed by the wall clock
and by the process's CPU time; inside the runs with ``path`` the two parts of saving are timed
too: the batches (`_Store.save`: encode, checksum, write, manifest line) and the final file
(`_Store.finish`: the netCDF file written once, the batches removed). The page gives the
medians and the save's cost as a fraction of the simulation, with the machine's load averages:
on a shared machine the wall clock counts the time other processes held the CPU, the CPU time
does not (both grow when the other processes share the CPU's caches).

What the final file costs whatever the data: the results of a run written alone
(`write_netcdf` with the checksums of its values, as the store writes it), and the same
results cut to their first :data:`FEW_TRIALS` trials (every variable and attribute, next to no
data), ``--repeats`` times each, each file removed after its timing. The second is the cost of
the netCDF-4 file's objects (an HDF5 dataset with its attributes and dimension scales per
variable), which no smaller payload reduces.

    .venv/bin/python benchmarks/bench_store.py [--trials 2000] [--repeats 11]
    .venv/bin/python benchmarks/bench_store.py --report-only
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import report
import xarray as xr

from dosezoo.designs.boin import boin_design
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import netcdf, simulate, store
from dosezoo.simulate.netcdf import write_netcdf

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
#: Scenario 13 of Seno et al. (2025), Table 1 (target 0.3).
P_TRUE = (0.05, 0.10, 0.25, 0.45, 0.60)
DATA = "store_overhead.json"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
#: The timed steps: a whole run, and the two parts of saving inside a run with ``path``.
PARTS = ("batches", "final")
#: Trials of the results written alone to time the netCDF file's fixed cost.
FEW_TRIALS = 2


def _timing(function: Callable[[], object]) -> dict[str, float]:
    started = {clock: read() for clock, read in CLOCKS.items()}
    function()
    return {clock: read() - started[clock] for clock, read in CLOCKS.items()}


def write_bytes(results: xr.Dataset, path: Path) -> None:
    """Write the values of every variable of ``results`` with their CRC-32s, in no format.

    The values as the netCDF file stores them (`dosezoo.simulate.netcdf`: text as its
    character array, made by the writer's own vectorised conversion).
    """
    with path.open("wb") as file:
        for name in results.variables:
            values = np.ascontiguousarray(netcdf._planned(results, name)[2])
            zlib.crc32(values)
            file.write(values)


def measure(n_trials: int, repeats: int) -> dict:
    load_before = list(os.getloadavg())
    design = boin_design(0.3, LEVELS)
    scenario = BinaryToxicityScenario(LEVELS, P_TRUE, 0.3, planned_sample_size=36)
    spent = {part: dict.fromkeys(CLOCKS, 0.0) for part in PARTS}

    def counted(method: Callable, part: str) -> Callable:
        def run(*args, **kwargs):
            timing: dict[str, float] = {}
            try:
                timing = _timing(lambda: method(*args, **kwargs))
            finally:
                for clock, seconds in timing.items():
                    spent[part][clock] += seconds

        return run

    runs: dict[str, list[dict[str, float]]] = {"plain": [], "stored": [], **{p: [] for p in PARTS}}
    save, finish = store._Store.save, store._Store.finish
    store._Store.save = counted(save, "batches")  # type: ignore[method-assign]
    store._Store.finish = counted(finish, "final")  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as folder:

            def plain() -> None:
                simulate(design, scenario, n_trials, random_seed=1, progress=False)

            def stored(index: int) -> None:
                path = Path(folder) / f"run-{index}.nc"
                simulate(design, scenario, n_trials, random_seed=1, path=path, progress=False)

            plain()
            stored(-1)
            for index in range(repeats):
                runs["plain"].append(_timing(plain))
                for part in PARTS:
                    spent[part] = dict.fromkeys(CLOCKS, 0.0)
                runs["stored"].append(_timing(lambda index=index: stored(index)))
                for part in PARTS:
                    runs[part].append(dict(spent[part]))
            alone = simulate(design, scenario, n_trials, random_seed=1, progress=False)
            written = {"file_alone": alone, "file_few": alone.isel(trial=slice(0, FEW_TRIALS))}
            for index in range(repeats):
                for step, results in written.items():
                    path = Path(folder) / f"{step}-{index}.nc"
                    runs.setdefault(step, []).append(
                        _timing(lambda: write_netcdf(results, path, checksums=True))
                    )
                    path.unlink()
            for index in range(repeats):
                path = Path(folder) / f"bytes-{index}.bin"
                made = simulate(design, scenario, n_trials, random_seed=1, progress=False)
                timing = _timing(lambda made=made, path=path: write_bytes(made, path))
                runs.setdefault("bytes_alone", []).append(timing)
                path.unlink()
    finally:
        store._Store.save = save  # type: ignore[method-assign]
        store._Store.finish = finish  # type: ignore[method-assign]
    seconds = {
        step: {clock: statistics.median(run[clock] for run in timings) for clock in CLOCKS}
        for step, timings in runs.items()
    }
    # Fractions of the simulation, each the median over the repeats of a ratio to the run
    # without path just before (pairs drift together on a loaded machine): the run with
    # path, the batches, the final file and the save in all (batches and final file).
    runs["save"] = [
        {clock: batches[clock] + final[clock] for clock in CLOCKS}
        for batches, final in zip(runs["batches"], runs["final"], strict=True)
    ]
    fractions = {
        clock: {
            step: statistics.median(
                run[clock] / plain[clock]
                for run, plain in zip(runs[step], runs["plain"], strict=True)
            )
            for step in ("stored", *PARTS, "save")
        }
        for clock in CLOCKS
    }
    return {
        "n_trials": n_trials,
        "few_trials": FEW_TRIALS,
        "repeats": repeats,
        "seconds": seconds,
        "fractions": fractions,
        "load_average_before": load_before,
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def write_report(results: dict) -> Path:
    seconds, fractions = results["seconds"], results["fractions"]
    seconds["save"] = {
        clock: seconds["batches"][clock] + seconds["final"][clock] for clock in CLOCKS
    }
    rows = [
        ("simulation (no `path`)", "plain"),
        ("with `path`", "stored"),
        (
            "saving the batches (encode, checksum, write, manifest line; with the default "
            "`save_every` of 1 s, none in a run this short: the final file holds its trials)",
            "batches",
        ),
        ("the final file (netCDF written once, batches removed)", "final"),
        ("**saving in all (batches + final file)**", "save"),
    ]
    lines = []
    for label, step in rows:
        cells = [label]
        for clock in CLOCKS:
            fraction = 1.0 if step == "plain" else fractions[clock][step]
            bold = "**" if step == "save" else ""
            cells += [f"{seconds[step][clock]:.4f}", f"{bold}{fraction:.3f}{bold}"]
        lines.append("| " + " | ".join(cells) + " |")
    alone = ""
    if "file_few" in seconds:  # measured since the fixed cost was added
        plain = seconds["plain"]
        shares = {
            step: {clock: seconds[step][clock] / plain[clock] for clock in CLOCKS}
            for step in ("file_alone", "file_few")
        }
        alone_ms = {step: 1e3 * seconds[step]["cpu"] for step in ("file_alone", "file_few")}
        alone = (
            f"\nThe netCDF file alone (`write_netcdf` of the results with their checksums, medians of "
            f"{results['repeats']}, CPU time): all {results['n_trials']} trials "
            f"{alone_ms['file_alone']:.1f} ms ({shares['file_alone']['cpu']:.3f} of the "
            f"simulation); the same variables and attributes with {results['few_trials']} trials "
            f"{alone_ms['file_few']:.1f} ms ({shares['file_few']['cpu']:.3f}): the cost of the "
            "file's objects, whatever the data.\n"
        )
    if "bytes_alone" in seconds:  # measured since the floor was added
        floor = seconds["bytes_alone"]["cpu"]
        alone += (
            f"\nWhat any file of these results costs at least: their values' bytes as the "
            f"netCDF file stores them, each variable's CRC-32 taken and written in no format at all, right "
            f"after the simulation that made them (`write_bytes`, medians of "
            f"{results['repeats']}, CPU time): {1e3 * floor:.1f} ms "
            f"({floor / seconds['plain']['cpu']:.3f} of the simulation).\n"
        )
    before = ", ".join(f"{value:.2f}" for value in results["load_average_before"])
    after = ", ".join(f"{value:.2f}" for value in results["load_average"])
    table = "\n".join(lines)
    body = f"""
`simulate(boin_design(0.3, {list(LEVELS)}), BinaryToxicityScenario(..., {list(P_TRUE)}),
{results["n_trials"]}, random_seed=1)` on one process, without and with `path`, alternately;
{results["repeats"]} runs of each: medians in seconds of wall clock and of the process's CPU time,
and the medians of their ratios to the simulation (the run without `path` just before).
(The seconds of saving in all are the sum of the two medians above them.)

| | wall s | fraction | CPU s | fraction |
|---|---|---|---|---|
{table}
{alone}
Load averages (1, 5, 15 min) at the start: {before}; at the end: {after}; on
{results["cpu_count"]} CPUs (Python {results["python"]}). The machine is shared: the wall
clock counts the time other processes held the CPU, the CPU time does not (both grow when other
processes share the CPU's caches).
"""
    return report.write_page(
        "store_overhead",
        "Cost of the result store (BOIN, with and without path)",
        body,
        make="bench-store",
        runs=["bench_store.py"],
        rebuild="bench_store.py --report-only",
        data=[DATA],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    data = report.RESULTS / DATA
    if args.report_only:
        results = json.loads(data.read_text())
    else:
        results = measure(args.trials, args.repeats)
        data.write_text(json.dumps(results, indent=2) + "\n")
    print(write_report(results))


if __name__ == "__main__":
    main()
