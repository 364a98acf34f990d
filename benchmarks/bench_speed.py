"""Benchmark dosezoo on the work of the R packages' reference runs (no R needed).

Run ``make bench-speed`` or ``python benchmarks/bench_speed.py`` (options: ``--trials N`` for
the crmsim runs, ``--boin-trials N``, ``--sim-trials N`` for the trials-per-second runs,
``--repeats N``, ``--report-only``). On one core (BLAS pinned to one thread, ``n_jobs=1``)
it measures, each simulation figure the median of ``--repeats`` runs (3; the machine is shared,
and one run can be a fifth slower than the next), each run with fresh designs (their memos
empty):

- the machine: a fixed work in pure Python (the sum of the squares below 10^7), CPU seconds,
  so that the figures of runs on two machines can be compared;
- dfcrm's ``crmsim`` work: 1000 trials of 24 patients, cohorts of 3 and of 1, skeleton
  (0.05, 0.12, 0.25, 0.40, 0.55), target 0.25, true DLT rates (0.05, 0.10, 0.20, 0.35, 0.50),
  the empiric model with dfcrm's prior, starting at the lowest level without skipping and
  without a safety stop (crmsim has none): process CPU seconds of ``simulate``; then the same
  with crmsim's coherent restriction (its default ``restrict = TRUE``; the rule then reads the
  last cohort too, which the lockstep engine keeps per trial), whether its results are
  identical to the runs without it (1: the restriction never binds in this setting, so the
  first figures time crmsim's own rule) and its CPU seconds;
- BOIN's ``get.oc`` work: 2000 trials of 10 cohorts of 3, target 0.3, true rates
  (0.05, 0.15, 0.30, 0.45, 0.60) (get.oc's example): CPU seconds;
- one decision of CRM, BLRM and EWOC on the 5 levels of ``bench_binary.py`` at its mid-trial
  data (15 patients), as on a count state new to the design (a fresh copy of the data, the
  posterior memo emptied, the model's constants kept: ``bench_binary.decision_seconds``):
  median wall microseconds of :data:`DECISION_REPEATS` decisions (enough for a median that
  does not move with the first few, slower ones), and apart its posterior and the rule's
  choice on it (the rest is the design's conduct: its hard overdose limit, stopping and
  record); in ``--repeats`` blocks, each timing the three designs in turn, the figure the
  median of the blocks;
- trials per second of CRM, BLRM and EWOC on the second binary OC scenario of
  ``bench_binary.py`` (36 patients, cohorts of 3).

Each figure comes with the load averages before it (the machine may be shared), and the page
lists every run or block behind a goal's figure, to show how far they spread. The figures are
merged into ``docs/results/speed.json`` (read, this script's keys updated, written back: other
scripts add theirs to the same file), and the page ``speed.md`` shows every figure in it.
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

import bench_binary
import report

from dosezoo.designs import boin_design, crm_design
from dosezoo.models.crm import CRM
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate

RESULTS = report.RESULTS
JSON = RESULTS / "speed.json"

CRMSIM_SKELETON = (0.05, 0.12, 0.25, 0.40, 0.55)
CRMSIM_TARGET = 0.25
CRMSIM_TRUTH = (0.05, 0.10, 0.20, 0.35, 0.50)
CRMSIM_SIZE = 24
GETOC_TARGET = 0.3
GETOC_TRUTH = (0.05, 0.15, 0.30, 0.45, 0.60)
GETOC_COHORTS = 10
SEED = 1009
#: Decisions timed per design (about 0.05 to 0.6 s each).
DECISION_REPEATS = 1000
#: What each key measures (the page's table).
LABELS = {
    "machine_reference_cpu_s": "the machine: a fixed work in pure Python, the sum of the "
    "squares below 10^7 (CPU s; to compare the runs of two machines)",
    "crm_crmsim_cohort3_cpu_s": "CRM, crmsim work, cohorts of 3 (CPU s)",
    "crm_crmsim_cohort1_cpu_s": "CRM, crmsim work, cohorts of 1 (CPU s)",
    "crm_crmsim_trials": "trials of the crmsim runs",
    "crm_crmsim_cohort3_coherent_cpu_s": "CRM, crmsim work with its coherent restriction, "
    "cohorts of 3 (CPU s)",
    "crm_crmsim_cohort1_coherent_cpu_s": "CRM, crmsim work with its coherent restriction, "
    "cohorts of 1 (CPU s)",
    "crm_crmsim_cohort3_coherent_identical": "the same results with the restriction as "
    "without, cohorts of 3 (1: yes)",
    "crm_crmsim_cohort1_coherent_identical": "the same results with the restriction as "
    "without, cohorts of 1 (1: yes)",
    "boin_2000_trials_cpu_s": "BOIN, get.oc work (CPU s)",
    "boin_trials": "trials of the BOIN run",
    "crm_decision_us": "CRM, one decision (us)",
    "blrm_decision_us": "BLRM, one decision (us)",
    "ewoc_decision_us": "EWOC, one decision (us)",
    **{
        f"{name.lower()}_decision_{part}_us": f"{name}, one decision: {what} (us)"
        for name in ("CRM", "BLRM", "EWOC")
        for part, what in (("posterior", "its posterior"), ("rule", "the rule's choice"))
    },
    "crm_trials_per_s": "CRM, binary OC scenario (trials/s)",
    "blrm_trials_per_s": "BLRM, binary OC scenario (trials/s)",
    "ewoc_trials_per_s": "EWOC, binary OC scenario (trials/s)",
    "threepnd_study_wall_s": "3PND study, 36 configurations (wall s)",
    "lse_study_wall_s": "LSE comparison study (wall s)",
    "cli_next_dose_cold_wall_s": "dosezoo next-dose from a cold process (wall s)",
    "cli_next_dose_cold_cpu_s": "dosezoo next-dose from a cold process (CPU s)",
    "cli_help_wall_s": "dosezoo --help from a cold process (wall s)",
    "cli_help_cpu_s": "dosezoo --help from a cold process (CPU s)",
    "import_dosezoo_wall_s": "import dosezoo from a cold process (wall s)",
    "import_dosezoo_cpu_s": "import dosezoo from a cold process (CPU s)",
}


def load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def cpu_seconds(call) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def crmsim_design(cohort_size: int, *, coherent: bool = False):
    model = CRM(CRMSIM_SKELETON, CRMSIM_TARGET)
    return crm_design(
        model,
        cohort_size=cohort_size,
        sample_size=CRMSIM_SIZE,
        safety_cutoff=None,
        coherent=coherent,
    )


def crmsim(cohort_size: int, n_trials: int, *, coherent: bool = False) -> tuple[float, object]:
    """CPU seconds of the crmsim work and its results."""
    design = crmsim_design(cohort_size, coherent=coherent)
    scenario = BinaryToxicityScenario(
        design.dose_levels, CRMSIM_TRUTH, CRMSIM_TARGET, planned_sample_size=CRMSIM_SIZE
    )
    results = []
    seconds = cpu_seconds(
        lambda: results.append(
            simulate(design, scenario, n_trials, random_seed=SEED, progress=False)
        )
    )
    return seconds, results[0]


def same_trials(a, b) -> bool:
    """Whether two runs gave every patient the same dose and outcome, and the same MTD."""
    return all(a[name].equals(b[name]) for name in ("dose", "dlt", "recommended_dose"))


def getoc(n_trials: int) -> float:
    levels = (1.0, 2.0, 3.0, 4.0, 5.0)
    design = boin_design(GETOC_TARGET, levels, sample_size=3 * GETOC_COHORTS)
    scenario = BinaryToxicityScenario(
        levels, GETOC_TRUTH, GETOC_TARGET, planned_sample_size=3 * GETOC_COHORTS
    )
    return cpu_seconds(
        lambda: simulate(design, scenario, n_trials, random_seed=SEED, progress=False)
    )


def decision_us(design, data) -> float:
    """Median wall microseconds of ``design.next(data)`` on a count state new to the design."""
    return 1e6 * bench_binary.decision_seconds(design, "next", data, DECISION_REPEATS)


def posterior_and_rule_us(design, data) -> tuple[float, float]:
    """Median wall microseconds of a decision's posterior and of the rule's choice on it.

    ``design.posterior(data)``, then ``design.rule.choose`` on it, timed apart on a count state
    new to the design; :func:`decision_us` adds the design's conduct (its hard overdose limit,
    its stopping and the decision's record).
    """
    seconds = bench_binary.stage_seconds(
        design,
        data,
        DECISION_REPEATS,
        lambda fresh, _: design.posterior(fresh),
        lambda fresh, posterior: design.rule.choose(posterior, fresh),
    )
    return 1e6 * seconds[0], 1e6 * seconds[1]


def trials_per_second(name: str, scenario, n_trials: int) -> float:
    """Trials per CPU second of design ``name`` of ``bench_binary``, a fresh design's run."""
    design = bench_binary.designs()[name]
    simulate(design, scenario, 2, random_seed=0, progress=False)  # compile and warm
    seconds = cpu_seconds(
        lambda: simulate(design, scenario, n_trials, random_seed=SEED, progress=False)
    )
    return n_trials / seconds


def machine_reference() -> float:
    """CPU seconds of a fixed pure-Python work: figures of two machines compare through it."""
    return cpu_seconds(lambda: sum(i * i for i in range(10**7)))


def measure(args: argparse.Namespace) -> dict:
    figures: dict[str, float | int] = {}
    loads: dict[str, list[float]] = {}
    #: Every run or block behind a goal's figure, so the page shows how far they spread.
    runs_of: dict[str, list[float]] = {}
    loads["machine_reference_cpu_s"] = load()
    figures["machine_reference_cpu_s"] = round(
        statistics.median(machine_reference() for _ in range(args.repeats)), 3
    )
    crmsim(3, 2)  # compile the kernels before timing
    for cohort in (3, 1):
        results = {}
        for coherent in (False, True):
            key = f"crm_crmsim_cohort{cohort}{'_coherent' if coherent else ''}_cpu_s"
            loads[key] = load()
            runs = [crmsim(cohort, args.trials, coherent=coherent) for _ in range(args.repeats)]
            figures[key] = round(statistics.median(seconds for seconds, _ in runs), 3)
            runs_of[key] = [round(seconds, 3) for seconds, _ in runs]
            results[coherent] = runs[0][1]
            print(key, figures[key], loads[key], flush=True)
        identical = same_trials(results[False], results[True])
        figures[f"crm_crmsim_cohort{cohort}_coherent_identical"] = int(identical)
    figures["crm_crmsim_trials"] = args.trials
    getoc(2)
    loads["boin_2000_trials_cpu_s"] = load()
    figures["boin_2000_trials_cpu_s"] = round(
        statistics.median(getoc(args.boin_trials) for _ in range(args.repeats)), 3
    )
    figures["boin_trials"] = args.boin_trials
    designs = bench_binary.designs()
    data = bench_binary.mid_trial_data()
    # In --repeats blocks, the designs in turn within each: the machine's speed drifts over
    # seconds, and a figure of one block is that block's luck.
    for block in range(args.repeats):
        for name in ("CRM", "BLRM", "EWOC"):
            key = f"{name.lower()}_decision_us"
            if not block:
                loads[key] = load()
            runs_of.setdefault(key, []).append(round(decision_us(designs[name], data), 1))
            parts = [f"{name.lower()}_decision_{part}_us" for part in ("posterior", "rule")]
            if not block:
                loads.update(dict.fromkeys(parts, load()))
            for part, us in zip(parts, posterior_and_rule_us(designs[name], data), strict=True):
                runs_of.setdefault(part, []).append(round(us, 1))
    for key, values in runs_of.items():
        if "_decision_" in key:
            figures[key] = round(statistics.median(values), 1)
            print(key, figures[key], values, loads[key], flush=True)
    scenario = list(bench_binary.scenarios().values())[1]
    for name in ("CRM", "BLRM", "EWOC"):
        key = f"{name.lower()}_trials_per_s"
        loads[key] = load()
        rates = [trials_per_second(name, scenario, args.sim_trials) for _ in range(args.repeats)]
        figures[key] = round(statistics.median(rates), 1)
        runs_of[key] = [round(rate, 1) for rate in rates]
        print(key, figures[key], loads[key], flush=True)
    return {"figures": figures, "loads": loads, "runs": runs_of}


def merge(measured: dict, command: str) -> dict:
    """Read speed.json, replace this script's figures and loads, write it back."""
    saved = json.loads(JSON.read_text()) if JSON.exists() else {}
    saved.update(measured["figures"])
    saved.setdefault("load_averages", {}).update(measured["loads"])
    saved["runs"] = measured["runs"]
    saved.setdefault("commands", {})["bench_speed.py"] = command
    saved.setdefault("machine", {}).update(
        {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()}
    )
    JSON.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    return saved


def markdown(saved: dict) -> str:
    loads = saved.get("load_averages", {})
    rows = [
        f"| {LABELS.get(key, key)} | `{key}` | {value} | {', '.join(map(str, loads.get(key, [])))} |"
        for key, value in saved.items()
        if isinstance(value, int | float)
    ]
    commands = "\n".join(
        [
            *(
                f"- `{report.PYTHON} benchmarks/{command}`"
                for command in saved.get("commands", {}).values()
            ),
            # the studies' wall times are their own runs', copied by bench_startup.py
            *(
                f"- `{report.PYTHON} {command.removeprefix('python ')}` "
                f"(`{key.removesuffix('_command')}`)"
                for key, command in sorted(saved.items())
                if key.endswith("_wall_s_command") and command
            ),
        ]
    )
    machine = saved.get("machine", {})
    spread = [
        f"- `{key}`: {', '.join(map(str, values))}"
        for key, values in sorted(saved.get("runs", {}).items())
    ]
    return "\n".join(
        [
            "One core (`n_jobs=1`, BLAS on one thread) unless the key says wall time on more. "
            "Load averages (1, 5, 15 min) are read just before each figure: on a shared "
            "machine a figure is only as good as its load.",
            "",
            "| what | key | value | load averages before |",
            "|---|---|---|---|",
            *rows,
            "",
            "The runs that wrote these figures:",
            "",
            commands,
            "",
            *(
                [
                    "Each run or block behind the figures above, in order (a figure is their "
                    "median; decisions: a block times every design in turn, its median of "
                    "many calls; the spread is the machine's, from run to run):",
                    "",
                    *spread,
                    "",
                ]
                if spread
                else []
            ),
            f"Machine: {machine.get('platform', '?')}, Python {machine.get('python', '?')}, "
            f"{machine.get('cpus', '?')} CPUs.",
            "",
            "The crmsim work is dfcrm's: 24 patients, skeleton (0.05, 0.12, 0.25, 0.40, 0.55), "
            "target 0.25, true rates (0.05, 0.10, 0.20, 0.35, 0.50), empiric model with "
            "dfcrm's prior, start at the lowest level, no skipping, no safety stop. The BOIN "
            "work is get.oc's example: 10 cohorts of 3, target 0.3, true rates (0.05, 0.15, "
            "0.30, 0.45, 0.60). Decisions are `design.next` on the mid-trial data of "
            "`bench_binary.py`, each on a fresh copy of the data with the posterior memo "
            "emptied, as on a count state new to the design; apart, the decision's posterior "
            "(`design.posterior`) and the rule's choice on it (`design.rule.choose`), the rest "
            "of a decision being the design's conduct (its hard overdose limit, stopping and "
            "record). Trials per second are on its "
            "second scenario (Seno et al. 2025, scenario 16), 36 patients in cohorts of 3, the "
            "model-based designs simulated in lockstep with decisions kept by count state.",
        ]
    )


def write_report(saved: dict) -> None:
    report.write_page(
        "speed",
        "Speed against the R packages' reference work",
        markdown(saved),
        make="bench-speed",
        runs=["bench_speed.py"],
        rebuild="bench_speed.py --report-only",
        data=["speed.json"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="trials of each crmsim run")
    parser.add_argument("--boin-trials", type=int, default=2000, help="trials of the BOIN run")
    parser.add_argument("--sim-trials", type=int, default=500, help="trials per second runs")
    parser.add_argument("--repeats", type=int, default=3, help="runs per simulation figure")
    parser.add_argument("--report-only", action="store_true", help="rewrite the page only")
    args = parser.parse_args(argv)
    if args.report_only:
        write_report(json.loads(JSON.read_text()))
        return
    command = " ".join(["bench_speed.py", *(argv if argv is not None else sys.argv[1:])])
    write_report(merge(measure(args), command))


if __name__ == "__main__":
    main()
