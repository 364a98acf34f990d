"""Command-line interface: ``dosezoo demo``, ``dosezoo next-dose``, ``dosezoo simulate``.

Errors in the data or the configuration are reported as one line on stderr and a non-zero
exit status (2), never as a traceback.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from dosezoo.config import design_from_config, read_config, simulation_from_config
from dosezoo.data import TrialData
from dosezoo.datasets import load_o6bg
from dosezoo.designs import MTDQuantileRule
from dosezoo.errors import ConvergenceError
from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.studies import O6BG_ALPHAS, O6BG_LEVELS, O6BG_MODEL, o6bg_trial

app = typer.Typer(add_completion=False, help="dosezoo: Bayesian dose-finding models and designs.")

#: Exit status for bad data or configuration.
USAGE_ERROR = 2


@app.callback()
def main() -> None:
    """Bayesian dose-finding models and trial designs built on PyMC."""


def _fail(message: str) -> None:
    Console(stderr=True).print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(USAGE_ERROR)


@app.command()
def demo(
    random_seed: int = typer.Option(2023, help="Seed of the simulated re-designed trials."),
    figure: Path = typer.Option(
        Path("o6bg_redesign.png"), help="Where to save the figure of the posterior curves."
    ),
) -> None:
    """Seed 001's O6-BG re-design: fit the real trial, then run the 3PND re-design."""
    console = Console(soft_wrap=True)
    data = load_o6bg()
    console.print(
        f"O6-BG trial (Friedman et al. 1998, seed 001): {data.n_patients} patients; "
        f"response y = 60 - AGT (fmol/mg); model {O6BG_MODEL}"
    )
    posterior = O6BG_MODEL.posterior(data)
    table = Table(title="Posterior of the MTD on the real data (mg/m^2, exact quadrature)")
    probabilities = (0.05, 0.1, 0.5, 0.9, 0.95)
    for p in probabilities:
        table.add_column(f"{p:.0%}", justify="right")
    table.add_row(*(f"{posterior.mtd.quantile(p):.1f}" for p in probabilities))
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


def _plot_redesign(trials: dict, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


@app.command("next-dose")
def next_dose(
    data_csv: Path = typer.Argument(..., help="Trial data: columns dose, y (cohort optional)."),
    config: Path = typer.Option(..., "--config", "-c", help="Design configuration (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
) -> None:
    """Decide the dose of the next cohort of a real trial."""
    try:
        design = design_from_config(read_config(config), str(config))
        data = TrialData.from_csv(data_csv)
        decision = design.next(data)
    except (ValueError, ConvergenceError, FileNotFoundError) as error:
        _fail(str(error))
    record = {
        "next_dose": decision.next_dose,
        "stop_reason": decision.stop_reason,
        "bound_by": list(decision.bound_by),
        "quantities": decision.quantities,
        "n_patients": data.n_patients,
    }
    if as_json:
        typer.echo(json.dumps(record))
        return
    if decision.stopped:
        typer.echo(f"stop: {decision.stop_reason}")
        return
    details = ", ".join(f"{key} = {value:.4g}" for key, value in decision.quantities.items())
    bound = ", ".join(decision.bound_by) or "none"
    typer.echo(f"next dose: {decision.next_dose:g} ({details}; options that bound it: {bound})")


@app.command("simulate")
def simulate_command(
    config: Path = typer.Argument(..., help="Design, scenario and simulation settings (TOML)."),
    output: Path = typer.Option(..., "--output", "-o", help="netCDF file of the results."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Simulate a design under a scenario; write netCDF and print the operating characteristics."""
    try:
        raw = read_config(config)
        design = design_from_config(raw, str(config))
        settings = simulation_from_config(raw, design, str(config))
        results = simulate(
            design,
            settings.scenario,
            settings.n_trials,
            random_seed=settings.random_seed,
            n_jobs=settings.n_jobs,
            path=output,
            progress=progress,
        )
    except ValueError as error:  # DataError and ConfigError included
        _fail(str(error))
    summary = operating_characteristics(results)
    table = Table(title=f"Operating characteristics over {settings.n_trials} trials ({output})")
    for column in ("metric", "median", "MCSE", "mean", "MCSE ", "n"):
        table.add_column(column, justify="right")
    for metric in summary["metric"].values:
        row = summary.sel(metric=metric)
        table.add_row(
            str(metric),
            *(f"{float(row[name]):.4g}" for name in ("median", "mcse_median", "mean", "mcse_mean")),
            str(int(row["n"])),
        )
    Console(width=120).print(table)
    typer.echo(f"stopped early: {float(summary['p_stopped_early']):.3f}")


if __name__ == "__main__":
    app()
