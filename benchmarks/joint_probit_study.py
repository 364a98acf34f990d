"""Joint latent-probit model (Lin 2023): validation figures and the simulation comparison.

Parts (each writes its own JSON; the Markdown report is rebuilt from every JSON present):

- ``validate``: agreement of the Gibbs kernel, of the independence Metropolis-Hastings engine
  (``imh``) and of the PyMC step methods with NUTS on a 12-patient trial (z-scores of means and
  quantiles over their Monte Carlo SEs), ESS per second; SBC of the kernel, of ``imh`` and of
  the step methods, and of two deliberately wrong kernels of
  :mod:`dosezoo.validation` (the Jacobian bug and the coefficient draws that ignore the
  correlation);
- ``simulate``: Lin (2023)'s design (``optimus_design``) against the toxicity-only CRM
  (``crm_design``, target 0.25, the middle of the toxicity interval) on the same simulated
  patients (common random numbers) in the three scenarios of
  :func:`dosezoo.scenarios.standard_efftox_scenarios`. ``--futility-cutoff`` and
  ``--range-probability`` set the two options of the rule that Lin (2023) leaves open;
  ``--tag`` names the output files of a configuration.

Run: ``make joint-probit-study`` or ``.venv/bin/python benchmarks/joint_probit_study.py
[--part validate|simulate|all|report] [--trials N] [--jobs J] [--futility-cutoff F|none]
[--range-probability P] [--tag T]``. Outputs: ``docs/results/joint_probit_validation.json``,
``joint_probit_simulation<T>.{json,csv}`` and the page ``joint_probit_study.md`` (from every
JSON present); ``--part report`` (or ``--report-only``) only rewrites the page.
"""

import argparse
import json
import os
import platform
import sys
import time

import arviz as az
import numpy as np
import pandas as pd
from optimus_study import PROBIT_CONDUCT
from report import RESULTS, write_page

from dosezoo.data import TrialData
from dosezoo.designs import crm_design, optimus_design
from dosezoo.models.crm import CRM, crm_skeleton
from dosezoo.models.joint_probit import PARAMETERS, JointProbit
from dosezoo.scenarios import standard_efftox_scenarios
from dosezoo.simulate import operating_characteristics, simulate
from dosezoo.validation import agreement_z, joint_probit_sbc

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
#: How the report names each engine compared with NUTS.
ENGINE_LABELS = {
    "kernel": "Gibbs kernel",
    "imh": "independence MH",
    "pymc": "step methods",
}
SBC_DOSES = np.repeat(LEVELS, 3)
METRICS = (
    "correct_selection",
    "no_selection",
    *(f"selected_{k}" for k in range(5)),
    "selected_p_response",
    "n_at_target_fraction",
    "n_overtoxic_fraction",
    "dlt_rate",
    "response_rate",
    "stopped_early",
    "n_treated",
    "range_size",
    "range_has_target",
)


def trial_data() -> TrialData:
    return TrialData.from_dataframe(
        pd.DataFrame(
            {
                "dose": np.repeat(LEVELS[:4], 3),
                "dlt": [0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 1, 0],
                "efficacy": [0, 0, 1, 0, 1, 1, 1, 2, 1, 2, 1, 0],
            }
        )
    )


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "command": " ".join([".venv/bin/python", *sys.argv]),
    }


# --------------------------------------------------------------------------- validation


def validate() -> dict:
    model = JointProbit(LEVELS)
    data = trial_data()
    fits, seconds = {}, {}
    for engine, draws, tune, seed in (
        ("nuts", 2000, 1000, 21),
        ("kernel", 4000, 1000, 22),
        ("imh", 4000, 200, 24),
        ("pymc", 2000, 500, 23),
    ):
        model.fit(data, engine=engine, draws=20, tune=20, random_seed=0)  # compile / warm up
        started = time.perf_counter()
        fits[engine] = model.fit(data, engine=engine, draws=draws, tune=tune, random_seed=seed)
        seconds[engine] = time.perf_counter() - started
    names = [*PARAMETERS, "p_tox", "p_response"]
    agreement, ess = {}, {}
    for engine in ("kernel", "imh", "pymc"):
        worst = {}
        for name in names:
            a = fits[engine]["posterior"][name].to_numpy()
            b = fits["nuts"]["posterior"][name].to_numpy()
            a, b = a.reshape(*a.shape[:2], -1), b.reshape(*b.shape[:2], -1)
            worst[name] = max(
                max(agreement_z(a[:, :, k], b[:, :, k]).values()) for k in range(a.shape[-1])
            )
        agreement[engine] = worst
    for engine, fit in fits.items():
        per = {}
        for name in names:
            values = fit["posterior"][name].to_numpy()
            values = values.reshape(*values.shape[:2], -1)
            per[name] = min(float(az.ess(values[:, :, k])) for k in range(values.shape[-1]))
        ess[engine] = {
            "min_bulk_ess": per,
            "seconds": seconds[engine],
            "draws": int(fit["posterior"].sizes["draw"] * fit["posterior"].sizes["chain"]),
            "min_ess_per_second": min(per.values()) / seconds[engine],
        }
    sbc = {}
    for label, engine, negative_control, n_reps in (
        ("kernel", "kernel", None, 1000),
        ("imh", "imh", None, 1000),
        ("pymc", "pymc", None, 100),
        ("kernel_jacobian_bug", "kernel", "jacobian_bug", 1000),
        ("kernel_ignore_correlation_bug", "kernel", "ignore_correlation_bug", 1000),
    ):
        started = time.perf_counter()
        result = joint_probit_sbc(
            model,
            SBC_DOSES,
            engine=engine,
            n_reps=n_reps,
            random_seed=300,
            negative_control=negative_control,
        )
        sbc[label] = {
            "n_reps": n_reps,
            "n_draws": result.n_draws,
            "p_values": result.p_values(bins=10),
            "seconds": time.perf_counter() - started,
        }
    return {"agreement_max_z": agreement, "efficiency": ess, "sbc": sbc, **environment()}


# --------------------------------------------------------------------------- simulation


def designs(sample_size: int, futility_cutoff: float | None, range_probability: float) -> dict:
    crm = CRM(crm_skeleton(0.25, 0.05, 3, len(LEVELS)), target=0.25, dose_levels=LEVELS)
    return {
        "optimus": optimus_design(
            JointProbit(LEVELS),
            futility_cutoff=futility_cutoff,
            range_probability=range_probability,
            sample_size=sample_size,
            # As in the Optimus study: a refused fit stops its trial, not the simulation.
            on_refusal="stop",
            **PROBIT_CONDUCT,
        ),
        "crm": crm_design(crm, sample_size=sample_size),
    }


def run_simulation(
    n_trials: int,
    n_jobs: int,
    sample_size: int,
    futility_cutoff: float | None,
    range_probability: float,
    tag: str,
) -> dict:
    scenarios = standard_efftox_scenarios(planned_sample_size=sample_size)
    chosen = designs(sample_size, futility_cutoff, range_probability)
    rows, seconds = [], {}
    for scenario_name, scenario in scenarios.items():
        for design_name, design in chosen.items():
            started = time.perf_counter()
            results = simulate(
                design, scenario, n_trials, random_seed=2026, n_jobs=n_jobs, progress=False
            )
            seconds[f"{scenario_name}/{design_name}"] = time.perf_counter() - started
            oc = operating_characteristics(results, random_seed=1)
            for metric in METRICS:
                if metric not in oc["metric"].values:
                    continue
                row = oc.sel(metric=metric)
                rows.append(
                    {
                        "scenario": scenario_name,
                        "design": design_name,
                        "metric": metric,
                        "mean": float(row["mean"]),
                        "mcse_mean": float(row["mcse_mean"]),
                        "n": int(row["n"]),
                    }
                )
            rows.append(
                {
                    "scenario": scenario_name,
                    "design": design_name,
                    "metric": "p_stopped_early",
                    "mean": float(oc["p_stopped_early"]),
                    "mcse_mean": float(
                        np.sqrt(oc["p_stopped_early"] * (1 - oc["p_stopped_early"]) / n_trials)
                    ),
                    "n": n_trials,
                }
            )
            if design_name == "optimus":
                refits = results.get("decision_refits")
                rows.append(
                    {
                        "scenario": scenario_name,
                        "design": design_name,
                        "metric": "refit_fraction",
                        "mean": float(np.nanmean(refits.values)) if refits is not None else 0.0,
                        "mcse_mean": float("nan"),
                        "n": n_trials,
                    }
                )
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / f"joint_probit_simulation{tag}.csv", index=False)
    return {
        "n_trials": n_trials,
        "n_jobs": n_jobs,
        "sample_size": sample_size,
        "scenarios": {name: s.describe() for name, s in scenarios.items()},
        "designs": {name: d.describe() for name, d in chosen.items()},
        "seconds": seconds,
        "rows": rows,
        **environment(),
    }


# --------------------------------------------------------------------------- report


#: What `make joint-probit-study` runs.
MAKE_RUNS = (
    "joint_probit_study.py --part validate",
    "joint_probit_study.py --part simulate --trials 150 --jobs 2 --futility-cutoff none "
    "--range-probability 0.2 --tag _lin2023_rule",
)


def report() -> str:
    """Return the details: every validation figure and every simulated metric, per JSON."""
    lines = []
    path = RESULTS / "joint_probit_validation.json"
    if path.exists():
        v = json.loads(path.read_text())
        lines += [
            "## Validation",
            "",
            f"Validation (`{v['command']}`, {v['wall_seconds']:.0f} s wall).",
            "",
            "Agreement with NUTS on the 12-patient example (largest z over the mean and the "
            "5/50/95 % quantiles of each variable, every dose; < 4.5 passes):",
            "",
            "| variable | " + " | ".join(ENGINE_LABELS[e] for e in v["agreement_max_z"]) + " |",
            "|---|" + "---|" * len(v["agreement_max_z"]),
        ]
        for name in v["agreement_max_z"]["kernel"]:
            cells = [f"{z[name]:.2f}" for z in v["agreement_max_z"].values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "| engine | draws | seconds | smallest bulk ESS | ESS / s |",
            "|---|---|---|---|---|",
        ]
        for engine, e in v["efficiency"].items():
            lines.append(
                f"| {engine} | {e['draws']} | {e['seconds']:.2f} | "
                f"{min(e['min_bulk_ess'].values()):.0f} | {e['min_ess_per_second']:.0f} |"
            )
        lines += [
            "",
            "SBC (chi-square p of rank uniformity, 10 bins; smallest over the variables):",
            "",
        ]
        lines += [
            "| sampler | replications | smallest p | variable | seconds |",
            "|---|---|---|---|---|",
        ]
        for label, s in v["sbc"].items():
            worst = min(s["p_values"], key=s["p_values"].get)
            lines.append(
                f"| {label} | {s['n_reps']} | {s['p_values'][worst]:.2g} | {worst} | "
                f"{s['seconds']:.0f} |"
            )
        lines.append("")
    for path in sorted(RESULTS.glob("joint_probit_simulation*.json")):
        s = json.loads(path.read_text())
        table = pd.DataFrame(s["rows"])
        rule = s["designs"]["optimus"]
        lines += [
            f"## Simulation `{path.name}`",
            "",
            f"`{s['command']}`: {s['n_trials']} trials per scenario and design, "
            f"{s['sample_size']} patients in cohorts of 3, common random numbers; "
            f"{s['wall_seconds']:.0f} s wall on {s['n_jobs']} worker processes. Optimus rule: "
            f"futility cut-off {rule['rule_futility_cutoff']}, range probability "
            f"{rule['rule_range_probability']}, overdose cut-off {rule['rule_overdose_cutoff']}; CRM "
            "target 0.25. Means ± Monte Carlo SE.",
            "",
        ]
        for scenario, truth in s["scenarios"].items():
            lines += [
                f"**{scenario}**: p_tox {truth['p_tox']}; p_response {truth['p_response']}; "
                f"target levels (0-based) {truth['target_levels']}.",
                "",
                "| metric | optimus | crm |",
                "|---|---|---|",
            ]
            part = table[table["scenario"] == scenario]
            for metric in part["metric"].unique():
                cells = []
                for design in ("optimus", "crm"):
                    row = part[(part["metric"] == metric) & (part["design"] == design)]
                    if row.empty or np.isnan(row["mean"].iloc[0]):
                        cells.append("-")
                    elif np.isnan(row["mcse_mean"].iloc[0]):
                        cells.append(f"{row['mean'].iloc[0]:.3f}")
                    else:
                        cells.append(f"{row['mean'].iloc[0]:.3f} ± {row['mcse_mean'].iloc[0]:.3f}")
                lines.append(f"| {metric} | {cells[0]} | {cells[1]} |")
            lines.append("")
    return "\n".join(lines)


def summary() -> str:
    """Return the summary: validation extremes and selection per scenario and design."""
    v = json.loads((RESULTS / "joint_probit_validation.json").read_text())
    worst_z = {engine: max(z.values()) for engine, z in v["agreement_max_z"].items()}
    sbc = {label: min(s["p_values"].values()) for label, s in v["sbc"].items()}
    lines = [
        f"Validation (`{v['command']}`, {v['wall_seconds'] / 60:.1f} min): largest z against "
        "NUTS over every variable's mean and 5/50/95 % quantiles, "
        + ", ".join(f"{ENGINE_LABELS[e]} {z:.2f}" for e, z in worst_z.items())
        + "; smallest SBC p "
        + ", ".join(f"{label} {p:.2g}" for label, p in sbc.items())
        + " (the last two are the negative controls).",
        "",
    ]
    for path in sorted(RESULTS.glob("joint_probit_simulation*.json")):
        s = json.loads(path.read_text())
        table = pd.DataFrame(s["rows"])
        lines += [
            f"`{s['command']}` ({s['n_trials']} trials per cell, {s['wall_seconds'] / 60:.1f} min "
            f"on {s['n_jobs']} processes; mean ± Monte Carlo SE):",
            "",
            "| scenario | design | correct selection | no dose selected | patients at target |",
            "|---|---|---|---|---|",
        ]
        for scenario in s["scenarios"]:
            for design in ("optimus", "crm"):
                cells = []
                for metric in ("correct_selection", "no_selection", "n_at_target_fraction"):
                    row = table[
                        (table["scenario"] == scenario)
                        & (table["design"] == design)
                        & (table["metric"] == metric)
                    ]
                    cells.append(f"{row['mean'].iloc[0]:.2f} ± {row['mcse_mean'].iloc[0]:.2f}")
                lines.append(f"| {scenario} | {design} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=("validate", "simulate", "all", "report"),
        default="all",
        help="'report' only rewrites the page from the saved results",
    )
    parser.add_argument("--report-only", action="store_true", help="the same as --part report")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sample-size", type=int, default=36)
    parser.add_argument(
        "--futility-cutoff",
        type=lambda v: None if v == "none" else float(v),
        default=0.1,
        help="the Optimus rule's futility cut-off, or 'none' (Lin (2023) has no futility stop)",
    )
    parser.add_argument("--range-probability", type=float, default=0.3)
    parser.add_argument("--tag", default="", help="suffix of the simulation output files")
    args = parser.parse_args()
    if args.report_only:
        args.part = "report"
    RESULTS.mkdir(exist_ok=True)
    if args.part in ("simulate", "all"):
        started = time.perf_counter()
        out = run_simulation(
            args.trials,
            args.jobs,
            args.sample_size,
            args.futility_cutoff,
            args.range_probability,
            args.tag,
        )
        out["wall_seconds"] = time.perf_counter() - started
        (RESULTS / f"joint_probit_simulation{args.tag}.json").write_text(json.dumps(out, indent=1))
    if args.part in ("validate", "all"):
        started = time.perf_counter()
        out = validate()
        out["wall_seconds"] = time.perf_counter() - started
        (RESULTS / "joint_probit_validation.json").write_text(json.dumps(out, indent=1))
    write_report()


def write_report() -> None:
    """Write the page joint_probit_study.md from every saved JSON."""
    data = [p.name for p in sorted(RESULTS.glob("joint_probit_validation.json"))]
    for suffix in ("json", "csv"):
        data += [p.name for p in sorted(RESULTS.glob(f"joint_probit_simulation*.{suffix}"))]
    body = "## Summary\n\n" + summary() + "\n" + report()
    write_page(
        "joint_probit_study",
        "Lin (2023): joint latent-probit model, validation and simulation",
        body,
        make="joint-probit-study",
        runs=MAKE_RUNS,
        rebuild="joint_probit_study.py --report-only",
        data=data,
    )
    print(body)


if __name__ == "__main__":
    main()
