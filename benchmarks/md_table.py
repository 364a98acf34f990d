"""A pandas DataFrame as a GitHub markdown table (pandas' to_markdown needs tabulate)."""

import pandas as pd


def md_table(frame: pd.DataFrame) -> str:
    """Return ``frame`` (index dropped) as a markdown table, cells as ``str``."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
