"""Seed 001's O6-BG re-design (Application): one seeded trial and 1000 replicates per design.

Run ``make redesign`` (or ``python benchmarks/o6bg_redesign.py``). Writes
``benchmarks/results/o6bg_redesign.json``: for the accelerated (alpha = 0.1) and standard
(alpha = 0.05) designs, the dose path, final dose, recommendation and number of patients with
AGT < 5 fmol/mg of trial 0 of seed 2023, and the distribution of the final dose (the last
cohort's) and of the recommendation over 1000 replicated trials.
"""

import argparse
import json
import time
from pathlib import Path

from dosezoo.studies import O6BG_ALPHAS, o6bg_replicates, o6bg_scenario, o6bg_trial

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
SEED = 2023


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="replicated trials per design")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
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
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
