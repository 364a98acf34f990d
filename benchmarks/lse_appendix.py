"""The studies of Seno et al. (2025) left over by ``lse_comparison.py``: Appendices B and D and more.

Reuses the cells of :mod:`lse_comparison` (same trials, seeds, MCMC settings and saved runs in
``benchmarks/runs/lse/``; a cell already run there is read back, not simulated again).
Parts, each chosen by its flag and each writing ``<stem>.csv``, ``.json`` (command, wall
time, load averages) and the page ``<stem>.md`` in ``--results-dir`` (``docs/results``):

- ``--acquisition-comparison`` (Appendix D): the LSE design with the misclassification
  acquisition and with the classification-ambiguity acquisition, both with overdose weight
  lambda 1, on ``--scenarios`` (all 20) -> ``lse_acquisition``;
- ``--lambda-sensitivity`` (Section 5.2.3): lambda in 0, 0.25, ..., 1.25 on all 20 scenarios,
  :func:`lse_comparison.sensitivity` -> ``lse_lambda_sensitivity``;
- ``--lowest-dose-sensitivity``: the constants the paper's text lost that act when the MTD
  is the lowest dose, the threshold of admissible-set rule (ii) and the safety stop, one at
  a time around our defaults, for LSE (lambda 1) and BO on ``--lowest-scenarios`` (MTD at
  dose 1 or 2) -> ``lse_lowest_dose``;
- ``--monotonicity`` (Section 4.2.2, Appendix B): the prior probability that the GP's DLT curve
  increases over the five doses, :meth:`dosezoo.models.latent_gp.LatentGP.prior_monotone_probability`,
  for both targets, every prior MTD location and length-scales around the paper's 1
  -> ``lse_gp_monotonicity``.

``--report-only`` rewrites the pages from the saved CSV and JSON files.

Usage: ``make lse-appendix``, or at smoke size
``python benchmarks/lse_appendix.py --trials 20 --acquisition-comparison --results-dir /tmp/x``.
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import lse_comparison as lse  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from report import RESULTS, write_page  # noqa: E402

from dosezoo.designs.lse import AdmissibleSet, bo_design, lse_design  # noqa: E402
from dosezoo.models.latent_gp import LatentGP, quantile_prior_mean  # noqa: E402
from dosezoo.scenarios import (  # noqa: E402
    SENO2025_DOSE_LEVELS,
    SENO2025_SCENARIOS,
    seno2025_target,
)

#: What `make lse-appendix` runs.
MAKE_RUN = lse.APPENDIX_RUN
REBUILD = "lse_appendix.py --report-only"
#: Metrics of the acquisition and lowest-dose tables (the row keys of lse_comparison.run_cell).
METRICS = ("PCS", "PCA", "POS", "POA", "pDLT", "no_selection", "lowest_selected")

# ----------------------------------------------------------------- acquisition (Appendix D)

#: Column label -> cell name (the misclassification arm is lse_comparison's LSE_lambda1 cell).
ACQUISITIONS = {"misclassification": "LSE_lambda1", "ambiguity": "LSE_ambiguity_lambda1"}


def ambiguity_design(target: float):
    """Return the LSE design with the classification-ambiguity acquisition, lambda 1 (App. D)."""
    return lse_design(
        target,
        SENO2025_DOSE_LEVELS,
        overdose_weight=1.0,
        acquisition="ambiguity",
        random_seed=lse.SEED,
        **lse.MCMC,
    )


FACTORIES = {"LSE_ambiguity_lambda1": ambiguity_design}

# --------------------------------------------------------------- lowest-dose constants

#: Our defaults: rule (ii) 0.8, exclusion (iii) 0.9, safety stop 0.9.
DEFAULT_CONSTANTS = {"single": 0.8, "exclusion": 0.9, "stop": 0.9}
#: Variant label -> the constants it changes (one at a time around the defaults). The stop
#: cannot exceed the exclusion threshold (the admissible set could be empty without a stop),
#: so the 0.95 stop raises (iii) to 0.95 too.
LOWEST_VARIANTS = {
    "default": {},
    "ii=0.5": {"single": 0.5},
    "ii=0.65": {"single": 0.65},
    "stop=0.8": {"stop": 0.8},
    "stop=0.95": {"stop": 0.95, "exclusion": 0.95},
}
LOWEST_DESIGNS = {"LSE_lambda1": lse_design, "BO": bo_design}


def lowest_cell(design: str, variant: str) -> str:
    """Cell name (and saved-run name) of a design under a variant of the constants."""
    if variant == "default":
        return design  # the comparison study's own cell
    constants = DEFAULT_CONSTANTS | LOWEST_VARIANTS[variant]
    return (
        f"{design}_ii{constants['single']:g}_ex{constants['exclusion']:g}_stop{constants['stop']:g}"
    )


def lowest_factory(design: str, variant: str):
    """Return ``target -> design`` for a design under a variant of the constants."""
    constants = DEFAULT_CONSTANTS | LOWEST_VARIANTS[variant]
    build = LOWEST_DESIGNS[design]
    extra = {"overdose_weight": 1.0} if design.startswith("LSE") else {}

    def factory(target: float):
        return build(
            target,
            SENO2025_DOSE_LEVELS,
            admissible=AdmissibleSet(
                single_dose_threshold=constants["single"],
                exclusion_threshold=constants["exclusion"],
            ),
            stop_threshold=constants["stop"],
            random_seed=lse.SEED,
            **extra,
            **lse.MCMC,
        )

    return factory


def mtd_level(scenario: int) -> int:
    """1-based MTD level of a scenario of Table 1 (the dose whose rate is the target)."""
    rates = np.asarray(SENO2025_SCENARIOS[scenario])
    return int(np.argmin(np.abs(rates - seno2025_target(scenario)))) + 1


# ------------------------------------------------------------------------- running


def run_cells(cells, scenarios: list[int], trials: int, jobs: int) -> pd.DataFrame:
    """Run ``(label, cell name, factory or None)`` on every scenario; rows with ``label``."""
    rows = []
    for label, name, factory in cells:
        for scenario in scenarios:
            row, elapsed = lse.run_cell(name, scenario, trials, jobs, factory=factory)
            rows.append(row | {"label": label})
            print(
                f"{label:28s} scenario {scenario:2d}: PCS {row['PCS']:5.1f} lowest "
                f"{row['lowest_selected']:5.1f} ({elapsed:.1f} s)",
                flush=True,
            )
    return pd.DataFrame(rows)


def save(table: pd.DataFrame, record: dict, stem: str, results: Path) -> None:
    """Write ``<stem>.csv`` and ``<stem>.json``."""
    table.to_csv(results / f"{stem}.csv", index=False, float_format="%.6g")
    (results / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")


def timed(run, *, command: str, trials: int, jobs: int, scenarios: list[int]):
    """Run ``run()`` and return its table and record (wall time, load before and after)."""
    before = os.getloadavg()
    started = time.perf_counter()
    table = run()
    record = lse.run_record(time.perf_counter() - started, jobs, trials, scenarios, command)
    record["load_average_before"] = [round(v, 2) for v in before]
    record["cells"] = len(table)
    return table, record


def wide(table: pd.DataFrame, metric: str, columns: list[str]) -> list[str]:
    """Markdown lines: scenarios as rows, ``columns`` (labels) as columns, ``mean (SE)``."""
    cells = table.assign(cell=lse._cell_text(table, metric)).pivot(
        index="scenario", columns="label", values="cell"
    )
    cells = cells.reindex(columns=[c for c in columns if c in cells.columns])
    lines = ["| scenario (MTD) | " + " | ".join(cells.columns) + " |"]
    lines.append("|---" * (len(cells.columns) + 1) + "|")
    lines += [
        f"| {s} ({mtd_level(s)}) | " + " | ".join(values) + " |" for s, values in cells.iterrows()
    ]
    return lines


# ------------------------------------------------------------------ acquisition part


def acquisition_comparison(scenarios, trials, jobs, results, command) -> None:
    """Appendix D: misclassification versus classification ambiguity, lambda 1."""
    cells = [(label, name, FACTORIES.get(name)) for label, name in ACQUISITIONS.items()]
    table, record = timed(
        lambda: run_cells(cells, scenarios, trials, jobs),
        command=command,
        trials=trials,
        jobs=jobs,
        scenarios=scenarios,
    )
    save(table, record, "lse_acquisition", results)
    write_part_report("lse_acquisition", results)


def acquisition_markdown(table: pd.DataFrame, record: dict) -> str:
    """Return the acquisition page's body: the run, the differences, one table per metric."""
    pivot = {
        m: table.pivot(index="scenario", columns="label", values=m)
        for m in (*METRICS, *(f"{m}_se" for m in METRICS))
    }
    lines = [
        lse.run_text(record),
        "",
        "Both arms are the two-stage LSE design of `lse_comparison.md` with overdose weight "
        "lambda 1; only the acquisition differs: the misclassification probability "
        "`min(pi_k, 1 - pi_k) (1 - P(p_k > phi))^lambda` (Section 4.3.3) or the classification "
        "ambiguity `c_k = min(u_k - phi, phi - l_k)` with `[l_k, u_k]` the 95% credible interval "
        "of p_k (Appendix D), times the same weight where `c_k >= 0` and divided by it where "
        "`c_k < 0` (`designs/lse.py` says why). Common random numbers: trial t has the same "
        "patients under both. Percent, Monte Carlo SE in brackets.",
        "",
        "Seno et al. (2025) report no major difference in dose identification between the two "
        "(Section 6, Appendix D). On this run (difference ambiguity - misclassification, flagged "
        "when beyond 2 SE of the difference, SE from the two cells' SEs, which ignores the "
        "positive correlation of common random numbers and so overstates it):",
        "",
    ]
    for metric in ("PCS", "PCA", "POS", "POA"):
        diff = pivot[metric]["ambiguity"] - pivot[metric]["misclassification"]
        se = np.hypot(
            pivot[f"{metric}_se"]["ambiguity"], pivot[f"{metric}_se"]["misclassification"]
        )
        flagged = diff.index[np.abs(diff) > 2 * se]
        lines.append(
            f"- {metric}: mean difference {diff.mean():+.1f} points over {len(diff)} scenarios "
            f"(range {diff.min():+.1f} to {diff.max():+.1f}); beyond 2 SE in "
            + (", ".join(f"{s} ({diff[s]:+.1f})" for s in flagged) or "none")
            + "."
        )
    lines += [
        "",
        "Why a negative ambiguity is divided by the weight: a dose already classified has a "
        "negative ambiguity, which a product with a weight below 1 would move towards 0, i.e. "
        "up, favouring the more toxic of two classified doses. At this credible level the two "
        "forms rarely differ: a dose classified above the target by the 95% interval "
        "(l_k > phi) has P(p_k > phi) >= 0.975 and is outside the admissible set (rule (iii), "
        "0.9), and a dose classified below has P(p_k > phi) <= 0.025, a weight of at least "
        "0.975.",
    ]
    for metric in METRICS:
        lines += ["", f"## {metric} (%)", "", *wide(table, metric, list(ACQUISITIONS))]
    return "\n".join(lines)


# ------------------------------------------------------------------ lowest-dose part


def lowest_dose_sensitivity(scenarios, trials, jobs, results, command) -> None:
    """Rule (ii) and the safety stop, one at a time, for LSE (lambda 1) and BO."""
    cells = [
        (f"{design} {variant}", lowest_cell(design, variant), lowest_factory(design, variant))
        for design in LOWEST_DESIGNS
        for variant in LOWEST_VARIANTS
    ]
    table, record = timed(
        lambda: run_cells(cells, scenarios, trials, jobs),
        command=command,
        trials=trials,
        jobs=jobs,
        scenarios=scenarios,
    )
    record["variants"] = {v: DEFAULT_CONSTANTS | c for v, c in LOWEST_VARIANTS.items()}
    save(table, record, "lse_lowest_dose", results)
    write_part_report("lse_lowest_dose", results)


def lowest_verdict(table: pd.DataFrame) -> list[str]:
    """Per design and variant: mean change from the defaults where the MTD is dose 1 and elsewhere."""
    lines = []
    lowest = [s for s in sorted(set(table["scenario"])) if mtd_level(s) == 1]
    others = [s for s in sorted(set(table["scenario"])) if mtd_level(s) != 1]
    better = []
    for design in LOWEST_DESIGNS:
        base = table[table["label"] == f"{design} default"].set_index("scenario")
        for variant in LOWEST_VARIANTS:
            if variant == "default":
                continue
            rows = table[table["label"] == f"{design} {variant}"].set_index("scenario")
            change = rows[list(METRICS)] - base[list(METRICS)]
            se = np.hypot(rows[[f"{m}_se" for m in METRICS]], base[[f"{m}_se" for m in METRICS]])
            se.columns = list(METRICS)

            def mean(metric: str, where: list[int], change=change) -> str:
                return f"{change.loc[where, metric].mean():+.1f}" if where else "n/a"

            lines.append(
                f"- {design}, {variant}: PCS {mean('PCS', lowest)} where the MTD is dose 1 "
                f"(scenarios {', '.join(map(str, lowest)) or 'none'}), {mean('PCS', others)} "
                f"elsewhere; lowest dose selected {mean('lowest_selected', lowest)} / "
                f"{mean('lowest_selected', others)}; no MTD {mean('no_selection', lowest)} / "
                f"{mean('no_selection', others)}; POS {mean('POS', others)} elsewhere."
            )
            # A variant earns a change of default only if it raises PCS where the MTD is the
            # lowest dose beyond 2 SE on average and costs no PCS beyond 2 SE elsewhere.
            gain = change.loc[lowest, "PCS"].mean() if lowest else 0.0
            gain_se = np.sqrt((se.loc[lowest, "PCS"] ** 2).sum()) / max(len(lowest), 1)
            loss = change.loc[others, "PCS"].mean() if others else 0.0
            loss_se = np.sqrt((se.loc[others, "PCS"] ** 2).sum()) / max(len(others), 1)
            if lowest and gain > 2 * gain_se and loss > -2 * loss_se:
                better.append(f"{design} {variant}")
    lines += [
        "",
        "Which values we keep: rule (ii) 0.8 and the safety stop 0.9 (with (iii) 0.9). The stop "
        "at 0.9 is BOIN's extra-safe convention, the one the paper's CRM and BOIN arms use "
        "(Appendix C), so the four designs stop alike; (ii) must lie below (iii) (Section "
        "4.3.1). A variant would replace a default only if it raised PCS where the MTD is the "
        "lowest dose by more than 2 SE on average without lowering it by more than 2 SE "
        "elsewhere. On this run: "
        + (
            "that holds for " + ", ".join(better) + "; the change of default is left to a "
            "run at full size and a look at POS and the stops above."
            if better
            else "no variant does, so the defaults stay."
        ),
    ]
    return lines


def lowest_markdown(table: pd.DataFrame, record: dict) -> str:
    """Return the lowest-dose page's body: run, constants, verdict, one table per metric."""
    variants = record["variants"]
    labels = [f"{d} {v}" for d in LOWEST_DESIGNS for v in LOWEST_VARIANTS]
    lines = [
        lse.run_text(record),
        "",
        "The constants of Section 4.3.1 and 4.4 that act when the MTD is the lowest dose lost "
        "their values from our copy of Seno et al. (2025): rule (ii) (only the lowest dose "
        "when P(p_1 > phi) > ii), rule (iii) (only doses with P(p_k > phi) < iii) and the "
        "safety stop (no MTD when P(p_1 > phi) > stop with 3 or more patients at dose 1). "
        "Variants, one change at a time (the stop may not exceed (iii)): "
        + "; ".join(
            f"`{v}`: ii {c['single']:g}, iii {c['exclusion']:g}, stop {c['stop']:g}"
            for v, c in variants.items()
        )
        + ". `lowest_selected` is the percentage of trials recommending dose 1 (correct when "
        "the MTD, in brackets after the scenario, is 1). Percent, Monte Carlo SE in brackets.",
        "",
        "Changes from the defaults (percentage points, means over scenarios):",
        "",
        *lowest_verdict(table),
    ]
    for metric in ("lowest_selected", "PCS", "no_selection", "POS", "PCA", "POA"):
        lines += ["", f"## {metric} (%)", "", *wide(table, metric, labels)]
    return "\n".join(lines)


# ------------------------------------------------------------------ monotonicity part

#: Length-scales of the prior check; the paper (and our default) is 1.
LENGTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def monotonicity(draws: int, results: Path, command: str) -> None:
    """Appendix B: prior probability of an increasing DLT curve over the five doses."""
    rows = []
    before = os.getloadavg()
    started = time.perf_counter()
    for target in (0.2, 0.3):
        for length_scale in LENGTH_SCALES:
            model = LatentGP.from_quantiles(SENO2025_DOSE_LEVELS, target, length_scale=length_scale)
            for location in (None, 1, 2, 3, 4, 5):
                mean = quantile_prior_mean(
                    target,
                    model.scaled_doses,
                    sigma_f_mean=model.sigma_f_mean,
                    prior_mtd_level=None if location is None else location - 1,  # 0-based
                )
                p, se = model.prior_monotone_probability(
                    draws, random_seed=lse.SEED + len(rows), mean=mean
                )
                rows.append(
                    {
                        "target": target,
                        "length_scale": length_scale,
                        "prior_mtd": "none" if location is None else str(location),
                        "p_monotone": p,
                        "se": se,
                    }
                )
    record = {
        "wall_seconds": round(time.perf_counter() - started, 2),
        "draws": draws,
        "command": command,
        "load_average_before": [round(v, 2) for v in before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "sigma_f_range": list(model.sigma_f_range),
    }
    save(pd.DataFrame(rows), record, "lse_gp_monotonicity", results)
    write_part_report("lse_gp_monotonicity", results)


def monotonicity_markdown(table: pd.DataFrame, record: dict) -> str:
    """Return the monotonicity page's body: one table per target, length-scales as columns."""
    lines = [
        f"Made by `{record['command']}`: {record['draws']} prior draws per cell, "
        f"{record['wall_seconds']:.1f} s (load average {record['load_average_before'][0]:.1f}).",
        "",
        "Probability, under the GP prior of the LSE and BO designs, that the DLT curve "
        "increases over the five doses, p_1 < ... < p_5 (`LatentGP.prior_monotone_probability`),"
        " with the prior mean of Section 4.2.1 (margin 0.05, prob_low = prob_high = 0.8, "
        f"sigma_f central 95% interval {tuple(record['sigma_f_range'])}) for each prior MTD "
        "location ('none': the line through the two end statements) and the length-scale in "
        "the column; the paper and our designs use length-scale 1 on doses scaled to [0, 1] "
        "(Section 4.2.2, Appendix B). Monte Carlo SE in brackets. Only the doses are checked, "
        "not the curve between them.",
    ]
    for target, part in table.groupby("target"):
        cells = part.assign(
            cell=part["p_monotone"].map("{:.3f}".format)
            + " ("
            + part["se"].map("{:.3f}".format)
            + ")"
        ).pivot(index="prior_mtd", columns="length_scale", values="cell")
        lines += ["", f"## Target {target:g}", ""]
        lines.append("| prior MTD | " + " | ".join(f"l = {c:g}" for c in cells.columns) + " |")
        lines.append("|---" * (len(cells.columns) + 1) + "|")
        lines += [f"| {i} | " + " | ".join(v) + " |" for i, v in cells.iterrows()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


#: Each part's page: its title and the function that writes its markdown from the saved data.
PAGES = {
    "lse_acquisition": (
        "Seno et al. (2025): misclassification versus ambiguity acquisition (Appendix D)",
        acquisition_markdown,
    ),
    "lse_lowest_dose": (
        "Seno et al. (2025): the constants that act at the lowest dose (rule (ii), safety stop)",
        lowest_markdown,
    ),
    "lse_gp_monotonicity": (
        "Seno et al. (2025): prior probability of a monotone DLT curve (Appendix B)",
        monotonicity_markdown,
    ),
}


def write_part_report(stem: str, results: Path) -> None:
    """Write ``<stem>.md`` from the part's saved CSV and JSON."""
    title, markdown = PAGES[stem]
    table = pd.read_csv(results / f"{stem}.csv", dtype={"prior_mtd": str})
    record = json.loads((results / f"{stem}.json").read_text())
    write_page(
        stem,
        title,
        markdown(table, record),
        make="lse-appendix",
        runs=[MAKE_RUN],
        rebuild=REBUILD,
        data=[f"{stem}.csv", f"{stem}.json"],
        results=results,
    )


def report_only(results: Path) -> None:
    """Rewrite every page whose data files are saved in ``results``."""
    for stem in PAGES:
        if (results / f"{stem}.csv").exists() and (results / f"{stem}.json").exists():
            write_part_report(stem, results)
    if (results / "lse_lambda_sensitivity.csv").exists():
        lse.write_sensitivity_report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="trials per cell")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--scenarios", type=str, default="1-20", help="e.g. '1-20' or '1,5,13'")
    parser.add_argument(
        "--lowest-scenarios",
        type=str,
        default="1,2,11,12,3,4,13,14",
        help="scenarios of --lowest-dose-sensitivity (MTD at dose 1: 1, 2, 11, 12)",
    )
    parser.add_argument("--acquisition-comparison", action="store_true")
    parser.add_argument("--lambda-sensitivity", action="store_true")
    parser.add_argument("--lowest-dose-sensitivity", action="store_true")
    parser.add_argument("--monotonicity", action="store_true")
    parser.add_argument("--prior-draws", type=int, default=100000, help="for --monotonicity")
    parser.add_argument("--draws", type=int, default=lse.MCMC["draws"], help="GP draws per fit")
    parser.add_argument("--tune", type=int, default=lse.MCMC["tune"], help="GP burn-in per fit")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    results = args.results_dir
    results.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report_only(results)
        return
    lse.MCMC.update(draws=args.draws, tune=args.tune)
    lse.RUNS.mkdir(parents=True, exist_ok=True)
    base = (
        f"python benchmarks/lse_appendix.py --trials {args.trials} --jobs {args.jobs} "
        f"--draws {args.draws} --tune {args.tune}"
    )
    if args.acquisition_comparison:
        acquisition_comparison(
            lse.parse_scenarios(args.scenarios),
            args.trials,
            args.jobs,
            results,
            f"{base} --acquisition-comparison --scenarios {args.scenarios}",
        )
    if args.lambda_sensitivity:
        lse.sensitivity(
            lse.parse_scenarios(args.scenarios),
            args.trials,
            args.jobs,
            results=results,
            command=f"{base} --lambda-sensitivity --scenarios {args.scenarios}",
        )
    if args.lowest_dose_sensitivity:
        lowest_dose_sensitivity(
            lse.parse_scenarios(args.lowest_scenarios),
            args.trials,
            args.jobs,
            results,
            f"{base} --lowest-dose-sensitivity --lowest-scenarios {args.lowest_scenarios}",
        )
    if args.monotonicity:
        monotonicity(
            args.prior_draws,
            results,
            f"python benchmarks/lse_appendix.py --monotonicity --prior-draws {args.prior_draws}",
        )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
