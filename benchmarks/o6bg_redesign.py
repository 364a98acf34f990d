"""The O6-BG re-design of Lee (2023) (Application): one seeded trial and 1000 replicates per design.

Run ``make redesign`` (or ``python benchmarks/o6bg_redesign.py``). Writes
``docs/results/o6bg_redesign.json``: for the accelerated (alpha = 0.1) and standard
(alpha = 0.05) designs, the dose path, final dose, recommendation and number of patients with
AGT < 5 fmol/mg of trial 0 of seed 2023, and the distribution of the final dose (the last
cohort's) and of the recommendation over 1000 replicated trials; and the page
``docs/results/o6bg_redesign.md`` (``--report-only`` rewrites it from the JSON).
"""

import argparse
import json
import time

from report import RESULTS, write_page

from dosezoo.studies import O6BG_ALPHAS, O6BG_LEVELS, o6bg_replicates, o6bg_scenario, o6bg_trial

SEED = 2023


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="replicated trials per design")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the page from the saved JSON"
    )
    args = parser.parse_args()
    if args.report_only:
        write_report()
        return
    started = time.perf_counter()
    record = {
        "command": f"python benchmarks/o6bg_redesign.py --trials {args.trials} --jobs {args.jobs}",
        "scenario": o6bg_scenario().describe(),
    }
    for strategy, alpha in O6BG_ALPHAS.items():
        record[strategy] = {
            "seeded_trial": o6bg_trial(alpha, SEED),
            "replicates": o6bg_replicates(alpha, args.trials, SEED, n_jobs=args.jobs),
        }
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    (RESULTS / "o6bg_redesign.json").write_text(json.dumps(record, indent=2) + "\n")
    write_report()


def write_report() -> None:
    """Write the page o6bg_redesign.md from the saved JSON."""
    record = json.loads((RESULTS / "o6bg_redesign.json").read_text())
    write_page(
        "o6bg_redesign",
        "Lee (2023): the O6-BG re-design",
        summary(record),
        make="redesign",
        runs=["o6bg_redesign.py"],
        rebuild="o6bg_redesign.py --report-only",
        data=["o6bg_redesign.json"],
    )
    print(summary(record))


def summary(record: dict) -> str:
    """Return the page's body: the seeded trials and the distribution of the final doses."""
    levels = [f"{level:g}" for level in O6BG_LEVELS]
    lines = [
        f"Made by `{record['command']}` in {record['wall_seconds']:.0f} s; all numbers, and "
        "the scenario (the real trial's AGT values, resampled with a perturbation), in "
        "[`o6bg_redesign.json`](o6bg_redesign.json).",
        "",
        "| design | seeded trial (seed 2023): cohort doses | final dose | recommended "
        "| patients with AGT < 5 | "
        + " | ".join(f"final {level}" for level in levels)
        + " | mean patients with AGT < 5 | P(any patient at 120) |",
        "|---|---|---|---|---|" + "---|" * len(levels) + "---|---|",
    ]
    for strategy in O6BG_ALPHAS:
        trial, replicates = record[strategy]["seeded_trial"], record[strategy]["replicates"]
        shares = " | ".join(f"{replicates['final_dose'][level]:.1%}" for level in levels)
        lines.append(
            f"| {strategy} (alpha = {trial['alpha']}) "
            f"| {' -> '.join(f'{d:g}' for d in trial['cohort_doses'])} "
            f"| {trial['final_dose']:g} | {trial['recommended']:g} | {trial['n_agt_below_5']} "
            f"| {shares} | {replicates['mean_n_agt_below_5']:.2f} "
            f"| {replicates['p_any_patient_above_100']:.1%} |"
        )
    lines.append(
        f"\nShares of the final dose (the last cohort's) over {replicates['n_trials']} "
        "replicated trials; the shares of the recommendation are in the JSON file."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
