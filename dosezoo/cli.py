"""Command-line interface: ``dosezoo demo`` (also ``python -m dosezoo.cli demo``)."""

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from dosezoo.datasets import load_o6bg
from dosezoo.designs.mtd_quantile import MTDQuantileRule
from dosezoo.models.three_pnd import ENGINES, ThreePND

app = typer.Typer(add_completion=False, help="dosezoo: Bayesian dose-finding models and designs.")

#: The O6-BG re-design of seed 001 (Application): 3PND hyper-parameters and dose levels.
O6BG_MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
O6BG_LEVELS = (40.0, 60.0, 80.0, 100.0, 120.0)


@app.callback()
def main() -> None:
    """Bayesian dose-finding models and trial designs built on PyMC."""


@app.command()
def demo(
    engine: str = typer.Option("kernel", help=f"Posterior engine, one of {ENGINES}."),
    alpha: float = typer.Option(0.1, help="Feasibility bound: P(MTD < next dose) <= alpha."),
    draws: int = typer.Option(2000, help="Draws per chain."),
    chains: int = typer.Option(2, help="Number of chains."),
    random_seed: int = typer.Option(2023, help="Random seed."),
) -> None:
    """Fit 3PND to the O6-BG trial (24 patients) and print the MTD posterior and the next dose."""
    console = Console()
    data = load_o6bg()
    console.print(f"O6-BG trial (seed 001, Application): {data}; response y = 60 - AGT (fmol/mg)")
    console.print(f"Model: {O6BG_MODEL}; engine {engine!r}")
    idata = O6BG_MODEL.fit(
        data, draws=draws, tune=1000, chains=chains, engine=engine, random_seed=random_seed
    )

    mtd = idata["posterior"]["mtd"].to_numpy().ravel()
    table = Table(title="Posterior of the MTD (mg/m^2)")
    for column in ("mean", "sd", "5%", "10%", "50%", "90%", "95%"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{mtd.mean():.1f}",
        f"{mtd.std(ddof=1):.1f}",
        *(f"{q:.1f}" for q in np.quantile(mtd, [0.05, 0.1, 0.5, 0.9, 0.95])),
    )
    console.print(table)

    continuous = MTDQuantileRule(alpha=alpha).decide(idata, data)
    levels = MTDQuantileRule(alpha=alpha, dose_levels=O6BG_LEVELS).decide(idata, data)
    diagnostics = Table(title="Convergence of mtd (the quantity the rule uses)")
    for column in ("r_hat", "ess_bulk", "ess_tail"):
        diagnostics.add_column(column, justify="right")
    row = continuous.diagnostics.loc["mtd"]
    diagnostics.add_row(f"{row['r_hat']:.4f}", f"{row['ess_bulk']:.0f}", f"{row['ess_tail']:.0f}")
    console.print(diagnostics)
    console.print(
        f"Next dose at alpha = {alpha}: {continuous.next_dose:.1f} mg/m^2 on a continuous scale "
        f"(P(MTD < dose) = {continuous.quantities['p_overdose']:.3f})"
    )
    console.print(
        f"Nearest of the levels {O6BG_LEVELS}: {levels.next_dose:.0f} mg/m^2 "
        f"(P(MTD < dose) = {levels.quantities['p_overdose']:.3f}; options that bound it: "
        f"{', '.join(levels.bound_by) or 'none'})"
    )


if __name__ == "__main__":
    app()
