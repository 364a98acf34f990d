"""Helpers the benchmark scripts share: markdown tables and generated README blocks."""

import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Where the scripts write their results and pages (committed).
RESULTS = ROOT / "docs" / "results"
#: Where the long studies keep their per-cell netCDF runs, to resume (not committed).
RUNS = ROOT / "benchmarks" / "runs"


def md_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index dropped) as a markdown table, cells as ``str``.

    pandas' ``to_markdown`` would need the tabulate package.
    """
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def replace_readme_block(name: str, content: str, readme: Path = README) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in a README."""
    text = readme.read_text()
    pattern = rf"<!-- {name}:start -->.*<!-- {name}:end -->"
    if not re.search(pattern, text, flags=re.S):
        raise KeyError(f"{readme} has no block {name!r}")
    block = f"<!-- {name}:start -->\n{content}\n<!-- {name}:end -->"
    readme.write_text(re.sub(pattern, lambda _: block, text, flags=re.S))
