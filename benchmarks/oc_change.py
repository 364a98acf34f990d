"""How far a study's operating characteristics moved between two revisions, in Monte Carlo SEs.

``python benchmarks/oc_change.py REVISION docs/results/lee2023_study.csv`` compares the table
as committed at ``REVISION`` with the file as it is now: for every metric ``m`` with a column
``m_mcse`` (or ``m_se``), the cells that differ, the largest absolute difference and the largest
``|difference| / sqrt(mcse_before^2 + mcse_now^2)`` over the rows (matched on the columns
before the first metric, which name a configuration); with ``--by COLUMN`` (one of those), the
mean difference of each metric per value of that column too (e.g. per design: the direction
of a change).
"""

import argparse
import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="git revision of the table before")
    parser.add_argument("table", type=Path, help="CSV with metric columns and their _mcse")
    parser.add_argument(
        "--by", help="a configuration column: also the mean difference of each metric per value"
    )
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    relative = args.table.resolve().relative_to(root)
    committed = subprocess.run(
        ["git", "-C", str(root), "show", f"{args.revision}:{relative}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    before, now = pd.read_csv(io.StringIO(committed)), pd.read_csv(args.table)
    suffix = next(s for s in ("_mcse", "_se") if any(c.endswith(s) for c in now.columns))
    metrics = [c.removesuffix(suffix) for c in now.columns if c.endswith(suffix)]
    keys = list(now.columns[: list(now.columns).index(metrics[0])])
    both = before.merge(now, on=keys, suffixes=("_before", "_now"), validate="one_to_one")
    print(f"{relative}: {len(both)} rows matched on {', '.join(keys)}")
    for metric in metrics:
        difference = both[f"{metric}_now"] - both[f"{metric}_before"]
        se = np.hypot(both[f"{metric}{suffix}_before"], both[f"{metric}{suffix}_now"])
        z = np.abs(difference)[se > 0] / se[se > 0]
        unexplained = int(((difference != 0) & (se == 0)).sum())
        print(
            f"{metric}: {int((difference != 0).sum())} cells differ, largest |difference| "
            f"{np.abs(difference).max():.4g}, largest |difference| / SE "
            f"{z.max() if z.size else 0.0:.3f}"
            + (f", {unexplained} differ where both SEs are 0" if unexplained else "")
        )
        if args.by:
            means = difference.groupby(both[args.by]).mean()
            print(
                "  mean difference by "
                + args.by
                + ": "
                + ", ".join(f"{value} {mean:+.3g}" for value, mean in means.items())
            )


if __name__ == "__main__":
    main()
