"""Reports of a simulation: selection and allocation per dose, figures, and one HTML file.

`per_dose` reads the selection (fraction of trials recommending each dose, with its binomial
Monte Carlo standard error sqrt(p (1 - p) / n)) and the allocation (patients per trial at each
dose, with the standard error of their mean) from the results of `dosezoo.simulate.simulate`;
`dosezoo report` prints them. A design of continuous doses without dose levels (3PND, EWOC's
continuous rule, the Weibull D-optimal design) gives each trial doses of its own: past
`MAX_DOSE_ROWS` distinct doses, the rows are dose intervals of a round width.

`html_report` writes everything a protocol's statistical section needs about a simulated
design into one self-contained HTML page (inline CSS, figures as base64 PNG, no external file
or address): the operating characteristics with their Monte Carlo standard errors
(`dosezoo.simulate.operating_characteristics`), the selection, allocation and DLTs per dose,
the sample size, the duration when the trials ran in time, the stopping, the figures of the
selection and allocation and of the dose paths of a few trials, the design's and the
scenario's options as recorded in the results (``design_*``, ``scenario_*``: their
``describe()``), the package versions, and the command that reproduces the results.
"""

import base64
import html
import io
import itertools
import math
import platform
import textwrap
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dosezoo import __version__
from dosezoo.protocols import number_text
from dosezoo.simulate import operating_characteristics
from dosezoo.simulate.netcdf import load_netcdf

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

#: Attributes `dosezoo simulate` records: its command line and the text of its configuration.
COMMAND_ATTR = "simulate_command"
CONFIG_ATTR = "simulate_config"
#: Packages whose versions the report lists, as of writing it.
REPORT_PACKAGES = ("dosezoo", "pymc", "arviz", "numpy", "scipy", "xarray", "h5netcdf", "matplotlib")
#: Example trials drawn in the dose-path figure.
N_EXAMPLE_TRIALS = 4
_RUN_KEYS = ("random_seed", "n_trials", "sample_size", "cohort_size", "source_sha256")
#: Distinct doses a design without dose levels may give before the rows become intervals.
MAX_DOSE_ROWS = 12
#: Intervals the doses are split into then, at most (of a round width: 1, 2, 2.5 or 5 x 10^k).
DOSE_INTERVALS = 10


def pyplot() -> Any:
    """Matplotlib's pyplot on the Agg backend (imported on demand: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dose_text(dose: float | Sequence[float]) -> str:
    """Return a dose as text: ``40`` or, for a combination, ``(0.25,0.75)``."""
    if isinstance(dose, Sequence):
        return "(" + ",".join(map(number_text, dose)) + ")"
    return number_text(dose)


def load_results(path: Path) -> "xr.Dataset":
    """Load the netCDF results of `dosezoo.simulate.simulate`, checking that they are.

    Raises
    ------
    ValueError
        If ``path`` is a directory, missing, not netCDF, or netCDF of something else; the
        message names the path and what is wrong.
    """
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a results file of dosezoo simulate")
    if not path.is_file():
        raise ValueError(f"{path}: no such results file")
    try:
        results = load_netcdf(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a netCDF file of results ({error})") from None
    lacks = [
        f"variable {name!r}"
        for name in ("dose", "n_patients", "stop_reason", "recommended_dose")
        if name not in results
    ]
    lacks += [] if "metrics" in results.attrs else ["attribute 'metrics'"]
    lacks += [] if "trial" in results.dims else ["dim 'trial'"]
    if lacks:
        raise ValueError(
            f"{path}: a netCDF file, but not the results of dosezoo simulate (it has no "
            f"{', '.join(lacks)})"
        )
    return results


def dose_levels(results: "xr.Dataset") -> np.ndarray:
    """Return the design's dose levels from the results' attributes, else the doses seen.

    For drug combinations (results with a ``dose_column`` dim), the combinations seen or
    recommended, one per row (m, J).
    """
    if "dose_column" in results.dims:
        width = results.sizes["dose_column"]
        rows = [results["dose"].values.reshape(-1, width), recommended(results).reshape(-1, width)]
        doses = np.concatenate(rows)
        return np.unique(doses[np.all(np.isfinite(doses), axis=1)], axis=0)
    recorded = _recorded_levels(results)
    return _doses_seen(results) if recorded is None else recorded


def _dose_rows(results: "xr.Dataset") -> list[dict[str, Any]]:
    """Return the rows of the per-dose tables: ``{"dose": ...}``, with ``"interval"`` for bins.

    The dose levels (`dose_levels`); for a design without levels that gave or recommended more
    than `MAX_DOSE_ROWS` distinct doses, intervals ``[low, high)`` (the last closed) of a round
    width covering them, each row's ``dose`` its midpoint: a table of one row per dose would
    have one per trial.
    """
    if "dose_column" in results.dims:
        return [{"dose": combination.tolist()} for combination in dose_levels(results)]
    recorded = _recorded_levels(results)
    levels = _doses_seen(results) if recorded is None else recorded
    if recorded is not None or levels.size <= MAX_DOSE_ROWS:
        return [{"dose": float(level)} for level in levels]
    low, high = float(levels[0]), float(levels[-1])
    raw = (high - low) / DOSE_INTERVALS
    power = 10.0 ** math.floor(math.log10(raw))
    width = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    # k x width to 12 digits: 3 x 0.1 is 0.30000000000000004, and the edge is 0.3
    first, end = math.floor(low / width), math.ceil(high / width)
    edges = [float(f"{k * width:.12g}") for k in range(first, end + 1)]
    if edges[-1] < high:
        edges.append(float(f"{(end + 1) * width:.12g}"))
    rows = [{"dose": (a + b) / 2, "interval": [a, b]} for a, b in itertools.pairwise(edges)]
    rows[-1]["closed"] = True
    return rows


def _in_row(row: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Mask of the doses ``values`` (..., J) that fall in ``row`` (`_dose_rows`): (...)."""
    if "interval" not in row:
        return np.all(values == np.atleast_1d(row["dose"]), axis=-1)
    low, high = row["interval"]
    dose = values[..., 0]
    return (dose >= low) & ((dose <= high) if row.get("closed") else (dose < high))


def holds_target(row: dict[str, Any], targets: Sequence[float]) -> bool:
    """Whether a per-dose row is a target dose, or an interval holding one."""
    if "interval" in row:
        return bool(np.any(_in_row(row, np.reshape(targets, (-1, 1)))))
    return row["dose"] in targets


def _recorded_levels(results: "xr.Dataset") -> np.ndarray | None:
    """Return the dose levels the design or scenario records, or None when none does."""
    for key in ("design_model_dose_levels", "design_rule_dose_levels", "scenario_dose_levels"):
        value = results.attrs.get(key)
        if isinstance(value, str) and value and value != "none":
            try:
                return _as_given(results, [float(v) for v in value.split(",")])
            except ValueError:
                continue
    return None


def _doses_seen(results: "xr.Dataset") -> np.ndarray:
    """Return the distinct doses given or recommended (one dose column)."""
    doses = np.concatenate([results["dose"].values.ravel(), results["recommended_dose"].values])
    return np.unique(doses[np.isfinite(doses)])


def _as_given(results: "xr.Dataset", recorded: Sequence[float]) -> np.ndarray:
    """Return recorded dose levels as the doses the results hold, which match them exactly.

    Results written before described numbers were kept exactly recorded six significant
    digits (33.3333 for 100 / 3): such a level is the one dose given within that precision.
    """
    seen = _doses_seen(results)
    levels = np.asarray(recorded, dtype=float)
    for k, level in enumerate(levels):
        near = seen[np.isclose(seen, level, rtol=5e-6, atol=0.0)]
        if near.size == 1:
            levels[k] = near[0]
    return levels


def targets(results: "xr.Dataset") -> list[float]:
    """Return the scenario's true MTD or target doses, when its record names them.

    Empty when the scenario has no MTD (every dose overly toxic, recorded as ``"none"``).
    """
    attrs = results.attrs
    tied = attrs.get("scenario_mtd_doses")
    if isinstance(tied, str):  # every level tied for closest to the target
        return [float(dose) for dose in tied.split(",") if dose]
    if "scenario_mtd_dose" in attrs:
        mtd = attrs["scenario_mtd_dose"]
        return [] if mtd == "none" else [float(mtd)]
    if "scenario_true_mtd" in attrs:  # a continuous dose (3PND's scenario): an interval holds it
        return [float(attrs["scenario_true_mtd"])]
    levels, chosen = attrs.get("scenario_dose_levels"), attrs.get("scenario_target_levels")
    if isinstance(levels, str) and isinstance(chosen, str) and chosen != "none":
        doses = _as_given(results, [float(v) for v in levels.split(",")])
        return [float(doses[int(k)]) for k in chosen.split(",")]
    return []


def recommended(results: "xr.Dataset") -> np.ndarray:
    """Return the recommended doses: (trial[, J]), or (trial, stratum[, J]) per stratum."""
    if "recommended_dose_stratum" in results:
        return results["recommended_dose_stratum"].values
    return results["recommended_dose"].values


def selections_over_overdose_limit(results: "xr.Dataset") -> np.ndarray | None:
    """Return per trial whether the recommended dose's P(overdose) exceeds the hard limit.

    The limit is the conduct's ``max_overdose_probability``; the probability is the one the
    recommendation recorded (a trial without an MTD selected none). None when the results
    record neither (a rule without a posterior probability of overdosing, a dose per stratum,
    or results from before it was recorded).
    """
    limit = results.attrs.get("design_conduct_max_overdose_probability")
    selected = results["recommended_dose"].values
    if (
        "decision_overdose_probability" not in results
        or not isinstance(limit, int | float)
        or selected.ndim != 1
    ):
        return None
    final = results["decision_kind"].values == "recommend"
    probability = results["decision_overdose_probability"].values
    if not np.isfinite(probability[final]).any():
        return None
    return np.isfinite(selected) & np.any(final & (probability > limit), axis=1)


def selects_dose(results: "xr.Dataset") -> bool:
    """Whether the design's trials end by selecting a dose (its rule's ``selects_dose``)."""
    return bool(results.attrs.get("design_selects_dose", True))


def unselected_at_the_end(results: "xr.Dataset") -> dict[str, int]:
    """Why the trials that ran to their end selected no dose: the reason, and its trials.

    The reason is the stop_reason of the trial's recommendation (e.g. a stopping rule that
    its last cohort met, or a rule's "no MTD"); trials stopped early, which their own
    ``stop_reason`` explains, and doses per stratum are left out.
    """
    if not selects_dose(results):  # its trials end with an estimate: none "selected no dose"
        return {}
    selected = results["recommended_dose"].values
    if selected.ndim != 1 or "recommended_dose_stratum" in results:
        return {}
    unselected = (results["stop_reason"].values == "") & ~np.isfinite(selected)
    final = results["decision_kind"].values == "recommend"
    reasons = np.where(final, results["decision_stop_reason"].values, "")
    found: dict[str, int] = {}
    for trial in np.flatnonzero(unselected):
        reason = next((str(r) for r in reasons[trial] if r), "none given")
        found[reason] = found.get(reason, 0) + 1
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def per_dose(results: "xr.Dataset") -> dict[str, Any]:
    """Return the selection (fraction of trials per dose) and the allocation (patients).

    A dose is a level, or a combination (a list); for recommendations per stratum the
    selection is per stratum and dose, each a fraction of the trials (a stratum's rows and its
    share of no or other selection sum to 1), and ``no_selection`` and ``other_selection``
    are over the trials and strata (the MCSE of ``no_selection`` from the fraction per trial:
    the trials, not their strata, are independent). The allocation is per dose, over every
    stratum. ``selects_dose`` is False for a design whose trials end with an estimate, not a
    dose (the Weibull D-optimal design): its reports show the allocation alone.
    """
    rows = _dose_rows(results)
    n = results.sizes["trial"]
    combination = "dose_column" in results.dims
    dose = results["dose"].values
    chosen = recommended(results)
    per_stratum = "recommended_dose_stratum" in results
    strata = [str(s) for s in results["stratum"].values] if per_stratum else [""]
    width = results.sizes["dose_column"] if combination else 1
    picks = chosen.reshape(n, len(strata), width)  # (trial, stratum, J)
    units = n * len(strata)

    # A level matches exactly: the doses given are the levels' floats, and the levels read
    # back exactly (number_text); a tolerance merged levels below 1e-8 apart.
    selection, allocation = [], []
    for stratum_index, stratum in enumerate(strata):
        for row in rows:
            p = float(np.sum(_in_row(row, picks[:, stratum_index, :])) / n)
            record = row | {"fraction": p, "se": math.sqrt(p * (1 - p) / n)}
            if stratum:
                record["stratum"] = stratum
            selection.append(record)
    given = dose.reshape(n, -1, width)
    for row in rows:
        patients = np.sum(_in_row(row, given), axis=1).astype(float)
        se = float(np.std(patients, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        allocation.append(row | {"mean": float(patients.mean()), "se": se})
    flat = picks.reshape(units, width)
    none = ~np.all(np.isfinite(flat), axis=1)
    listed = np.zeros(units, dtype=bool)
    for row in rows:
        listed |= _in_row(row, flat)
    p_none = float(np.mean(none))
    p_other = float(np.mean(~none & ~listed))
    # The trials are the independent units: a trial's strata share its patients.
    se_none = (
        math.sqrt(p_none * (1 - p_none) / n)
        if len(strata) == 1
        else _mean_se(none.reshape(n, len(strata)).mean(axis=1))[1]
    )
    return {
        "selects_dose": selects_dose(results),
        "targets": targets(results),
        "selection": selection,
        "no_selection": {"fraction": p_none, "se": se_none},
        "other_selection": p_other,
        "allocation": allocation,
        "patients_per_trial": float(np.mean(results["n_patients"].values)),
        "patients_per_trial_se": _mean_se(results["n_patients"].values.astype(float))[1],
    }


def row_label(row: dict[str, Any]) -> str:
    """Return the text of a dose row: ``40``, ``(0.25,0.75)``, ``z1=0: (0.25,0.75)``, ``[20, 30)``.

    An interval of doses (`_dose_rows`) is written as it counts them: half-open, the last
    one of a table closed.
    """
    if "interval" in row:
        low, high = row["interval"]
        text = f"[{number_text(low)}, {number_text(high)}{']' if row.get('closed') else ')'}"
    else:
        text = dose_text(row["dose"])
    return f"{row['stratum']}: {text}" if row.get("stratum") else text


def plot_per_dose(table: dict[str, Any], title: str, *, stacked: bool = False) -> "Figure":
    """Return the figure of the selection and the allocation per dose, with 95% Monte Carlo bars.

    ``table`` is what `per_dose` returns; the scenario's target doses are drawn in green.
    With more than 12 doses (or strata and doses) the panels are 16 inches wide, side by side,
    or, ``stacked``, 10 inches wide one above the other (for a page). A design that selects no
    dose has the allocation's panel alone.
    """
    plt = pyplot()
    wide = len(table["selection"]) > 12
    if not table["selects_dose"]:
        fig, right = plt.subplots(1, 1, figsize=(10 if wide else 6, 4))
        _allocation_panel(right, table, wide)
        fig.suptitle(f"{title}  (error bars: 95% Monte Carlo intervals)", fontsize=10)
        fig.tight_layout()
        return fig
    if wide and stacked:
        fig, (left, right) = plt.subplots(2, 1, figsize=(10, 8))
    else:
        fig, (left, right) = plt.subplots(1, 2, figsize=(16 if wide else 10, 4))
    labels = [row_label(row) for row in table["selection"]] + ["none"]
    fractions = [row["fraction"] for row in table["selection"]]
    fractions.append(table["no_selection"]["fraction"])
    errors = [1.96 * row["se"] for row in table["selection"]]
    errors.append(1.96 * table["no_selection"]["se"])
    chosen = table["targets"]
    colours = [
        "tab:green" if holds_target(row, chosen) else "tab:blue" for row in table["selection"]
    ]
    left.bar(labels, fractions, yerr=errors, capsize=3, color=[*colours, "tab:gray"])
    left.set(title="Selection", xlabel="recommended dose", ylabel="fraction of trials")
    _fit_labels(left, labels, wide)
    _allocation_panel(right, table, wide)
    note = "; green: the scenario's true MTD / target doses" if chosen else ""
    fig.suptitle(f"{title}  (error bars: 95% Monte Carlo intervals{note})", fontsize=10)
    fig.tight_layout()
    return fig


def _allocation_panel(axes: Any, table: dict[str, Any], wide: bool) -> None:
    """Draw the patients per trial at each dose of `per_dose`'s table, with 95% MC bars."""
    means = [row["mean"] for row in table["allocation"]]
    spread = [1.96 * row["se"] if math.isfinite(row["se"]) else 0.0 for row in table["allocation"]]
    labels = [row_label(row) for row in table["allocation"]]
    axes.bar(labels, means, yerr=spread, capsize=3, color="tab:orange")
    _fit_labels(axes, labels, wide)
    axes.set(title="Allocation", xlabel="dose", ylabel="patients per trial (mean)")


def _fit_labels(axes: Any, labels: Sequence[str], wide: bool) -> None:
    """Turn the dose labels of a panel so that they do not overlap (intervals are long)."""
    if wide:
        axes.tick_params(axis="x", labelrotation=90, labelsize=6)
    elif sum(map(len, labels)) > 40:
        axes.tick_params(axis="x", labelrotation=45)


def dose_unit(results: "xr.Dataset") -> str | None:
    """Return the unit of the doses the design's model records, or None when it has none.

    The results record a missing value as ``"none"`` (as every design attribute).
    """
    unit = results.attrs.get("design_model_dose_unit")
    return None if unit in (None, "none") else str(unit)


def title_of(results: "xr.Dataset") -> str:
    """Return ``"<design> under <scenario>, <n> trials"``."""
    design = results.attrs.get("design_name", "design")
    scenario = results.attrs.get("scenario_name", "scenario")
    return f"{design} under {scenario}, {results.sizes['trial']} trials"


# --------------------------------------------------------------------------- the HTML report

_CSS = """
body { font-family: "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1080px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; border-bottom: 2px solid #333; padding-bottom: 0.2em; }
h2 { font-size: 1.35em; margin-top: 2em; border-bottom: 1px solid #999; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; vertical-align: top; }
th { background: #eef0f3; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { text-align: left; font-weight: bold; padding: 0.2em 0; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0 1em; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: 0.6em; white-space: pre-wrap;
      word-break: break-word; font-size: 0.85em; }
.note { color: #555; font-size: 0.9em; }
.columns { display: flex; flex-wrap: wrap; gap: 0 2.5em; align-items: flex-start; }
@media print { body { max-width: none; } section { break-before: page; } }
"""


def _text(value: object) -> str:
    """Return an attribute or a number as text: floats to 6 significant digits."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return ", ".join(_text(v) for v in value.ravel())
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "NA"


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str = "",
    table_id: str = "",
    numeric: range | None = None,
) -> str:
    """Return an HTML table; the ``numeric`` columns (default: all but the first) right-aligned."""
    attributes = f' id="{html.escape(table_id)}"' if table_id else ""
    parts = [f"<table{attributes}>"]
    if caption:
        parts.append(f"<caption>{html.escape(caption)}</caption>")
    parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        cells = [
            f'<td class="num">{html.escape(str(cell))}</td>'
            if column in (range(1, len(header)) if numeric is None else numeric)
            else f"<td>{html.escape(str(cell))}</td>"
            for column, cell in enumerate(row)
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return "\n".join(parts)


def _image(figure: "Figure", alt: str) -> str:
    """Return ``figure`` as an inline base64 PNG ``<img>`` (and close it)."""
    plt = pyplot()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean of the finite values and its Monte Carlo SE (SD / sqrt(n)); NaN SE for n < 2."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    se = float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else math.nan
    return float(x.mean()), se


def proportion(p: float, n: int) -> tuple[float, float]:
    """Return a fraction of trials and its binomial Monte Carlo SE sqrt(p (1 - p) / n)."""
    return p, math.sqrt(p * (1 - p) / n) if n else math.nan


def dlts_per_dose(results: "xr.Dataset") -> list[dict[str, Any]] | None:
    """Return the DLTs per trial at each dose (mean, Monte Carlo SE); None without DLTs.

    Only results with a binary outcome ``dlt`` (the binary and efficacy-toxicity scenarios)
    have DLTs; the doses are those of `dose_levels`.
    """
    if "dlt" not in results:
        return None
    dlt = np.nan_to_num(results["dlt"].values, nan=0.0)
    n = results.sizes["trial"]
    given = results["dose"].values.reshape(n, -1, results.sizes.get("dose_column", 1))
    table = []
    for row in _dose_rows(results):
        mean, se = _mean_se(np.sum(dlt * _in_row(row, given), axis=1))
        table.append(row | {"mean": mean, "se": se})
    return table


def _truth_columns(results: "xr.Dataset") -> dict[str, dict[float, str]]:
    """Return the scenario's truths per dose (``scenario_p_true``...), one dose column.

    A truth per dose is a scenario attribute of one number per dose level; one named
    ``*_doses`` or ``*_levels`` lists doses or levels (the true MTDs, the target levels), a set
    that may happen to have as many members as there are levels, and is no column.
    """
    levels = results.attrs.get("scenario_dose_levels")
    if "dose_column" in results.dims or not isinstance(levels, str) or levels == "none":
        return {}
    try:
        doses = _as_given(results, [float(v) for v in levels.split(",")]).tolist()
    except ValueError:
        return {}
    columns: dict[str, dict[float, str]] = {}
    for key, value in results.attrs.items():
        if not key.startswith("scenario_") or key.endswith(("_doses", "_levels")):
            continue
        if not isinstance(value, str) or len(value.split(",")) != len(doses):
            continue
        try:
            numbers = [float(v) for v in value.split(",")]
        except ValueError:
            continue
        columns[key.removeprefix("scenario_")] = {
            dose: number_text(number) for dose, number in zip(doses, numbers, strict=True)
        }
    return columns


def _per_dose_html(results: "xr.Dataset", table: dict[str, Any], index: int) -> str:
    """Return the table of selection, allocation and DLTs per dose (strata apart)."""
    dlts = dlts_per_dose(results)
    truths = _truth_columns(results)
    strata = any(row.get("stratum") for row in table["selection"])
    # per stratum, the selection has a table of its own; a design that selects none, none
    shown = not strata and table["selects_dose"]
    selected = {row_label(row): row for row in table["selection"]}
    header = ["dose", *(f"true {name}" for name in truths)]
    if shown:
        header += ["selected (fraction)", "MCSE (selected)"]
    header += ["patients per trial (mean)", "MCSE (patients)"]
    if dlts is not None:
        header += ["DLTs per trial (mean)", "MCSE (DLTs)"]
    rows = []
    for position, given in enumerate(table["allocation"]):
        key = row_label(given)
        target = " (target)" if holds_target(given, table["targets"]) else ""
        row: list[object] = [key + target]
        row += [column.get(float(given["dose"]), "") for column in truths.values()]
        if shown:
            row += [_number(selected[key]["fraction"], 3), _number(selected[key]["se"], 3)]
        row += [_number(given["mean"], 2), _number(given["se"], 2)]
        if dlts is not None:
            row += [_number(dlts[position]["mean"], 2), _number(dlts[position]["se"], 2)]
        rows.append(row)
    none = table["no_selection"]
    if shown:
        blank = [""] * len(truths)
        tail = [""] * (2 + (2 if dlts is not None else 0))
        rows.append(["none", *blank, _number(none["fraction"], 3), _number(none["se"], 3), *tail])
        other = table["other_selection"]
        if other > 0:  # a recommendation off the listed doses: the column still sums to 1
            p, se = proportion(other, results.sizes["trial"])
            rows.append(["other dose", *blank, _number(p, 3), _number(se, 3), *tail])
    parts = [
        _table(
            header,
            rows,
            caption=(
                ("Selection, allocation" if table["selects_dose"] else "Allocation")
                + f"{' and DLTs' if dlts is not None else ''} per dose"
                + (" (selection per stratum below)" if strata else "")
            ),
            table_id=f"per-dose-{index}",
        )
    ]
    if strata:
        parts.append(
            _table(
                ["stratum: dose", "selected (fraction)", "MCSE (selected)"],
                [
                    [row_label(row), _number(row["fraction"], 3), _number(row["se"], 3)]
                    for row in table["selection"]
                ]
                + [["none", _number(none["fraction"], 3), _number(none["se"], 3)]],
                caption="Selection per stratum (fraction of trials; none: of trials and strata)",
                table_id=f"selection-{index}",
            )
        )
    return "\n".join(parts)


def _trial_summary_html(results: "xr.Dataset", table: dict[str, Any], index: int) -> str:
    """Sample size, DLTs, duration and stopping per trial, with Monte Carlo SEs."""
    n = results.sizes["trial"]
    patients = results["n_patients"].values.astype(float)
    rows: list[list[object]] = []
    mean, se = _mean_se(patients)
    rows.append(
        [
            "patients per trial (sample size)",
            _number(mean, 2),
            _number(se, 2),
            f"median {np.median(patients):g}, range {patients.min():g} to {patients.max():g}",
        ]
    )
    if "dlt" in results:
        dlts = np.nansum(results["dlt"].values, axis=1)
        mean, se = _mean_se(dlts)
        rows.append(["DLTs per trial", _number(mean, 2), _number(se, 2), ""])
        # A trial without a patient has no DLT rate: left out, not counted as 0.
        rates = np.divide(dlts, patients, out=np.full(n, np.nan), where=patients > 0)
        mean, se = _mean_se(rates)
        treated = int(np.count_nonzero(patients))
        rows.append(
            [
                "DLTs per patient (per trial, averaged)",
                _number(mean, 3),
                _number(se, 3),
                f"over the {treated} trials with a patient" if treated < n else "",
            ]
        )
    if "duration" in results:
        duration = results["duration"].values
        mean, se = _mean_se(duration)
        rows.append(
            [
                "duration of the trial",
                _number(mean, 2),
                _number(se, 2),
                f"median {np.nanmedian(duration):.4g} (time unit of the conduct)",
            ]
        )
    reasons = results["stop_reason"].values
    p, se = proportion(float(np.mean(reasons != "")), n)
    rows.append(
        [
            "stopped before the sample size (fraction of trials)",
            _number(p, 3),
            _number(se, 3),
            "by a stopping rule, or by the design's own end (3+3)",
        ]
    )
    p, se = table["no_selection"]["fraction"], table["no_selection"]["se"]
    rows.append(["no dose selected (fraction of trials)", _number(p, 3), _number(se, 3), ""])
    over = selections_over_overdose_limit(results)
    if over is not None:
        p, se = proportion(float(over.mean()), n)
        limit = results.attrs["design_conduct_max_overdose_probability"]
        rows.append(
            [
                "dose selected with P(overdose) > the overdose limit (fraction of trials)",
                _number(p, 3),
                _number(se, 3),
                f"limit {limit:g} (conduct max_overdose_probability)",
            ]
        )
    parts = [
        _table(
            ["quantity", "mean", "MCSE", "note"],
            rows,
            caption=f"Per trial, over {n} trials",
            table_id=f"trials-{index}",
            numeric=range(1, 3),
        )
    ]
    stopped, counts = np.unique(reasons[reasons != ""], return_counts=True)
    if stopped.size:
        parts.append(
            _table(
                ["stop reason", "trials", "fraction", "MCSE"],
                [
                    [
                        str(reason),
                        int(count),
                        *map(lambda v: _number(v, 3), proportion(count / n, n)),
                    ]
                    for reason, count in zip(stopped, counts, strict=True)
                ],
                caption="Why trials stopped before the sample size",
                table_id=f"stopping-{index}",
            )
        )
    else:
        parts.append('<p class="note">Every trial ran to the sample size.</p>')
    unselected = unselected_at_the_end(results)
    if unselected:
        parts.append(
            _table(
                ["reason of the recommendation", "trials", "fraction", "MCSE"],
                [
                    [reason, count, *map(lambda v: _number(v, 3), proportion(count / n, n))]
                    for reason, count in unselected.items()
                ],
                caption="Why trials that ran to their end selected no dose",
                table_id=f"unselected-{index}",
            )
        )
    return "\n".join(parts)


def _metrics_html(results: "xr.Dataset", index: int, random_seed: int) -> str:
    """Every per-trial metric the scenario defines: median, mean and their Monte Carlo SEs.

    The medians' SEs are bootstrapped with ``random_seed`` (`operating_characteristics`).
    """
    summary = operating_characteristics(results, random_seed=random_seed)
    rows = [
        [
            str(metric),
            *(
                _number(float(summary.sel(metric=metric)[name]), 4)
                for name in ("median", "mcse_median", "mean", "mcse_mean")
            ),
            int(summary.sel(metric=metric)["n"]),
        ]
        for metric in summary["metric"].values
    ]
    return _table(
        ["metric", "median", "MCSE (bootstrap)", "mean", "MCSE", "n"],
        rows,
        caption="Operating characteristics: the scenario's metrics per trial (the medians' "
        f"MCSEs bootstrapped with random seed {random_seed})",
        table_id=f"metrics-{index}",
    )


def example_trials(results: "xr.Dataset", count: int = N_EXAMPLE_TRIALS) -> list[int]:
    """Return the positions of the example trials: the first ``count``, one stopped if any."""
    chosen = list(range(min(count, results.sizes["trial"])))
    stopped = np.flatnonzero(results["stop_reason"].values != "")
    if chosen and stopped.size and not np.isin(chosen, stopped).any():
        chosen[-1] = int(stopped[0])
    return chosen


def _outcome_text(results: "xr.Dataset", trial: int) -> str:
    """Return what a trial ended with: its recommended dose(s), or its stop."""
    reason = str(results["stop_reason"].values[trial])
    if "recommended_dose_stratum" in results:
        picks = results["recommended_dose_stratum"].values[trial]
        labels = [str(s) for s in results["stratum"].values]
        text = ", ".join(
            f"{label}: {dose_text(_dose_value(pick))}"
            for label, pick in zip(labels, picks, strict=True)
        )
    else:
        pick = results["recommended_dose"].values[trial]
        text = "none" if not np.all(np.isfinite(pick)) else dose_text(_dose_value(pick))
    return f"stopped ({reason}); recommended {text}" if reason else f"recommended {text}"


def _dose_value(value: np.ndarray | float) -> float | list[float]:
    array = np.asarray(value, dtype=float)
    return float(array) if array.ndim == 0 else array.tolist()


def plot_dose_paths(results: "xr.Dataset", trials: Sequence[int]) -> "Figure":
    """Return the dose of each patient of the given trials, in enrolment order, DLTs marked.

    Doses that are all dose levels (or combinations) are drawn at the levels' ranks, labelled
    by dose; other doses at their values. With an outcome ``dlt``, a DLT is a red cross; a
    patient enrolled by backfill (a trial run in time) is drawn hollow.
    """
    plt = pyplot()
    levels = dose_levels(results)
    n = results.sizes["trial"]
    width = results.sizes.get("dose_column", 1)
    doses = results["dose"].values.reshape(n, -1, width)
    counts = results["n_patients"].values
    flat = levels.reshape(len(levels), -1)
    columns = 2 if len(trials) > 1 else 1
    rows = math.ceil(len(trials) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(10, 2.6 * rows + 0.6), squeeze=False, sharey=True
    )
    ranked = True
    for trial in trials:
        given = doses[trial, : int(counts[trial])]
        matches = np.all(given[:, None, :] == flat[None, :, :], axis=-1)
        ranked &= bool(np.all(matches.any(axis=1)))
    no_dlt = "no DLT" if "dlt" in results else "patient"
    for ax, trial in zip(axes.flat, trials, strict=False):
        count = int(counts[trial])
        given = doses[trial, :count]
        if ranked:
            matches = np.all(given[:, None, :] == flat[None, :, :], axis=-1)
            y = np.argmax(matches, axis=1).astype(float)
        else:
            y = given[:, 0]
        x = np.arange(1, count + 1)
        ax.step(x, y, where="mid", color="0.75", linewidth=1, zorder=1)
        dlt = (
            results["dlt"].values[trial, :count] == 1
            if "dlt" in results
            else np.zeros(count, dtype=bool)
        )
        backfill = (
            results["role"].values[trial, :count] == "backfill"
            if "role" in results
            else np.zeros(count, dtype=bool)
        )
        for mask, style in (
            (~dlt & ~backfill, {"marker": "o", "color": "tab:blue", "label": no_dlt}),
            (
                ~dlt & backfill,
                {
                    "marker": "o",
                    "facecolors": "none",
                    "edgecolors": "tab:blue",
                    "label": f"{no_dlt} (backfill)",
                },
            ),
            (dlt & ~backfill, {"marker": "X", "color": "tab:red", "s": 70, "label": "DLT"}),
            (
                dlt & backfill,
                {
                    "marker": "X",
                    "facecolors": "none",
                    "edgecolors": "tab:red",
                    "s": 70,
                    "label": "DLT (backfill)",
                },
            ),
        ):
            if mask.any():
                ax.scatter(x[mask], y[mask], zorder=2, **style)
        title = textwrap.fill(f"trial {trial}: {_outcome_text(results, trial)}", 70)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("patient (enrolment order)", fontsize=9)
        ax.set_xlim(0.3, max(count, 1) + 0.7)
    for ax in axes[:, 0]:
        ax.set_ylabel("dose")
    if ranked:
        step = math.ceil(len(levels) / 12)  # at most 12 labels: more would overlap
        shown = range(0, len(levels), step)
        labels = [dose_text(_dose_value(levels[k])) for k in shown]
        axes[0, 0].set_yticks(shown, labels)
        for ax in axes[:, 0]:
            ax.tick_params(axis="y", labelsize=9 if step == 1 else 7)
        axes[0, 0].set_ylim(-0.5, len(levels) - 0.5)
    for ax in axes.flat[len(trials) :]:
        ax.set_visible(False)
    handles: dict[str, Any] = {}
    for ax in axes.flat[: len(trials)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), loc="upper center", fontsize=8, ncols=4)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / (2.6 * rows + 0.6)))
    return fig


def _paths_note(results: "xr.Dataset") -> str:
    """Return the note under the heading of the dose paths: which trials, what is marked."""
    trials = ", ".join(str(trial) for trial in example_trials(results))
    marks = (
        "a red cross marks a DLT"
        if "dlt" in results
        else "the outcomes are not binary DLTs, so none is marked"
    )
    backfill = "; hollow: enrolled by backfill" if "role" in results else ""
    return (
        f"Trials {trials} (the first ones, and one stopped early if any): the dose of each "
        f"patient in enrolment order; {marks}{backfill}."
    )


def _attributes_html(results: "xr.Dataset", prefix: str, caption: str, table_id: str) -> str:
    rows = [
        [key.removeprefix(prefix), _text(value)]
        for key, value in results.attrs.items()
        if key.startswith(prefix)
    ]
    if not rows:
        return f'<p class="note">The results record no {html.escape(caption.lower())}.</p>'
    return _table(["option", "value"], rows, caption=caption, table_id=table_id, numeric=range(0))


def report_versions() -> dict[str, str]:
    """Versions of Python and of `REPORT_PACKAGES` installed now (``"not installed"``)."""
    versions = {"python": platform.python_version()}
    for package in REPORT_PACKAGES:
        try:
            versions[package] = __version__ if package == "dosezoo" else version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _versions_html(results: "xr.Dataset", index: int) -> str:
    now = report_versions()
    recorded = {
        key.removeprefix("version_"): _text(value)
        for key, value in results.attrs.items()
        if key.startswith("version_")
    }
    names = list(dict.fromkeys([*recorded, *now]))
    rows = [[name, recorded.get(name, ""), now.get(name, "")] for name in names]
    return _table(
        ["package", "simulated with", "this report written with"],
        rows,
        caption="Package versions",
        table_id=f"versions-{index}",
        numeric=range(0),
    )


def reproduce_command(results: "xr.Dataset") -> str | None:
    """Return the command that wrote the results, when they record it (`COMMAND_ATTR`)."""
    command = results.attrs.get(COMMAND_ATTR)
    return str(command) if command else None


def _reproduce_html(results: "xr.Dataset") -> str:
    command = reproduce_command(results)
    config = results.attrs.get(CONFIG_ATTR)
    parts = []
    if command is not None:
        parts.append("<p>The results were written by</p>")
        parts.append(f'<pre class="command">{html.escape(command)}</pre>')
        if config:
            parts.append(
                "<p>with this configuration (the file's text when the simulation ran):</p>"
            )
            parts.append(f'<pre class="config">{html.escape(str(config))}</pre>')
    else:
        seed, n = results.attrs.get("random_seed"), results.sizes["trial"]
        call = f"dosezoo.simulate.simulate(design, scenario, {n}, random_seed={_text(seed)})"
        parts.append(
            "<p>The results do not record the command that wrote them (they were written from "
            "Python, or by an older dosezoo). With the design and the scenario whose options "
            "are listed above, this call reproduces them:</p>"
        )
        parts.append(f'<pre class="command">{html.escape(call)}</pre>')
    parts.append(
        '<p class="note">Trial i draws only from child i of numpy.random.SeedSequence('
        "random_seed).spawn(n_trials): the results do not depend on the number of workers.</p>"
    )
    return "\n".join(parts)


def _section(index: int, label: str, results: "xr.Dataset", random_seed: int) -> str:
    """Return the report of one results file."""
    table = per_dose(results)
    title = title_of(results)
    selection = _image(
        plot_per_dose(table, title, stacked=True),
        f"Selection and allocation per dose of {title}",
    )
    paths = _image(
        plot_dose_paths(results, example_trials(results)),
        f"Dose paths of example trials of {title}",
    )
    run = [[key, _text(results.attrs[key])] for key in _RUN_KEYS if key in results.attrs]
    return "\n".join(
        [
            f'<section id="results-{index}">',
            f"<h2>{index}. {html.escape(title)}</h2>",
            f'<p class="note">Results file: {html.escape(label)}. Design: '
            f'<span class="design-name">{html.escape(_text(results.attrs.get("design_name", "")))}'
            f"</span>; scenario: {html.escape(_text(results.attrs.get('scenario_name', '')))}. "
            "MCSE: Monte Carlo standard error (binomial for fractions of trials, SD / sqrt(n) "
            "for means); error bars: 95% Monte Carlo intervals.</p>",
            "<h3>Operating characteristics</h3>",
            _trial_summary_html(results, table, index),
            _per_dose_html(results, table, index),
            selection,
            _metrics_html(results, index, random_seed),
            "<h3>Dose paths of example trials</h3>",
            f'<p class="note">{_paths_note(results)}</p>',
            paths,
            "<h3>Design and scenario</h3>",
            '<div class="columns">',
            _attributes_html(results, "design_", "Design options (describe())", f"design-{index}"),
            _attributes_html(
                results, "scenario_", "Scenario (the truth simulated)", f"scenario-{index}"
            ),
            _table(["setting", "value"], run, caption="Simulation", numeric=range(0)),
            "</div>",
            "<h3>Software</h3>",
            _versions_html(results, index),
            "<h3>Reproduce</h3>",
            _reproduce_html(results),
            "</section>",
        ]
    )


def html_report(results: "Sequence[tuple[str, xr.Dataset]]", *, random_seed: int = 0) -> str:
    """Return the self-contained HTML report of one or more simulations.

    Parameters
    ----------
    results : sequence of (str, xarray.Dataset)
        Each simulation's label (its file name) and its results, as `load_results` returns
        them; one section each, in this order.
    random_seed : int, default 0
        Seed of the bootstrap of the medians' Monte Carlo SEs (`operating_characteristics`).

    Returns
    -------
    str
        One HTML document: inline CSS, the figures as base64 PNG, no reference to another file
        or address, so it can be attached on its own.
    """
    if not results:
        raise ValueError("html_report: give at least one simulation's results")
    titles = [title_of(data) for _, data in results]
    contents = ""
    if len(results) > 1:
        items = "".join(
            f'<li><a href="#results-{i}">{html.escape(t)}</a></li>'
            for i, t in enumerate(titles, start=1)
        )
        contents = f"<ol>{items}</ol>"
    heading = titles[0] if len(results) == 1 else f"{len(results)} simulations"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            f"<title>Dose-finding simulation report: {html.escape(heading)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            f"<h1>Dose-finding simulation report: {html.escape(heading)}</h1>",
            f'<p class="note">Written by dosezoo {html.escape(__version__)} from the results '
            f"of dosezoo simulate ({html.escape(', '.join(label for label, _ in results))}).</p>",
            contents,
            *(
                _section(i, label, data, random_seed)
                for i, (label, data) in enumerate(results, start=1)
            ),
            "</body>",
            "</html>",
            "",
        ]
    )


def write_html_report(paths: Sequence[Path], output: Path, *, random_seed: int = 0) -> Path:
    """Write the HTML report of the results files ``paths`` to ``output`` and return it.

    ``random_seed`` seeds the bootstrap of the medians' Monte Carlo SEs (`html_report`).

    Raises
    ------
    ValueError
        If ``output`` is a directory or does not end in ``.html``, or a results file is not
        one (see `load_results`).
    """
    if output.is_dir():
        raise ValueError(f"--output {output}: is a directory; give the name of an .html file")
    if output.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"--output {output}: the report is HTML; give a file name ending in .html")
    loaded = [(path.name, load_results(path)) for path in paths]
    output.write_text(html_report(loaded, random_seed=random_seed), encoding="utf-8")
    return output
