"""Command-line interface: every registered design, from a TOML configuration.

- ``dosezoo designs``: the families (``[model] type``) with their options and defaults, and the
  scenario types;
- ``dosezoo next-dose DATA.csv --config X.toml``: the next dose of a real trial;
- ``dosezoo simulate X.toml --output R.nc``: simulate the design under the scenario;
- ``dosezoo report R.nc``: the operating characteristics of a simulation, with their Monte Carlo
  standard errors, the selection and the allocation per dose, and a figure;
- ``dosezoo decision-table X.toml``: the escalation table of a count design (BOIN, 3+3);
- ``dosezoo paths DATA.csv --config X.toml --cohorts 2``: the dose transition pathways;
- ``dosezoo demo``: Lee (2023)'s O6-BG re-design.

Errors in the data or the configuration are reported as one line on stderr and exit status 2,
never as a traceback.

Each command imports the machinery it runs when it runs: ``dosezoo --help`` loads neither
numba, pandas nor xarray, and ``next-dose`` loads the configured family's modules only (see
:mod:`dosezoo.registry`), not PyMC for an exact or a kernel posterior.
"""

import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from dosezoo.errors import ConvergenceError, StoreLockedError

if TYPE_CHECKING:
    import xarray as xr

    from dosezoo.data import TrialData
    from dosezoo.decision import Decision
    from dosezoo.designs.registry import Option

# Plain help (no rich panels): the rich help of typer >= 0.29 shows every flag as "<bool>".
app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="dosezoo: Bayesian dose-finding models and designs.",
)

#: Exit status for bad data or configuration.
USAGE_ERROR = 2
#: Errors a user can fix: bad data, configuration or files, or a fit a design refuses.
USER_ERRORS = (ValueError, ConvergenceError, OSError, StoreLockedError)


@app.callback()
def main() -> None:
    """Bayesian dose-finding models and trial designs built on PyMC."""


def _fail(message: str) -> None:
    line = " ".join(str(message).split())
    Console(stderr=True).print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(USAGE_ERROR)


def _console() -> Console:
    return Console(width=120, highlight=False)


def _finite(value: SupportsFloat) -> float | None:
    """Return a float for JSON: None for NaN or infinity."""
    number = float(value)
    return number if math.isfinite(number) else None


# --------------------------------------------------------------------------- demo


@app.command()
def demo(
    random_seed: int = typer.Option(2023, help="Seed of the simulated re-designed trials."),
    figure: Path = typer.Option(
        Path("o6bg_redesign.png"), help="Where to save the figure of the posterior curves."
    ),
) -> None:
    """Lee (2023)'s O6-BG re-design: fit the real trial, then run the 3PND re-design."""
    from dosezoo.datasets import load_o6bg
    from dosezoo.designs.mtd_quantile import MTDQuantileRule
    from dosezoo.studies import O6BG_ALPHAS, O6BG_LEVELS, O6BG_MODEL, o6bg_trial

    console = Console(soft_wrap=True)
    data = load_o6bg()
    console.print(
        f"O6-BG trial (Friedman et al. 1998; re-designed by Lee 2023): {data.n_patients} "
        f"patients; response y = 60 - AGT (fmol/mg); model {O6BG_MODEL}"
    )
    posterior = O6BG_MODEL.posterior(data)
    mtd = posterior.mtd
    assert mtd is not None  # a 3PND posterior has the MTD's distribution
    table = Table(title="Posterior of the MTD on the real data (mg/m^2, exact quadrature)")
    probabilities = (0.05, 0.1, 0.5, 0.9, 0.95)
    for p in probabilities:
        table.add_column(f"{p:.0%}", justify="right")
    table.add_row(*(f"{mtd.quantile(p):.1f}" for p in probabilities))
    console.print(table)
    for strategy, alpha in O6BG_ALPHAS.items():
        decision = MTDQuantileRule(alpha=alpha, dose_levels=O6BG_LEVELS).choose(posterior, data)
        console.print(
            f"Next dose after the real trial, {strategy} (alpha = {alpha}): "
            f"{decision.next_dose:g} mg/m^2 (P(MTD < dose) = "
            f"{decision.quantities['p_overdose']:.3f})"
        )

    console.print(
        f"\nRe-design (CSAD, C = 3, N = 30, levels {O6BG_LEVELS}, monotone, x_1 = 40); "
        f"simulated patients resample the trial's AGT values (random_seed = {random_seed})"
    )
    trials = {}
    for strategy, alpha in O6BG_ALPHAS.items():
        trial = trials[strategy] = o6bg_trial(alpha, random_seed)
        path = " -> ".join(f"{dose:g}" for dose in trial["cohort_doses"])
        console.print(
            f"{strategy} (alpha = {alpha}): dose path {path}; final dose "
            f"{trial['final_dose']:g}, recommended {trial['recommended']:g} mg/m^2; "
            f"{trial['n_agt_below_5']} of 30 patients with AGT < 5 fmol/mg"
        )
    _plot_redesign(trials, figure)
    console.print(f"Figure of the posterior dose-response curves: {figure}")


def _pyplot() -> Any:
    """Matplotlib's pyplot on the Agg backend (imported on demand: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_redesign(trials: dict, figure: Path) -> None:
    import pandas as pd

    from dosezoo.data import TrialData
    from dosezoo.studies import O6BG_MODEL

    plt = _pyplot()
    grid = np.linspace(O6BG_MODEL.x_min + 1.0, O6BG_MODEL.x_max - 1.0, 120)
    fig, axes = plt.subplots(1, len(trials), figsize=(5 * len(trials), 4), sharey=True)
    for axis, (strategy, trial) in zip(np.atleast_1d(axes), trials.items(), strict=True):
        doses = np.repeat(trial["cohort_doses"], 3)
        y = 60.0 - np.asarray(trial["agt"])
        data = TrialData.from_dataframe(pd.DataFrame({"dose": doses, "y": y}))
        idata = O6BG_MODEL.fit(data, engine="quadrature", draws=2000, chains=2, random_seed=0)
        curves = O6BG_MODEL.mean_response(idata, grid).stack(sample=("chain", "draw"))
        low, mid, high = np.quantile(curves.values, [0.05, 0.5, 0.95], axis=1)
        axis.fill_between(grid, low, high, alpha=0.3, label="90% credible band")
        axis.plot(grid, mid, label="posterior median curve")
        axis.scatter(doses, y, s=12, color="black", label="patients")
        axis.axhline(O6BG_MODEL.eta, linestyle="--", color="grey", label="eta = 55 (AGT = 5)")
        axis.set(title=f"{strategy} (alpha = {trial['alpha']})", xlabel="dose (mg/m^2)")
    np.atleast_1d(axes)[0].set_ylabel("y = 60 - AGT (fmol/mg)")
    np.atleast_1d(axes)[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- designs


def _default_text(default: object) -> str:
    from dosezoo.designs.registry import REQUIRED, Derived, encode, toml_value

    if default is REQUIRED:
        return "(required)"
    if isinstance(default, Derived):
        return f"({default.text})"
    if default is None:
        return "none"
    return toml_value(encode(default))


def _option_record(option: "Option") -> dict[str, Any]:
    from dosezoo.designs.registry import Derived, encode

    record: dict[str, Any] = {"name": option.name, "type": option.type_text}
    if option.required:
        record["required"] = True
    elif isinstance(option.default, Derived):
        record["derived"] = option.default.text
    else:
        record["default"] = encode(option.default)
    return record


def _options_line(options: Iterable["Option"]) -> str:
    return ", ".join(f"{o.name} = {_default_text(o.default)}" for o in options) or "none"


@app.command("designs")
def designs_command(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """List the design families with their options and defaults, and the scenario types."""
    from dosezoo.designs.base import Conduct
    from dosezoo.designs.registry import FAMILIES, Derived, encode, options_of
    from dosezoo.scenarios.registry import SCENARIO_TYPES

    conduct = options_of(Conduct)
    families = {}
    for family in FAMILIES.values():
        families[family.name] = {
            "summary": family.summary,
            "model": None if family.model is None else family.model.__name__,
            "model_options": [_option_record(o) for o in family.model_options()],
            "rule": family.rule.__name__,
            "rule_options": [_option_record(o) for o in family.rule_options()],
            "conduct_defaults": {
                key: (f"({value.text})" if isinstance(value, Derived) else encode(value))
                for key, value in family.conduct.items()
            },
            "count_design": family.counts_only,
            "example": f"examples/{family.example}",
            "example_data": f"examples/{family.example_data}",
        }
    scenarios = {
        kind.name: {
            "summary": kind.summary,
            "options": [_option_record(o) for o in options_of(kind.build)],
        }
        for kind in SCENARIO_TYPES.values()
    }
    if as_json:
        record = {
            "families": families,
            "conduct": [_option_record(o) for o in conduct],
            "scenarios": scenarios,
        }
        typer.echo(json.dumps(record, indent=2))
        return
    lines = ["Design families ([model] type = ...):", ""]
    for family in FAMILIES.values():
        lines.append(f"{family.name}: {family.summary}")
        model = "none" if family.model is None else family.model.__name__
        lines.append(f"  [model] {model}: {_options_line(family.model_options())}")
        lines.append(f"  [rule] {family.rule.__name__}: {_options_line(family.rule_options())}")
        own = ", ".join(f"{k} = {_default_text(v)}" for k, v in family.conduct.items())
        lines.append(f"  [conduct] defaults: {own or 'those of Conduct'}")
        kind = "count design (decision-table)" if family.counts_only else "model-based design"
        lines.append(
            f"  {kind}; example: examples/{family.example} with examples/{family.example_data}"
        )
        lines.append("")
    lines.append(f"[conduct] Conduct (every family): {_options_line(conduct)}")
    lines += ["", "Scenario types ([scenario] type = ..., for simulate):", ""]
    for scenario_type in SCENARIO_TYPES.values():
        lines.append(f"{scenario_type.name}: {scenario_type.summary}")
        lines.append(f"  {_options_line(options_of(scenario_type.build))}")
    lines += [
        "",
        'A key left out takes its default; "none" stands for None; the scenario\'s dose '
        "levels, target and planned sample size default to the design's.",
    ]
    typer.echo("\n".join(lines))


# --------------------------------------------------------------------------- next-dose


def _json_value(value: Any) -> Any:
    """Return a quantity for JSON: numbers (None for NaN), arrays as lists, tuples as lists."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_json_value(v) for v in value]
    return _finite(value)


def _dose_text(dose: float | Sequence[float]) -> str:
    """Return a dose as text: ``40`` or, for a combination, ``(0.25,0.75)``."""
    if isinstance(dose, Sequence):
        return "(" + ",".join(f"{v:g}" for v in dose) + ")"
    return f"{dose:g}"


def _scalars(quantities: dict[str, Any]) -> dict[str, float]:
    """Return the real scalar quantities (arrays, such as a surface, are left out)."""
    return {k: v for k, v in quantities.items() if np.ndim(v) == 0 and not isinstance(v, str)}


def _decision_record(decision: "Decision", data: "TrialData", label: str) -> dict[str, Any]:
    record = {
        "design": label,
        "next_dose": _json_value(decision.next_dose) if decision.next_dose is not None else None,
        "stop_reason": decision.stop_reason,
        "bound_by": list(decision.bound_by),
        "quantities": {key: _json_value(value) for key, value in decision.quantities.items()},
        "n_patients": data.n_patients,
    }
    if decision.strata:
        record["strata"] = [
            {
                "stratum": {k: _json_value(v) for k, v in stratum.stratum.items()},
                "next_dose": None if stratum.next_dose is None else _json_value(stratum.next_dose),
                "stop_reason": stratum.stop_reason,
                "quantities": {k: _json_value(v) for k, v in stratum.quantities.items()},
            }
            for stratum in decision.strata
        ]
    return record


@app.command("next-dose")
def next_dose(
    data_csv: Path = typer.Argument(
        ...,
        metavar="DATA_CSV",
        help="Trial data: a dose column, the model's outcomes, cohort optional.",
    ),
    config: Path = typer.Option(..., "--config", "-c", help="Design configuration (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Decide the dose of the next cohort of a real trial."""
    from dosezoo.config import design_from_config, read_config
    from dosezoo.data import TrialData

    try:
        design = design_from_config(read_config(config), str(config))
        schema = {} if design.model is None else design.model.data_schema()
        data = TrialData.from_csv(data_csv, **schema)
        decision = design.next(data)
    except USER_ERRORS as error:
        _fail(str(error))
    record = _decision_record(decision, data, design.label)
    if as_json:
        typer.echo(json.dumps(record))
        return
    if decision.stopped:
        typer.echo(f"stop: {decision.stop_reason}")
        return
    if decision.strata:
        from dosezoo.simulate.engine import stratum_label

        lines = ["next dose per stratum:"]
        for stratum in decision.strata:
            label = stratum_label(stratum.stratum)
            if stratum.next_dose is None:  # a stratum's decision has no strata: it stopped
                lines.append(f"  {label}: stopped ({stratum.stop_reason})")
                continue
            details = ", ".join(f"{k} = {v:.4g}" for k, v in _scalars(stratum.quantities).items())
            lines.append(f"  {label}: {_dose_text(stratum.next_dose)} ({details})")
        typer.echo("\n".join(lines))
        return
    assert decision.next_dose is not None  # not stopped, with no strata: it names a dose
    scalars = _scalars(decision.quantities)
    parts = [", ".join(f"{key} = {value:.4g}" for key, value in scalars.items())]
    parts.append(f"options that bound it: {', '.join(decision.bound_by) or 'none'}")
    typer.echo(f"next dose: {_dose_text(decision.next_dose)} ({'; '.join(filter(None, parts))})")


# --------------------------------------------------------------------------- simulate, report


def _summary_table(summary: "xr.Dataset", title: str) -> Table:
    table = Table(title=title)
    for column in ("metric", "median", "MCSE", "mean", "MCSE ", "n"):
        table.add_column(column, justify="right")
    for metric in summary["metric"].values:
        row = summary.sel(metric=metric)
        table.add_row(
            str(metric),
            *(f"{float(row[name]):.4g}" for name in ("median", "mcse_median", "mean", "mcse_mean")),
            str(int(row["n"])),
        )
    return table


def _stopped_line(summary: "xr.Dataset", n_trials: int) -> str:
    p = float(summary["p_stopped_early"])
    se = math.sqrt(p * (1 - p) / n_trials) if n_trials else math.nan
    return f"stopped early: {p:.3f} (MCSE {se:.3f})"


@app.command("simulate")
def simulate_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="Design, scenario and simulation settings (TOML)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="netCDF file of the results."),
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="Number of trials (overrides [simulation] n_trials)."
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", help="Worker processes, -1 for one per CPU (overrides n_jobs)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Simulate a design under a scenario; write netCDF and print the operating characteristics."""
    from dosezoo.config import design_from_config, read_config, simulation_from_config
    from dosezoo.simulate import operating_characteristics, simulate

    try:
        if output.suffix != ".nc":
            raise ValueError(
                f"--output {output}: the results are written as netCDF; give a file name "
                "ending in .nc"
            )
        raw = read_config(config)
        design = design_from_config(raw, str(config))
        settings = simulation_from_config(raw, design, str(config))
        n_trials = settings.n_trials if trials is None else trials
        results = simulate(
            design,
            settings.scenario,
            n_trials,
            random_seed=settings.random_seed,
            n_jobs=settings.n_jobs if jobs is None else jobs,
            path=output,
            progress=progress,
        )
        summary = operating_characteristics(results)
    except USER_ERRORS as error:
        _fail(str(error))
    console = _console()
    console.print(
        _summary_table(summary, f"Operating characteristics over {n_trials} trials ({output})")
    )
    console.print(_stopped_line(summary, n_trials))
    console.print(f"dosezoo report {output} for the selection and allocation per dose")


def _dose_levels(results: "xr.Dataset") -> np.ndarray:
    """Return the design's dose levels from the results' attributes, else the doses seen.

    For drug combinations (results with a ``dose_column`` dim), the combinations seen or
    recommended, one per row (m, J).
    """
    if "dose_column" in results.dims:
        width = results.sizes["dose_column"]
        rows = [results["dose"].values.reshape(-1, width), _recommended(results).reshape(-1, width)]
        doses = np.concatenate(rows)
        return np.unique(doses[np.all(np.isfinite(doses), axis=1)], axis=0)
    for key in ("design_model_dose_levels", "design_rule_dose_levels", "scenario_dose_levels"):
        value = results.attrs.get(key)
        if isinstance(value, str) and value and value != "none":
            try:
                return np.array([float(v) for v in value.split(",")])
            except ValueError:
                continue
    doses = np.concatenate([results["dose"].values.ravel(), results["recommended_dose"].values])
    return np.unique(doses[np.isfinite(doses)])


def _targets(results: "xr.Dataset") -> list[float]:
    """Return the scenario's true MTD or target doses, when its record names them."""
    attrs = results.attrs
    if "scenario_mtd_dose" in attrs:
        return [float(attrs["scenario_mtd_dose"])]
    levels, chosen = attrs.get("scenario_dose_levels"), attrs.get("scenario_target_levels")
    if isinstance(levels, str) and isinstance(chosen, str) and chosen != "none":
        doses = [float(v) for v in levels.split(",")]
        return [doses[int(k)] for k in chosen.split(",")]
    return []


def _recommended(results: "xr.Dataset") -> np.ndarray:
    """Return the recommended doses: (trial[, J]), or (trial, stratum[, J]) per stratum."""
    if "recommended_dose_stratum" in results:
        return results["recommended_dose_stratum"].values
    return results["recommended_dose"].values


def _per_dose(results: "xr.Dataset") -> dict[str, Any]:
    """Return the selection (fraction of trials per dose) and the allocation (patients).

    A dose is a level, or a combination (a list); for recommendations per stratum the
    selection is per stratum and dose, the fractions over the trials and strata.
    """
    levels = _dose_levels(results)
    n = results.sizes["trial"]
    combination = "dose_column" in results.dims
    dose = results["dose"].values
    recommended = _recommended(results)
    per_stratum = "recommended_dose_stratum" in results
    strata = [str(s) for s in results["stratum"].values] if per_stratum else [""]
    width = results.sizes["dose_column"] if combination else 1
    picks = recommended.reshape(n, len(strata), width)  # (trial, stratum, J)
    units = n * len(strata)

    def same(values: np.ndarray, level: np.ndarray) -> np.ndarray:
        return np.all(np.isclose(values, level), axis=-1)

    selection, allocation = [], []
    for stratum_index, stratum in enumerate(strata):
        for level in levels:
            point = np.atleast_1d(level)
            p = float(np.sum(same(picks[:, stratum_index, :], point)) / units)
            row = {"dose": point.tolist() if combination else float(level), "fraction": p}
            row["se"] = math.sqrt(p * (1 - p) / units)
            if stratum:
                row["stratum"] = stratum
            selection.append(row)
    for level in levels:
        point = np.atleast_1d(level)
        given = dose.reshape(n, -1, width)
        patients = np.sum(same(given, point), axis=1).astype(float)
        se = float(np.std(patients, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        label = point.tolist() if combination else float(level)
        allocation.append({"dose": label, "mean": float(patients.mean()), "se": se})
    flat = picks.reshape(units, width)
    none = ~np.all(np.isfinite(flat), axis=1)
    listed = np.zeros(units, dtype=bool)
    for level in levels:
        listed |= same(flat, np.atleast_1d(level))
    p_none = float(np.mean(none))
    p_other = float(np.mean(~none & ~listed))
    return {
        "targets": _targets(results),
        "selection": selection,
        "no_selection": {"fraction": p_none, "se": math.sqrt(p_none * (1 - p_none) / n)},
        "other_selection": p_other,
        "allocation": allocation,
        "patients_per_trial": float(np.mean(results["n_patients"].values)),
    }


def _row_label(row: dict[str, Any]) -> str:
    """Return the text of a dose row: ``40``, ``(0.25,0.75)``, ``z1=0: (0.25,0.75)``."""
    text = _dose_text(row["dose"])
    return f"{row['stratum']}: {text}" if row.get("stratum") else text


def _plot_report(per_dose: dict[str, Any], title: str, figure: Path) -> None:
    plt = _pyplot()
    wide = len(per_dose["selection"]) > 12
    fig, (left, right) = plt.subplots(1, 2, figsize=(16 if wide else 10, 4))
    labels = [_row_label(row) for row in per_dose["selection"]] + ["none"]
    fractions = [row["fraction"] for row in per_dose["selection"]]
    fractions.append(per_dose["no_selection"]["fraction"])
    errors = [1.96 * row["se"] for row in per_dose["selection"]]
    errors.append(1.96 * per_dose["no_selection"]["se"])
    targets = per_dose["targets"]
    colours = [
        "tab:green" if row["dose"] in targets else "tab:blue" for row in per_dose["selection"]
    ]
    left.bar(labels, fractions, yerr=errors, capsize=3, color=[*colours, "tab:gray"])
    left.set(title="Selection", xlabel="recommended dose", ylabel="fraction of trials")
    means = [row["mean"] for row in per_dose["allocation"]]
    spread = [
        1.96 * row["se"] if math.isfinite(row["se"]) else 0.0 for row in per_dose["allocation"]
    ]
    right.bar(
        [_row_label(row) for row in per_dose["allocation"]],
        means,
        yerr=spread,
        capsize=3,
        color="tab:orange",
    )
    if wide:
        left.tick_params(axis="x", labelrotation=90, labelsize=6)
        right.tick_params(axis="x", labelrotation=90, labelsize=6)
    right.set(title="Allocation", xlabel="dose", ylabel="patients per trial (mean)")
    note = "; green: the scenario's true MTD / target doses" if targets else ""
    fig.suptitle(f"{title}  (error bars: 95% Monte Carlo intervals{note})", fontsize=10)
    fig.tight_layout()
    fig.savefig(figure, dpi=120)
    plt.close(fig)


def _title(results: "xr.Dataset") -> str:
    design = results.attrs.get("design_name", "design")
    scenario = results.attrs.get("scenario_name", "scenario")
    return f"{design} under {scenario}, {results.sizes['trial']} trials"


@app.command("report")
def report_command(
    results_path: Path = typer.Argument(
        ..., metavar="RESULTS", help="netCDF results of dosezoo simulate."
    ),
    figure: Path | None = typer.Option(
        None, "--figure", help="Where to save the figure (default: the results' name, .png)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report a simulation: operating characteristics with MCSEs, selection and allocation."""
    import xarray as xr

    from dosezoo.simulate import operating_characteristics

    try:
        if not results_path.is_file():
            raise FileNotFoundError(f"{results_path}: no such results file")
        try:
            results = xr.load_dataset(results_path, engine="h5netcdf")
        except (OSError, ValueError) as error:
            raise ValueError(f"{results_path}: not a netCDF file of results ({error})") from None
        summary = operating_characteristics(results)
        per_dose = _per_dose(results)
        figure = results_path.with_suffix(".png") if figure is None else figure
        _plot_report(per_dose, _title(results), figure)
    except USER_ERRORS as error:
        _fail(str(error))
    n = results.sizes["trial"]
    if as_json:
        metrics = {
            str(metric): {
                name: _finite(summary.sel(metric=metric)[name])
                for name in ("median", "mcse_median", "mean", "mcse_mean")
            }
            | {"n": int(summary.sel(metric=metric)["n"])}
            for metric in summary["metric"].values
        }
        record = {
            "title": _title(results),
            "n_trials": n,
            "operating_characteristics": metrics,
            "p_stopped_early": float(summary["p_stopped_early"]),
            **per_dose,
            "figure": str(figure),
        }
        typer.echo(json.dumps(record))
        return
    console = _console()
    console.print(_title(results))
    console.print(_summary_table(summary, "Operating characteristics"))
    console.print(_stopped_line(summary, n))
    table = Table(title="Selection and allocation per dose")
    for column in ("dose", "selected", "MCSE", "patients (mean)", "MCSE "):
        table.add_column(column, justify="right")
    allocated = {_dose_text(row["dose"]): row for row in per_dose["allocation"]}
    shown: set[str] = set()
    for chosen in per_dose["selection"]:
        target = " (target)" if chosen["dose"] in per_dose["targets"] else ""
        key = _dose_text(chosen["dose"])
        given = allocated[key] if key not in shown else None
        shown.add(key)
        table.add_row(
            f"{_row_label(chosen)}{target}",
            f"{chosen['fraction']:.3f}",
            f"{chosen['se']:.3f}",
            "" if given is None else f"{given['mean']:.2f}",
            "" if given is None else f"{given['se']:.2f}",
        )
    none = per_dose["no_selection"]
    table.add_row("none", f"{none['fraction']:.3f}", f"{none['se']:.3f}", "", "")
    console.print(table)
    console.print(f"patients per trial (mean): {per_dose['patients_per_trial']:.2f}")
    console.print(f"figure of the selection and allocation: {figure}")


# --------------------------------------------------------------------------- decision-table


def _cells(values: Sequence[int | None]) -> list[str]:
    return ["NA" if value is None else str(value) for value in values]


def _print_own_table(label: str, config: str, rows: Sequence[Any]) -> None:
    """Print a rule's own decision table (rows of one dataclass), one column per field."""
    names = [f.name for f in dataclasses.fields(rows[0])]
    shown = [name for name in names if any(getattr(r, name) is not None for r in rows)]
    table = Table(title=f"Decision table of {label} ({config})")
    for name in shown:
        table.add_column(name.replace("_", " "), justify="right")

    def cell(value: object) -> str:
        if value is None:
            return "NA"
        if isinstance(value, bool):
            return "yes" if value else ""
        if isinstance(value, float):
            return f"{value:.3f}" if not value.is_integer() else f"{value:g}"
        return str(value)

    for row in rows:
        table.add_row(*(cell(getattr(row, name)) for name in shown))
    console = _console()
    console.print(table)
    console.print(
        "From the rule's own tabulation (BOIN12: the paper's Table 3). NA: not admissible."
    )


@app.command("decision-table")
def decision_table_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="Configuration of a count design (BOIN, 3+3, BOIN12)."
    ),
    max_patients: int | None = typer.Option(
        None,
        "--max-patients",
        min=1,
        help="Largest number of patients at a dose (default: the sample size or 12).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Tabulate a count design's escalation decisions by patients and DLTs at the current dose."""
    from dosezoo.config import design_from_config, read_config
    from dosezoo.designs.base import CountDesign, DecisionTableRow
    from dosezoo.designs.registry import FAMILIES, family_of, toml_value

    try:
        design = design_from_config(read_config(config), str(config))
        family = family_of(design)
        if not isinstance(design, CountDesign):
            counts = ", ".join(f.name for f in FAMILIES.values() if f.counts_only)
            raise ValueError(
                f"{config}: [model] type = {toml_value(family.name)} is not a count design (its "
                f"decisions depend on more than the patients and DLTs per dose); count designs: "
                f"{counts}"
            )
        rows = design.decision_table(max_patients)
    except USER_ERRORS as error:
        _fail(str(error))
    if as_json:
        record = {
            "design": design.label,
            "family": family.name,
            "cohort_size": design.cohort_size,
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        typer.echo(json.dumps(record))
        return
    if rows and not isinstance(rows[0], DecisionTableRow):
        _print_own_table(design.label, str(config), rows)
        return
    table = Table(title=f"Decision table of {design.label} ({config})")
    table.add_column("number of patients treated at the current dose", justify="left")
    for row in rows:
        table.add_column(str(row.n), justify="right")
    table.add_row("escalate if # of DLTs <=", *_cells([r.escalate for r in rows]))
    table.add_row("de-escalate if # of DLTs >=", *_cells([r.deescalate for r in rows]))
    table.add_row("eliminate if # of DLTs >=", *_cells([r.eliminate for r in rows]))
    console = _console()
    console.print(table)
    console.print(
        "Read from the rule (decide_counts at a middle dose level); otherwise stay. NA: never."
    )


# --------------------------------------------------------------------------- dose pathways


@app.command("paths")
def paths_command(
    data_csv: Path = typer.Argument(
        ..., help="Trial data so far: a dose column, the model's outcomes, cohort optional."
    ),
    config: Path = typer.Option(..., "--config", "-c", help="Design configuration (TOML)."),
    cohorts: int = typer.Option(2, "--cohorts", help="Future cohorts to enumerate."),
    as_json: bool = typer.Option(False, "--json", help="Print the pathways as JSON records."),
    figure: Path | None = typer.Option(None, "--figure", help="Also draw the tree (PNG, PDF)."),
) -> None:
    """Show the design's decision after every outcome of the next cohorts (pathways).

    Outcomes are coded per cohort as in R's escalation: N = no DLT, T = DLT.
    """
    from dosezoo.config import design_from_config, read_config
    from dosezoo.data import TrialData
    from dosezoo.designs.pathways import dose_paths

    try:
        design = design_from_config(read_config(config), str(config))
        schema = {} if design.model is None else design.model.data_schema()
        data = TrialData.from_csv(data_csv, **schema)
        paths = dose_paths(design, data, cohorts)
    except USER_ERRORS as error:
        _fail(str(error))
    if as_json:
        typer.echo(paths.to_json())
    else:
        table = Table(title=f"Dose transition pathways of {design.label} ({cohorts} cohorts)")
        for column in ("path", "dose", "n_patients", "next_dose", "stop_reason"):
            table.add_column(column)
        for row in paths.table.itertuples():
            dose = "" if row.cohort == 0 else _json_text(row.dose)
            stop = "" if row.stop_reason is None else str(row.stop_reason)
            next_text = "stop" if stop else _json_text(row.next_dose)
            table.add_row(row.path or "(now)", dose, str(row.n_patients), next_text, stop)
        _console().print(table)
    if figure is not None:
        _pyplot()
        axes = paths.plot()
        axes.figure.savefig(figure, bbox_inches="tight")


def _json_text(value: Any) -> str:
    """Return a dose of the pathways' table as text (a float, or a combination's string)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    app()
