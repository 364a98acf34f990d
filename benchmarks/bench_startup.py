"""Start-up of the command line and the wall time of the two long studies, into speed.json.

- ``cli``: ``import dosezoo``, ``dosezoo --help`` and ``dosezoo next-dose`` on the examples of
  the exact engines (3PND quadrature on the O6-BG first cohorts; CRM, BLRM and EWOC grids on the
  binary cohorts), each in a cold process, wall and CPU seconds, median of ``--repeats`` runs.
  ``cli_next_dose_cold_wall_s`` (``_cpu_s``) is the slowest of those medians. The package's
  bytecode is compiled and each command run once, untimed, first: what an installed package
  has (see :func:`prepare_cli`).
- ``studies``: the wall times that ``make study`` (Lee 2023, 36 configurations x 1000 trials)
  and ``make lse-study`` (Seno et al. 2025, 5 designs x 20 scenarios x 2000 trials) recorded
  in ``lee2023_study.json`` and ``lse_comparison.json``, taken only from a full-size run.
- ``profile``: where the two studies spend their time, by cProfile, at a few trials per cell
  (one Lee configuration with the largest N, one LSE cell), into ``study_profiles.md``.

``docs/results/speed.json`` is read, updated and written back, so the keys other benchmarks
write there survive. Run ``make bench-startup`` (cli, studies, profile). Load averages are
recorded with every figure: on a busy machine they are upper bounds.
"""

import argparse
import compileall
import cProfile
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from report import RESULTS, ROOT, write_page

SPEED = RESULTS / "speed.json"
PROFILES = RESULTS / "study_profiles.json"
DOSEZOO = str(Path(sys.executable).with_name("dosezoo"))
#: (label, data, configuration) of the next-dose commands timed.
NEXT_DOSE = (
    ("3pnd", "o6bg_first_cohorts.csv", "o6bg_accelerated.toml"),
    ("crm", "binary_cohorts.csv", "crm.toml"),
    ("blrm", "binary_cohorts.csv", "blrm.toml"),
    ("ewoc", "binary_cohorts.csv", "ewoc.toml"),
)
#: The full studies: their results file, the key of their trials, its full value, our key.
STUDIES = (
    ("lee2023_study.json", "trials_per_configuration", 1000, "threepnd_study_wall_s"),
    ("lse_comparison.json", "trials_per_cell", 2000, "lse_study_wall_s"),
)


def update_speed(values: dict, loads: dict | None = None, command: str | None = None) -> None:
    """Read speed.json, set ``values``, write it back (other benchmarks' keys survive).

    ``loads`` gives the load averages before each figure (the page shows them next to it), and
    ``command`` the run that wrote the figures (listed on the page).
    """
    data = json.loads(SPEED.read_text()) if SPEED.exists() else {}
    data.update(values)
    if loads:
        data["load_averages"] = {**data.get("load_averages", {}), **loads}
    if command:
        data["commands"] = {**data.get("commands", {}), "bench_startup.py": command}
    SPEED.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")


def cold_run(command: list[str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of ``command`` in a fresh process.

    The CPU time is the process's own, which a busy machine inflates far less than the wall.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def prepare_cli(commands: list[list[str]]) -> None:
    """Compile the package's bytecode and run each command once, untimed.

    ``pip install`` compiles the bytecode of a package, and an editable install writes it on its
    first import, unless ``PYTHONDONTWRITEBYTECODE`` is set (as in sandboxes and CI): then every
    start compiles each dosezoo module from its source again, about 0.2 s that no installed
    package pays. The first run of a command also fills numba's on-disk cache of its kernels
    (tens of seconds after a kernel's source changed).
    """
    with (ROOT / "pyproject.toml").open("rb") as stream:
        directories = tomllib.load(stream)["tool"]["setuptools"]["package-dir"].values()
    for directory in dict.fromkeys(directories):
        compileall.compile_dir(ROOT / directory, quiet=1)
    for command in commands:
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)


def measure_cli(repeats: int) -> dict:
    commands = {
        "import_dosezoo": [sys.executable, "-c", "import dosezoo"],
        "cli_help": [DOSEZOO, "--help"],
    }
    next_dose = {
        label: [DOSEZOO, "next-dose", f"examples/{data}", "--config", f"examples/{config}"]
        for label, data, config in NEXT_DOSE
    }
    prepare_cli([*commands.values(), *next_dose.values()])
    load = os.getloadavg()
    values: dict = {}
    for key, command in commands.items():
        wall, cpu = cold_run(command, repeats)
        values[f"{key}_wall_s"], values[f"{key}_cpu_s"] = round(wall, 3), round(cpu, 3)
    per_example = {label: cold_run(command, repeats) for label, command in next_dose.items()}
    values["cli_next_dose_cold_wall_s"] = round(max(w for w, _ in per_example.values()), 3)
    values["cli_next_dose_cold_cpu_s"] = round(max(c for _, c in per_example.values()), 3)
    values["cli_next_dose_cold_by_example"] = {
        k: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for k, (w, c) in per_example.items()
    }
    values["cli_load_average"] = [round(x, 2) for x in (*load, *os.getloadavg())]
    values["cli_command"] = f"python benchmarks/bench_startup.py --part cli --repeats {repeats}"
    return values


def cli_loads(values: dict) -> dict:
    """Return the load averages before the run for each of its figures (for the page)."""
    before = values["cli_load_average"][:3]
    return {key: before for key, value in values.items() if isinstance(value, int | float)}


def collect_studies() -> tuple[dict, dict]:
    """Return the full studies' wall times and commands, and the load averages before each."""
    values, loads = {}, {}
    for file, trials_key, full, key in STUDIES:
        path = RESULTS / file
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        if data.get(trials_key) != full or "wall_seconds" not in data:
            print(f"{file}: not a full-size run ({trials_key} = {data.get(trials_key)}); skipped")
            continue
        values[key] = data["wall_seconds"]
        values[f"{key}_command"] = data.get("command", "")
        if "load_average_before" in data:
            loads[key] = data["load_average_before"]
    return values, loads


def profile(run, top: int) -> tuple[float, list[dict]]:
    """Wall seconds of ``run()`` and its ``top`` functions by own time."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(run)
    wall = time.perf_counter() - start
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (file, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = Path(file)
        label = f"{where.parent.name}/{where.name}:{line}({name})" if line else name
        rows.append({"function": label, "calls": calls, "own_s": own, "cumulative_s": cumulative})
    rows.sort(key=lambda row: -row["own_s"])
    return wall, rows[:top]


def measure_profiles(lee_trials: int, lse_trials: int, top: int) -> dict:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import lse_comparison

    from dosezoo.scenarios import seno2025_scenario, seno2025_target
    from dosezoo.simulate import simulate
    from dosezoo.studies import lee2023_configurations

    largest = max(lee2023_configurations(), key=lambda c: c.design.conduct.sample_size)
    lse = lse_comparison.make_design("LSE_lambda1", seno2025_target(1))
    cells = {
        f"Lee (2023): {largest.name}, {lee_trials} trials": (
            lambda n: simulate(largest.design, largest.scenario, n, random_seed=1, progress=False),
            lee_trials,
        ),
        f"Seno et al. (2025): LSE (lambda = 1), scenario 1, {lse_trials} trials": (
            lambda n: simulate(lse, seno2025_scenario(1), n, random_seed=1, progress=False),
            lse_trials,
        ),
    }
    load = os.getloadavg()
    out = {}
    for label, (run, trials) in cells.items():
        run(2)  # warm: the imports and the numba kernels' cache are paid once per process
        run_wall, rows = profile(lambda run=run, trials=trials: run(trials), top)
        out[label] = {"wall_s": round(run_wall, 3), "top": rows}
    return {
        "cells": out,
        "load_average": [round(x, 2) for x in (*load, *os.getloadavg())],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "command": (
            f"python benchmarks/bench_startup.py --part profile --lee-trials {lee_trials} "
            f"--lse-trials {lse_trials}"
        ),
    }


def write_profiles_page(data: dict) -> None:
    lines = [
        f"Measured by `{data['command']}`.",
        "",
        f"cProfile of one cell of each study, in one process after a 2-trial warm-up, on {data['machine']} (load "
        f"averages {data['load_average']}, before and after). Own time: in the function itself.",
    ]
    for label, cell in data["cells"].items():
        lines += ["", f"## {label}: {cell['wall_s']:.2f} s wall under the profiler", ""]
        lines += ["| function | calls | own (s) | cumulative (s) |", "|---|---|---|---|"]
        lines += [
            f"| `{r['function']}` | {r['calls']} | {r['own_s']:.3f} | {r['cumulative_s']:.3f} |"
            for r in cell["top"]
        ]
    write_page(
        "study_profiles",
        "Where the long studies spend their time",
        "\n".join(lines),
        make="bench-startup",
        runs=["bench_startup.py"],
        rebuild="bench_startup.py --report-only",
        data=["study_profiles.json"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("cli", "studies", "profile", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lee-trials", type=int, default=20)
    parser.add_argument("--lse-trials", type=int, default=4)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    if args.report_only:
        write_profiles_page(json.loads(PROFILES.read_text()))
        return
    if args.part in ("cli", "all"):
        values = measure_cli(args.repeats)
        command = f"bench_startup.py --part cli --repeats {args.repeats}"
        update_speed(values, cli_loads(values), command)
    if args.part in ("studies", "all"):
        update_speed(*collect_studies())
    if args.part in ("profile", "all"):
        data = measure_profiles(args.lee_trials, args.lse_trials, args.top)
        PROFILES.write_text(json.dumps(data, indent=2) + "\n")
        write_profiles_page(data)
        print(f"wrote {RESULTS / 'study_profiles.md'}")
    if args.part != "profile":
        print(f"updated {SPEED}")


if __name__ == "__main__":
    main()
