"""Command-line interface: every registered design, from a TOML configuration.

- ``dosezoo designs``: the families (``[model] type``) with their options and defaults, and the
  scenario types;
- ``dosezoo next-dose DATA.csv --config X.toml``: the next dose of a real trial;
- ``dosezoo simulate X.toml --output R.nc``: simulate the design under the scenario;
- ``dosezoo report R.nc``: the operating characteristics of a simulation, with their Monte Carlo
  standard errors, the selection and the allocation per dose, and a figure; with
  ``--output R.html``, all of it, the dose paths of example trials, the design's options, the
  versions and the command that reproduces it in one self-contained HTML file;
- ``dosezoo decision-table X.toml``: the escalation table of a count design (BOIN, 3+3);
- ``dosezoo paths DATA.csv --config X.toml --cohorts 2``: the dose transition pathways;
- ``dosezoo demo``: Lee (2023)'s O6-BG re-design.

Errors in the data or the configuration are reported as one line on stderr and exit status 2,
never as a traceback.

Each command imports the machinery it runs when it runs: ``dosezoo --help`` loads neither
numba, pandas nor xarray, a command loads rich only to print a table or an error, and
``next-dose`` loads the configured family's modules only (see :mod:`dosezoo.registry`), not
PyMC for an exact or a kernel posterior, nor xarray for an exact one (a fit's container, which
an exact posterior never builds; the latent-GP and joint-probit models load it with their
modules).
"""

import atexit
import dataclasses
import gc
import json
import math
import re
import shlex
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np
import typer

from dosezoo.errors import ConvergenceError, DamagedBatchWarning, StoreLockedError
from dosezoo.garbage import rare_collections

if TYPE_CHECKING:
    import xarray as xr
    from rich.console import Console
    from rich.table import Table

    from dosezoo.data import TrialData
    from dosezoo.decision import Decision
    from dosezoo.designs.registry import Option


class _Command(typer.core.TyperCommand):
    """A command whose usage line names its required arguments plainly: ``DATA_CSV``.

    typer >= 0.29 writes a required argument in braces (``{DATA_CSV}``), which in a usage line
    reads as a choice among alternatives.
    """

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [
            piece.replace("{", "", 1).replace("}", "", 1) if piece.startswith("{") else piece
            for piece in super().collect_usage_pieces(ctx)
        ]


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
    warnings.formatwarning = _one_line_warning


#: Python's formatting of warnings, which the command line keeps for other libraries' ones.
_PYTHON_FORMAT = warnings.formatwarning


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Format dosezoo's warnings as one line, ``warning: ...``, without Python's source line.

    A warning of the package's (a damaged batch run again) speaks to the user, not to a
    programmer: the file and line of the command's own code that triggered it say nothing.
    """
    if issubclass(category, DamagedBatchWarning):
        return f"warning: {message}\n"
    return _PYTHON_FORMAT(message, category, filename, lineno, line)


def _fail(message: str) -> None:
    from rich.console import Console

    line = " ".join(str(message).split())
    Console(stderr=True).print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(USAGE_ERROR)


#: A data row in an error: "column 'dose', row 7: ..." or "row 7's response ...".
_DATA_ROW = re.compile(r"\brow (\d+)(?=:|'s )")


def _on_rows_of(data_csv: Path, data: "TrialData", action: Callable[[], Any]) -> Any:
    """Run ``action`` on ``data``, read from ``data_csv``, naming the file and line in its errors.

    The loader names the file and the CSV line in its own errors; a model refusing a row (a
    dose off its levels, a time beyond its follow-up) knows only the row, which blank lines
    make differ from the line by more than the header.
    """
    from dosezoo.errors import DataError

    try:
        return action()
    except DataError as error:
        located = _DATA_ROW.sub(lambda row: data.row_name(int(row[1])), str(error))
        _fail(f"{data_csv}: {located}")
    except USER_ERRORS as error:
        _fail(str(error))


def _save_figure(figure: Path, save: Callable[[Path], None]) -> None:
    """Save a figure to ``figure``; a path matplotlib cannot write is a user error."""
    if figure.is_dir():  # matplotlib would write '<directory>.png' next to it
        _fail(f"--figure {figure}: is a directory; give the figure's file name")
    try:
        save(figure)
    except (OSError, ValueError) as error:
        _fail(f"--figure {figure}: {error}")


def _console() -> "Console":
    from rich.console import Console

    return Console(width=120, highlight=False)


def _finite(value: SupportsFloat) -> float | None:
    """Return a float for JSON: None for NaN or infinity."""
    number = float(value)
    return number if math.isfinite(number) else None


def _dumps(record: object, **options: Any) -> str:
    """Return ``record`` as strict JSON, every NaN or infinity inside it as null.

    Python's json writes NaN, which strict parsers (JavaScript's, jq) refuse.
    """

    def strict(value: object) -> object:
        if isinstance(value, dict):
            return {key: strict(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [strict(item) for item in value]
        if isinstance(value, float | np.floating):
            return _finite(value)
        return value

    return json.dumps(strict(record), allow_nan=False, **options)


# --------------------------------------------------------------------------- demo


@app.command(cls=_Command)
def demo(
    random_seed: int = typer.Option(2023, min=0, help="Seed of the simulated re-designed trials."),
    figure: Path = typer.Option(
        Path("o6bg_redesign.png"), help="Where to save the figure of the posterior curves."
    ),
    replicates: int = typer.Option(
        100,
        min=0,
        help="Replicated trials (same seed; the printed path is trial 0) that say how typical "
        "the printed path is: the share ending at each dose (0: skip).",
    ),
) -> None:
    """Lee (2023)'s O6-BG re-design: fit the real trial, then run the 3PND re-design."""
    from rich.console import Console
    from rich.table import Table

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
    if replicates:
        _how_typical(console, trials, replicates, random_seed)
    _plot_redesign(trials, figure)
    console.print(f"Figure of the posterior dose-response curves: {figure}")


def _how_typical(console: "Console", trials: dict, n_trials: int, random_seed: int) -> None:
    """Print the share of replicated trials ending at each dose, and at the printed path's."""
    from dosezoo.studies import o6bg_replicates

    console.print(
        f"\nHow typical these paths are: final dose (the last cohort's) of {n_trials} "
        f"replicated trials with random_seed = {random_seed} (the paths above are trial 0; "
        "docs/results/o6bg_redesign.md has more replicates and the EWOC re-design)"
    )
    for strategy, trial in trials.items():
        shares = o6bg_replicates(trial["alpha"], n_trials, random_seed)["final_dose"]
        share = shares[f"{trial['final_dose']:g}"]
        spread = ", ".join(f"{level}: {value:.0%}" for level, value in shares.items())
        console.print(
            f"{strategy}: {spread}; the path above ends at {trial['final_dose']:g}, as "
            f"{share:.0%} of them do (Monte Carlo SE "
            f"{math.sqrt(share * (1 - share) / n_trials):.0%})"
        )


def _plot_redesign(trials: dict, figure: Path) -> None:
    import pandas as pd

    from dosezoo.data import TrialData
    from dosezoo.report import pyplot
    from dosezoo.studies import O6BG_MODEL

    plt = pyplot()
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
    _save_figure(figure, lambda path: fig.savefig(path, dpi=120))
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


def _first_line(doc: str | None) -> str:
    """Return the summary line of a docstring, as plain text."""
    return (doc or "").strip().split("\n", 1)[0].replace("``", "")


def _options_line(options: Iterable["Option"], from_design: tuple[str, ...] = ()) -> str:
    """Return the options with their defaults; those ``from_design`` names: the design's."""

    def text(option: "Option") -> str:
        own = _default_text(option.default)
        if option.name not in from_design:
            return own
        return f"(the design's, else {own.strip('()')})"

    return ", ".join(f"{o.name} = {text(o)}" for o in options) or "none"


@app.command("designs", cls=_Command)
def designs_command(
    as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
) -> None:
    """List the design families, their options and defaults, stopping rules and scenarios."""
    from dosezoo.designs.base import Conduct
    from dosezoo.designs.registry import FAMILIES, STOPPING, Derived, encode, options_of
    from dosezoo.scenarios.registry import SCENARIO_TYPES

    conduct = options_of(Conduct)
    stopping = {
        name: {
            "summary": _first_line(cls.__doc__),
            "outcomes": list(getattr(cls, "outcomes", ())),
            "options": [_option_record(o) for o in options_of(cls)],
        }
        for name, cls in STOPPING.items()
    }
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
            "from_design": list(kind.design_keys),
        }
        for kind in SCENARIO_TYPES.values()
    }
    if as_json:
        record = {
            "families": families,
            "conduct": [_option_record(o) for o in conduct],
            "stopping": stopping,
            "scenarios": scenarios,
        }
        typer.echo(_dumps(record, indent=2))
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
    lines += ["", "Stopping rules ([[conduct.stopping]] type = ..., any number, in order):", ""]
    for name, cls in STOPPING.items():
        reads = ", ".join(getattr(cls, "outcomes", ()))
        needs = f" (a family whose data have {reads})" if reads else ""
        lines.append(f"{name}: {_first_line(cls.__doc__)}{needs}")
        lines.append(f"  {_options_line(options_of(cls))}")
    lines += ["", "Scenario types ([scenario] type = ..., for simulate):", ""]
    for scenario_type in SCENARIO_TYPES.values():
        lines.append(f"{scenario_type.name}: {scenario_type.summary}")
        options = options_of(scenario_type.build)
        lines.append(f"  {_options_line(options, from_design=scenario_type.design_keys)}")
    lines += [
        "",
        'A key left out takes its default; "none" stands for None; "the design\'s" is the '
        "value the design has (its dose levels, target, planned sample size, ...), if it has one.",
    ]
    typer.echo("\n".join(lines))


# --------------------------------------------------------------------------- next-dose


def _json_value(value: Any) -> Any:
    """Return a quantity for JSON: numbers (None for NaN), arrays as lists, tuples as lists."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_json_value(v) for v in value]
    return _finite(value)


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


@app.command("next-dose", cls=_Command)
def next_dose(
    data_csv: Path = typer.Argument(
        ...,
        metavar="DATA_CSV",
        help=(
            "Trial data: a dose column, the model's outcomes, cohort (needed when the rule "
            "reads cohorts, e.g. a coherent CRM)."
        ),
    ),
    config: Path = typer.Option(..., "--config", "-c", help="Design configuration (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Decide the dose of the next cohort of a real trial.

    A fit that fails its convergence checks is an error here, whatever the conduct's
    on_refusal says: a real trial never stops because a sampler did not converge (a
    simulation may stop such a trial, and count it).
    """
    # The interpreter's last garbage collections, at exit, would walk every object that numba
    # built to load the kernels: a quarter of a second, a fifth of the command. Frozen, they
    # are left to the operating system. The command writes no file (its output is flushed at
    # exit as before), and handlers registered with atexit still run.
    atexit.register(gc.freeze)
    with rare_collections():
        from dosezoo.config import design_from_config, read_config
        from dosezoo.data import TrialData
        from dosezoo.report import dose_text

        try:
            design = design_from_config(read_config(config), str(config))
            if design.conduct.on_refusal != "raise":
                conduct = dataclasses.replace(design.conduct, on_refusal="raise")
                design = dataclasses.replace(design, conduct=conduct)
            schema = {} if design.model is None else design.model.data_schema()
            data = TrialData.from_csv(data_csv, **schema)
        except USER_ERRORS as error:
            _fail(str(error))
        decision = _on_rows_of(data_csv, data, lambda: design.next(data))
    # The dose unit of a model that records one (3PND's decisions depend on it)
    unit = getattr(design.model, "dose_unit", None)
    record = _decision_record(decision, data, design.label) | {"dose_unit": unit}
    if as_json:
        typer.echo(_dumps(record))
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
            lines.append(f"  {label}: {dose_text(stratum.next_dose)} ({_why(stratum)})")
        typer.echo("\n".join(lines))
        return
    assert decision.next_dose is not None  # not stopped, with no strata: it names a dose
    # A dose off the levels (a continuous rule's quantile) to 4 significant digits, as the
    # quantities are printed; --json keeps every digit.
    on_levels = decision.next_dose in (design.dose_levels or ())
    exact = isinstance(decision.next_dose, Sequence) or on_levels
    dose = dose_text(decision.next_dose) if exact else f"{decision.next_dose:.4g}"
    dose += f" {unit}" if unit else ""
    typer.echo(f"next dose: {dose} ({_why(decision)})")


def _why(decision: "Decision") -> str:
    """Return the quantities of a decision and what bound it, as next-dose prints."""
    scalars = _scalars(decision.quantities)
    parts = [", ".join(f"{key} = {value:.4g}" for key, value in scalars.items())]
    parts.append(f"bound by: {', '.join(decision.bound_by) or 'none'}")
    return "; ".join(filter(None, parts))


# --------------------------------------------------------------------------- simulate, report


def _summary_table(summary: "xr.Dataset", title: str) -> "Table":
    from rich.table import Table

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


def _allocation_table(title: str, allocated: dict[str, dict], unit: str | None) -> "Table":
    """Return the table of the patients per trial at each dose (mean, Monte Carlo SE)."""
    from rich.table import Table

    table = Table(title=title)
    for column in (f"dose ({unit})" if unit else "dose", "patients (mean)", "MCSE"):
        table.add_column(column, justify="right")
    for key, given in allocated.items():
        table.add_row(key, f"{given['mean']:.2f}", f"{given['se']:.2f}")
    return table


def _stopped_line(summary: "xr.Dataset") -> str:
    p, se = float(summary["p_stopped_early"]), float(summary["mcse_p_stopped_early"])
    return (
        f"stopped early: {p:.3f} (MCSE {se:.3f}): before the sample size, by a stopping rule or "
        "by the design's own end (3+3)"
    )


@app.command("simulate", cls=_Command)
def simulate_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="Design, scenario and simulation settings (TOML)."
    ),
    output: Path = typer.Option(..., "--output", "-o", help="netCDF file of the results."),
    trials: int | None = typer.Option(
        None, "--trials", min=1, help="Number of trials (in place of [simulation] n_trials)."
    ),
    random_seed: int | None = typer.Option(
        None, "--random-seed", min=0, help="Seed (in place of [simulation] random_seed)."
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", help="Worker processes, -1 for one per CPU (overrides n_jobs)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Simulate a design under a scenario; write netCDF and print the operating characteristics."""
    from dosezoo.config import design_from_config, read_config, simulation_from_config
    from dosezoo.report import COMMAND_ATTR, CONFIG_ATTR
    from dosezoo.simulate import operating_characteristics, simulate

    try:
        if output.suffix != ".nc":
            raise ValueError(
                f"--output {output}: the results are written as netCDF; give a file name "
                "ending in .nc"
            )
        raw = read_config(config)
        design = design_from_config(raw, str(config))
        settings = simulation_from_config(
            raw, design, str(config), n_trials=trials, random_seed=random_seed
        )
        n_trials = settings.n_trials
        # The results do not depend on the workers: the command records what fixes them.
        command = ["dosezoo", "simulate", str(config), "--output", str(output)]
        command += ["--trials", str(n_trials)]
        if random_seed is not None:
            command += ["--random-seed", str(random_seed)]
        results = simulate(
            design,
            settings.scenario,
            n_trials,
            random_seed=settings.random_seed,
            n_jobs=settings.n_jobs if jobs is None else jobs,
            path=output,
            progress=progress,
            record={
                COMMAND_ATTR: shlex.join(command),
                CONFIG_ATTR: config.read_text(encoding="utf-8"),
            },
        )
        summary = operating_characteristics(results)
    except USER_ERRORS as error:
        _fail(str(error))
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: the finished trials are saved in {output}.parts; the same command "
            "resumes after them",
            err=True,
        )
        raise typer.Exit(130) from None
    console = _console()
    console.print(
        _summary_table(summary, f"Operating characteristics over {n_trials} trials ({output})")
    )
    console.print(_stopped_line(summary))
    console.print(f"dosezoo report {output} for the selection and allocation per dose")


@app.command("report", cls=_Command)
def report_command(
    results_paths: list[Path] = typer.Argument(
        ...,
        metavar="RESULTS",
        help="netCDF results of dosezoo simulate (several only with --output).",
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write one self-contained HTML report (figures inline) instead of printing.",
    ),
    figure: Path | None = typer.Option(
        None, "--figure", help="Where to save the figure (default: the results' name, .png)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    random_seed: int = typer.Option(
        0,
        "--random-seed",
        min=0,
        help="Seed of the bootstrap of the medians' Monte Carlo SEs.",
    ),
) -> None:
    """Report a simulation: operating characteristics with MCSEs, selection and allocation.

    With --output REPORT.html, write one HTML file a protocol can carry: the operating
    characteristics with their Monte Carlo SEs, selection, allocation and DLTs per dose,
    stopping, figures, dose paths of example trials, the design's options, the package
    versions and the command that reproduces the results.
    """
    from rich.table import Table

    from dosezoo.report import (
        dose_unit,
        holds_target,
        load_results,
        per_dose,
        plot_per_dose,
        proportion,
        pyplot,
        row_label,
        selections_over_overdose_limit,
        title_of,
        unselected_at_the_end,
        write_html_report,
    )
    from dosezoo.simulate import operating_characteristics

    try:
        if output is not None:
            if figure is not None or as_json:
                raise ValueError(
                    "--output writes the HTML report; --figure and --json are for the printed "
                    "report of one results file"
                )
            write_html_report(results_paths, output, random_seed=random_seed)
        elif len(results_paths) > 1:
            raise ValueError(
                f"{len(results_paths)} results files: the printed report takes one; give "
                "--output REPORT.html for one report of them all"
            )
        else:
            results_path = results_paths[0]
            results = load_results(results_path)
            summary = operating_characteristics(results, random_seed=random_seed)
            per_dose_table = per_dose(results)
            figure = results_path.with_suffix(".png") if figure is None else figure
            plot = plot_per_dose(per_dose_table, title_of(results))
            _save_figure(figure, lambda path: plot.savefig(path, dpi=120))
            pyplot().close(plot)
            # matplotlib saves a name without a suffix as PNG, under that name plus ".png"
            figure = figure if figure.suffix else figure.with_name(figure.name + ".png")
    except USER_ERRORS as error:
        _fail(str(error))
    if output is not None:
        names = ", ".join(str(path) for path in results_paths)
        typer.echo(f"HTML report of {names}: {output}")
        return
    n = results.sizes["trial"]
    unit = dose_unit(results)
    over = selections_over_overdose_limit(results)
    over_limit = None if over is None else proportion(float(over.mean()), n)
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
            "title": title_of(results),
            "n_trials": n,
            "operating_characteristics": metrics,
            "p_stopped_early": float(summary["p_stopped_early"]),
            "mcse_p_stopped_early": float(summary["mcse_p_stopped_early"]),
            "unselected_at_the_end": unselected_at_the_end(results),
            "selected_over_overdose_limit": (
                None if over_limit is None else {"fraction": over_limit[0], "se": over_limit[1]}
            ),
            **per_dose_table,
            "dose_unit": unit,
            "figure": str(figure),
        }
        typer.echo(_dumps(record))
        return
    console = _console()
    console.print(title_of(results))
    console.print(_summary_table(summary, "Operating characteristics"))
    console.print(_stopped_line(summary))
    for reason, count in unselected_at_the_end(results).items():
        trials = "trial" if count == 1 else "trials"
        console.print(f"ran to the end, selected no dose: {count} {trials} ({reason})")
    if over_limit is not None:
        limit = results.attrs["design_conduct_max_overdose_probability"]
        console.print(
            f"selected a dose with P(overdose) > the overdose limit {limit:g}: "
            f"{over_limit[0]:.3f} (MCSE {over_limit[1]:.3f})"
        )
    allocated = {row_label(row): row for row in per_dose_table["allocation"]}
    none = per_dose_table["no_selection"]
    if any(row.get("stratum") for row in per_dose_table["selection"]):
        # Per stratum, fractions of the trials; the patients are counted over every stratum.
        chosen_table = Table(title="Selection per stratum (fraction of trials)")
        for column in ("stratum: dose", "selected", "MCSE"):
            chosen_table.add_column(column, justify="right")
        for chosen in per_dose_table["selection"]:
            chosen_table.add_row(
                row_label(chosen), f"{chosen['fraction']:.3f}", f"{chosen['se']:.3f}"
            )
        chosen_table.add_row(
            "none (of trials and strata)", f"{none['fraction']:.3f}", f"{none['se']:.3f}"
        )
        console.print(chosen_table)
        console.print(_allocation_table("Allocation per dose (every stratum)", allocated, unit))
    elif not per_dose_table["selects_dose"]:  # its trials end with an estimate, not a dose
        console.print(_allocation_table("Allocation per dose", allocated, unit))
    else:
        table = Table(title="Selection and allocation per dose")
        dose_column = f"dose ({unit})" if unit else "dose"
        for column in (dose_column, "selected", "MCSE", "patients (mean)", "MCSE "):
            table.add_column(column, justify="right")
        for chosen in per_dose_table["selection"]:
            target = " (target)" if holds_target(chosen, per_dose_table["targets"]) else ""
            given = allocated[row_label(chosen)]
            table.add_row(
                f"{row_label(chosen)}{target}",
                f"{chosen['fraction']:.3f}",
                f"{chosen['se']:.3f}",
                f"{given['mean']:.2f}",
                f"{given['se']:.2f}",
            )
        table.add_row("none", f"{none['fraction']:.3f}", f"{none['se']:.3f}", "", "")
        other = per_dose_table["other_selection"]
        if other > 0:  # a recommendation off the listed doses: the column still sums to 1
            _, se = proportion(other, n)
            table.add_row("other dose", f"{other:.3f}", f"{se:.3f}", "", "")
        console.print(table)
    patients = results["n_patients"].values
    console.print(
        f"patients per trial: mean {per_dose_table['patients_per_trial']:.2f} "
        f"(MCSE {per_dose_table['patients_per_trial_se']:.2f}), median {np.median(patients):g}, "
        f"range {patients.min():g} to {patients.max():g}"
    )
    shown = "selection and allocation" if per_dose_table["selects_dose"] else "allocation"
    console.print(f"figure of the {shown}: {figure}")


# --------------------------------------------------------------------------- decision-table


def _cells(values: Sequence[int | None]) -> list[str]:
    return ["NA" if value is None else str(value) for value in values]


def _print_own_table(label: str, config: str, rows: Sequence[Any]) -> None:
    """Print a rule's own decision table (rows of one dataclass), one column per field."""
    from rich.table import Table

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


@app.command("decision-table", cls=_Command)
def decision_table_command(
    config: Path = typer.Argument(
        ..., metavar="CONFIG", help="Configuration of a count design (BOIN, 3+3, BOIN12)."
    ),
    max_patients: int | None = typer.Option(
        None,
        "--max-patients",
        min=1,
        help="Largest number of patients at a dose (default: the sample size or 12, the smaller).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Tabulate a count design's escalation decisions by patients and DLTs at the current dose."""
    from rich.table import Table

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
        typer.echo(_dumps(record))
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


@app.command("paths", cls=_Command)
def paths_command(
    data_csv: Path = typer.Argument(
        ...,
        metavar="DATA_CSV",
        help=(
            "Trial data so far: a dose column, the model's outcomes, cohort (needed when the rule "
            "reads cohorts, e.g. a coherent CRM)."
        ),
    ),
    config: Path = typer.Option(..., "--config", "-c", help="Design configuration (TOML)."),
    cohorts: int = typer.Option(2, "--cohorts", help="Future cohorts to enumerate."),
    as_json: bool = typer.Option(False, "--json", help="Print the pathways as JSON records."),
    figure: Path | None = typer.Option(None, "--figure", help="Also draw the tree (PNG, PDF)."),
) -> None:
    """Show the design's decision after every outcome of the next cohorts (pathways).

    Outcomes are coded per cohort as in R's escalation: N = no DLT, T = DLT
    ("1NNT 2NNN": cohort 1 had one DLT, cohort 2 none). A design that also reads
    efficacy codes each patient with both, comma-separated: joint-probit's efficacy
    0/1/2 as E0/E1/E2 ("1NE0,NE1,TE2"), boin12's response or none as E1/E0. Patients
    of a cohort are exchangeable: each multiset of outcomes is one branch.
    """
    from rich.table import Table

    from dosezoo.config import design_from_config, read_config
    from dosezoo.data import TrialData
    from dosezoo.designs.pathways import dose_paths
    from dosezoo.report import pyplot

    try:
        design = design_from_config(read_config(config), str(config))
        schema = {} if design.model is None else design.model.data_schema()
        data = TrialData.from_csv(data_csv, **schema)
    except USER_ERRORS as error:
        _fail(str(error))
    paths = _on_rows_of(data_csv, data, lambda: dose_paths(design, data, cohorts))
    if as_json:
        typer.echo(paths.to_json())
    else:
        ahead = f"{cohorts} cohort" + ("" if cohorts == 1 else "s")
        table = Table(title=f"Dose transition pathways of {design.label} ({ahead})")
        for column in ("path", "dose", "n_patients", "next_dose", "stop_reason"):
            table.add_column(column)
        for row in paths.table.itertuples():
            dose = "" if row.cohort == 0 else _json_text(row.dose)
            next_text = "stop" if row.stop_reason else _json_text(row.next_dose)
            table.add_row(
                row.path or "(now)", dose, str(row.n_patients), next_text, row.stop_reason
            )
        _console().print(table)
    if figure is not None:
        pyplot()
        axes = paths.plot()
        _save_figure(figure, lambda path: axes.figure.savefig(path, bbox_inches="tight"))


def _json_text(value: Any) -> str:
    """Return a dose of the pathways' table as text (a float, or a combination's string)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    app()
