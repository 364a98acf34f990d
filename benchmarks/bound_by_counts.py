"""How often each bound on a decision acted, per saved simulation: the ``bound_by`` labels.

``python benchmarks/bound_by_counts.py benchmarks/runs/lse/BO_*.nc`` reads each results file
(a cell a study saved with ``path=``) and prints, for the decisions of kind ``next``, how many
there are and how many carry each label of ``decision_bound_by`` (a decision can carry several,
comma-joined), then the same over all the files. For the latent-GP designs (LSE, BO) it also counts the decisions their
acquisition's noise guard moved to a lower dose, split by the dose the acquisition chose:
above the current dose (``guard_escalation``, an escalation within Monte Carlo noise) or at it
(``guard_stay``, a stay within noise), read from the recorded acquisition values.
"""

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from dosezoo.report import dose_levels
from dosezoo.simulate.netcdf import load_netcdf


def counts(path: Path) -> Counter:
    """Count the next-dose decisions of one file, and those bound by each label."""
    results = load_netcdf(path)
    kind = results["decision_kind"].values
    bound = results["decision_bound_by"].values[kind == "next"]
    found: Counter = Counter({"next": int(bound.size)})
    for labels in bound:
        found.update(label for label in str(labels).split(",") if label)
    if "decision_acquisition_gap_mcse" in results:
        found.update(_guard_kinds(results))
    return found


def _guard_kinds(results) -> Counter:
    """Split the decisions the acquisition's noise guard moved by the acquisition's own choice.

    The guard records ``acquisition_gap_mcse`` (the decision may carry other bounds, and an
    ``mcse`` of the overdose limit's comparisons too); the acquisition chose the admissible
    level with the largest value, above the current level (an escalation within noise) or at
    it (a stay within noise).
    """
    levels = dose_levels(results)
    acquisition = np.stack(
        [results[f"decision_acquisition_{k}"].values for k in range(levels.size)], axis=-1
    )
    admissible = np.stack(
        [results[f"decision_admissible_{k}"].values for k in range(levels.size)], axis=-1
    )
    doses, cohort = results["dose"].values, results["cohort"].values
    guarded = np.isfinite(results["decision_acquisition_gap_mcse"].values)
    found: Counter = Counter()
    for trial, decision in zip(*np.nonzero(guarded), strict=True):
        # decision d follows cohort d (given by decision d - 1): its dose is the current one
        current = int(np.searchsorted(levels, doses[trial][cohort[trial] == decision][-1]))
        values = np.where(admissible[trial, decision] == 1.0, acquisition[trial, decision], -np.inf)
        found["guard_escalation" if int(np.argmax(values)) > current else "guard_stay"] += 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="results files (netCDF)")
    args = parser.parse_args()
    every: Counter = Counter()
    for path in args.files:
        found = counts(path)
        every.update(found)
        print(_line(path.name, found))
    if len(args.files) > 1:
        print(_line(f"all {len(args.files)} files", every))


def _line(name: str, found: Counter) -> str:
    shown = ", ".join(
        f"{label} {number}" for label, number in sorted(found.items()) if label != "next"
    )
    return f"{name}: {found['next']} next-dose decisions; {shown}"


if __name__ == "__main__":
    main()
