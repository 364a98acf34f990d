"""The two studies of Willard et al. (2024): the simulation study (Section 3) and the implant design.

Section 3 (``--part simulation``): scenarios 1-3 of Table 1, N = 80, no early stopping
(delta = 0), 5 Sobol initial combinations and 15 iterations; the standard algorithm with r = 4
patients per combination, the personalised one with r = 2 per stratum (scenarios 1-2) or
r = 1 (scenario 3, four strata). Metrics per stratum and iteration (eqs 6-7, the absolute
deviation of the posterior mean) averaged over the replicates, with Monte Carlo SEs; Figs 1-3.

Section 4 (``--part implant``): the implant scenario, designs S1 (standard, r = 4, c = 5), P1
(personalised, r = 2, c = 5), S2 (standard, r = 2, c = 10) and P2 (personalised, r = 1,
c = 10), N = 80, each without early stopping (n_stop = 80) and with the paper's delta for
n_stop = 40 and 60 (stopping after J + 1 = 3 consecutive iterations below delta, per stratum
for P designs, the remaining budget reallocated). The paper's delta values come from its own
implementation; the same procedure on this one (delta = the median over the replicates of the
maximum AEI at the iteration where the design without stopping reaches n_stop patients,
strata pooled) gives the ``calibrated`` rows. Expected sample size, unique combinations and
the final metrics per stratum (Fig 4 B-E), and the metrics per iteration (carried forward
after a trial stops).

Every design of a scenario runs with the same ``random_seed`` (trial ``t`` shares its
patients' noise across designs: common random numbers) and the same Sobol seed (S1/P1 share
their 5 initial combinations, S2/P2 their 10, the first 5 being those). The fits are the
empirical-Bayes fits of the paper (``GPSurface.posterior``).

Writes ``docs/results/combination_bo_simulation.csv`` (scenario, stratum, algorithm,
iteration, expected_dose_units, rpsel, abs_deviation and their ``*_se``),
``combination_bo_implant.csv`` (design, n_stop, delta_source, delta, expected_n,
unique_combinations and the final metrics per stratum, with ``*_se``),
``combination_bo_implant_iterations.csv``, the figures ``combination_bo_scenario{1,2,3}.png``
and ``combination_bo_implant.png``, ``combination_bo.md`` (tables, the paper's claims checked)
and ``combination_bo.json`` (wall time, load averages, seconds per trial, the speed of one fit).
Per-design netCDF runs go to ``benchmarks/runs/combination_bo/`` (resumable, not committed).

Usage: ``python benchmarks/willard2024_study.py --trials 1000 --jobs 2`` (``make
combination-bo-study``).
"""

import os

for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from report import RESULTS, RUNS, md_table, write_page  # noqa: E402

from dosezoo.data import TrialData  # noqa: E402
from dosezoo.designs import combination_bo_design  # noqa: E402
from dosezoo.models import GPSurface  # noqa: E402
from dosezoo.scenarios import CombinationSurfaceScenario, willard2024_scenario  # noqa: E402
from dosezoo.simulate import simulate  # noqa: E402

RUNS = RUNS / "combination_bo"
#: Seed of the trials (common to every design of a scenario) and of the Sobol start.
SEED = 2024
SOBOL_SEED = 4
N_MAX = 80
METRICS = ("expected_dose_units", "rpsel", "abs_deviation")
#: The paper's delta values (Section 4) for n_stop = 40 and 60.
PAPER_DELTA = {
    "S1": {40: 0.00179, 60: 0.000971},
    "P1": {40: 0.00670, 60: 0.00345},
    "S2": {40: 0.00140, 60: 0.000820},
    "P2": {40: 0.00565, 60: 0.00298},
}
#: Implant designs: personalised, patients per combination (per stratum), initial combinations.
IMPLANT = {"S1": (False, 4, 5), "P1": (True, 2, 5), "S2": (False, 2, 10), "P2": (True, 1, 10)}
RESUMED: list[str] = []


# --------------------------------------------------------------------------- designs


def make_design(scenario: CombinationSurfaceScenario, personalised: bool, r: int, c: int, delta):
    model = GPSurface(covariates=scenario.covariates if personalised else ())
    return combination_bo_design(
        model,
        cohort_size=r,
        sample_size=N_MAX,
        n_initial=c,
        delta=delta,
        random_seed=SEED,
        sobol_seed=SOBOL_SEED,
    )


def run(name: str, design, scenario, trials: int, jobs: int) -> xr.Dataset:
    path = RUNS / f"{name}_delta{design.rule.delta:.6g}_n{trials}.nc"
    if path.exists() or path.with_name(path.name + ".parts").exists():
        RESUMED.append(path.name)
    started = time.perf_counter()
    results = simulate(
        design,
        scenario,
        trials,
        random_seed=SEED,
        n_jobs=jobs,
        batch_size=max(1, min(100, -(-trials // (4 * jobs)))),
        path=path,
        progress=False,
    )
    results.attrs["study_seconds"] = time.perf_counter() - started
    return results


# --------------------------------------------------------------------------- per iteration


def iteration_frame(results: xr.Dataset, scenario: CombinationSurfaceScenario) -> pd.DataFrame:
    """One row per trial, iteration and stratum: the estimate and its eqs 6-7 metrics.

    A decision's quantities hold the fit after ``iteration`` iterations: ``d_hat``,
    ``mu_hat`` and ``sd_hat`` per stratum (suffix ``_s<k>`` for a personalised design; a
    standard design's single estimate serves every stratum).
    """
    iteration = results["decision_iteration"].values
    personalised = "decision_d_hat_d1_s0" in results
    trials, decisions = np.nonzero(np.isfinite(iteration))
    rows = []
    for k in range(len(scenario.strata)):
        suffix = f"_s{k}" if personalised else ""

        def take(name: str, suffix: str = suffix) -> np.ndarray:
            return results[f"decision_{name}{suffix}"].values[trials, decisions]

        doses = np.column_stack([take("d_hat_d1"), take("d_hat_d2")])
        metrics = scenario.metrics_at(doses, take("mu_hat"), take("sd_hat"), k)
        rows.append(
            pd.DataFrame(
                {
                    "trial": trials,
                    "iteration": iteration[trials, decisions].astype(int),
                    "n": _patients_at(results, trials, decisions),
                    "stratum": k,
                    **metrics,
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    # The last decision is the recommendation, which repeats the last fit's iteration.
    return frame.drop_duplicates(["trial", "iteration", "stratum"], keep="last")


def _patients_at(results: xr.Dataset, trials: np.ndarray, decisions: np.ndarray) -> np.ndarray:
    """Patients enrolled before each decision (the data its fit saw)."""
    cohort = results["cohort"].values
    out = np.empty(trials.size, dtype=int)
    for i, (t, d) in enumerate(zip(trials, decisions, strict=True)):
        out[i] = int(np.sum((cohort[t] >= 1) & (cohort[t] <= d)))
    return out


def by_patients(frame: pd.DataFrame, sizes: np.ndarray) -> pd.DataFrame:
    """Each trial's estimate when ``m`` patients had been enrolled, for each ``m`` of ``sizes``.

    The estimate of the last fit that saw at most ``m`` patients: for a trial that stopped
    before ``m``, its final recommendation (what the design would report), so that designs
    with different cohort sizes and stopping rules are compared at equal enrolment.
    """
    parts = []
    for m in sizes:
        seen = frame[frame["n"] <= m].sort_values("n")
        last = seen.groupby(["trial", "stratum"]).tail(1).copy()
        last["patients"] = int(m)
        parts.append(last)
    return pd.concat(parts, ignore_index=True)


def summarise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(keys)
    out = grouped[list(METRICS)].mean()
    counts = grouped[list(METRICS)].count()
    for metric in METRICS:
        out[f"{metric}_se"] = grouped[metric].std(ddof=1) / np.sqrt(counts[metric])
    out["n_trials"] = grouped["trial"].nunique()
    return out.reset_index()


# --------------------------------------------------------------------------- Section 3


def simulation_study(trials: int, jobs: int, seconds: dict) -> pd.DataFrame:
    tables = []
    for number in ("1", "2", "3"):
        scenario = willard2024_scenario(number)
        r_personal = 2 if len(scenario.strata) == 2 else 1
        for algorithm, personalised, r in (
            ("standard", False, 4),
            ("personalised", True, r_personal),
        ):
            name = f"scenario{number}_{algorithm}"
            design = make_design(scenario, personalised, r, 5, 0.0)
            results = run(name, design, scenario, trials, jobs)
            seconds[name] = results.attrs["study_seconds"] * jobs / trials
            frame = iteration_frame(results, scenario)
            table = summarise(frame, ["iteration", "stratum"])
            table.insert(0, "algorithm", algorithm)
            table.insert(0, "scenario", number)
            tables.append(table)
            print(f"{name}: {seconds[name]:.2f} s per trial", flush=True)
    table = pd.concat(tables, ignore_index=True)
    labels = {
        number: [
            _label(willard2024_scenario(number), k)
            for k in range(len(willard2024_scenario(number).strata))
        ]
        for number in ("1", "2", "3")
    }
    table["stratum"] = [
        labels[s][k] for s, k in zip(table["scenario"], table["stratum"], strict=True)
    ]
    return table


def _label(scenario: CombinationSurfaceScenario, k: int) -> str:
    return ",".join(
        f"{c}={v:g}" for c, v in zip(scenario.covariates, scenario.stratum_values[k], strict=True)
    )


# --------------------------------------------------------------------------- Section 4


def _max_aei_at(results: xr.Dataset, n_stop: int) -> np.ndarray:
    """Every stratum's maximum AEI at the fit that saw ``n_stop`` patients (no stopping)."""
    names = [v for v in results.data_vars if str(v).startswith("decision_max_aei")]
    trials, decisions = np.nonzero(np.isfinite(results["decision_iteration"].values))
    n = _patients_at(results, trials, decisions)
    chosen = n == n_stop
    values = [results[name].values[trials[chosen], decisions[chosen]] for name in names]
    return np.concatenate(values)


def implant_study(trials: int, jobs: int, seconds: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    scenario = willard2024_scenario("implant")
    rows, curves, calibrated = [], [], {}
    for label, (personalised, r, c) in IMPLANT.items():
        plans = [(80, "none", 0.0)] + [(n, "paper", PAPER_DELTA[label][n]) for n in (40, 60)]
        plans += [(n, "calibrated", None) for n in (40, 60)]
        for n_stop, source, delta in plans:
            if source == "calibrated":
                delta = calibrated[(label, n_stop)]
            name = f"implant_{label}_nstop{n_stop}_{source}"
            design = make_design(scenario, personalised, r, c, delta)
            results = run(name, design, scenario, trials, jobs)
            seconds[name] = results.attrs["study_seconds"] * jobs / trials
            if source == "none":
                for n in (40, 60):
                    calibrated[(label, n)] = float(np.median(_max_aei_at(results, n)))
            rows.append(_final_row(results, scenario, label, n_stop, source, delta))
            frame = iteration_frame(results, scenario)
            curve = summarise(
                by_patients(frame, np.arange(20, N_MAX + 1, 4)), ["patients", "stratum"]
            )
            curve.insert(0, "delta_source", source)
            curve.insert(0, "n_stop", n_stop)
            curve.insert(0, "design", label)
            curves.append(curve)
            print(
                f"{name}: delta {delta:.5g}, E[n] {rows[-1]['expected_n']:.1f}, unique "
                f"{rows[-1]['unique_combinations']:.1f} ({seconds[name]:.2f} s per trial)",
                flush=True,
            )
    return pd.DataFrame(rows), pd.concat(curves, ignore_index=True), calibrated


def _final_row(results, scenario, label, n_stop, source, delta) -> dict:
    row = {"design": label, "n_stop": n_stop, "delta_source": source, "delta": delta}
    n = results["n_patients"].values.astype(float)
    unique = results["unique_combinations"].values
    for name, values in (("expected_n", n), ("unique_combinations", unique)):
        row[name] = float(np.mean(values))
        row[f"{name}_se"] = float(np.std(values, ddof=1) / math.sqrt(values.size))
    for k in range(len(scenario.strata)):
        share = results[f"n_s{k}"].values / n
        row[f"share_n_s{k}"] = float(np.mean(share))
        row[f"share_n_s{k}_se"] = float(np.std(share, ddof=1) / math.sqrt(share.size))
        for metric in METRICS:
            values = results[f"{metric}_s{k}"].values
            row[f"{metric}_s{k}"] = float(np.nanmean(values))
            row[f"{metric}_s{k}_se"] = float(
                np.nanstd(values, ddof=1) / math.sqrt(np.sum(np.isfinite(values)))
            )
    row["p_stopped_early"] = float(np.mean(results["stop_reason"].values != ""))
    return row


# --------------------------------------------------------------------------- speed


def speed(repeats: int = 200) -> dict:
    """Seconds of one empirical-Bayes fit plus the AEI of the grid, 80 patients (one core)."""
    scenario = willard2024_scenario("implant")
    rng = np.random.default_rng(1)
    grid = scenario.grid
    out = {}
    for label, personalised, r in (
        ("S1 (20 combinations x 4)", False, 4),
        ("P1 (2 strata, 20 x 2)", True, 2),
        ("P2 (2 strata, 40 x 1)", True, 1),
    ):
        design = make_design(scenario, personalised, r, 5, 0.0)
        doses = grid[rng.integers(0, len(grid), 80 // r)].repeat(r, axis=0)
        z = np.tile([0.0, 1.0], 40) if personalised else rng.integers(0, 2, 80).astype(float)
        values = scenario.respond(doses, rng, covariates={"z1": z})
        frame = pd.DataFrame(
            {
                "d1": doses[:, 0],
                "d2": doses[:, 1],
                "z1": z,
                "response": values["response"],
                "cohort": np.repeat(np.arange(1, 21), 4),
            }
        )
        data = TrialData.from_dataframe(
            frame, dose_columns=("d1", "d2"), covariates=("z1",), coded_doses=True
        )
        design.next(data)
        times = []
        for _ in range(repeats):
            started = time.process_time()
            design.rule.choose(design.model.posterior(data), data)
            times.append(time.process_time() - started)
        out[label] = {
            "median_ms": 1e3 * float(np.median(times)),
            "p90_ms": 1e3 * float(np.quantile(times, 0.9)),
        }
    return out


# --------------------------------------------------------------------------- report


def claims(simulation: pd.DataFrame | None, implant: pd.DataFrame | None) -> list[str]:
    lines = []
    if simulation is not None:
        last = simulation[simulation["iteration"] == simulation["iteration"].max()]

        def value(scenario, algorithm, stratum, metric):
            row = last[
                (last["scenario"] == scenario)
                & (last["algorithm"] == algorithm)
                & (last["stratum"] == stratum)
            ]
            return float(row[metric].iloc[0])

        s1 = [(a, z) for a in ("standard", "personalised") for z in ("z1=0", "z1=1")]
        units = {k: value("1", *k, "expected_dose_units") for k in s1}
        dev = {k: value("1", *k, "abs_deviation") for k in s1}
        lines.append(
            "- Scenario 1, both algorithms within one dose unit of the optimum at the end "
            f"(paper): {'yes' if max(units.values()) <= 1 else 'no'} ("
            + ", ".join(f"{a} {z}: {u:.2f}" for (a, z), u in units.items())
            + ")."
        )
        lines.append(
            "- Scenario 1, within 0.4 of the true f at the recommendation (absolute deviation, "
            f"paper): {'yes' if max(dev.values()) <= 0.4 else 'no'} ("
            + ", ".join(f"{a} {z}: {u:.2f}" for (a, z), u in dev.items())
            + ")."
        )
        one = simulation[simulation["scenario"] == "1"]
        wide = one.pivot_table(
            index=["iteration", "stratum"], columns="algorithm", values="expected_dose_units"
        )
        share = float(np.mean(wide["personalised"] > wide["standard"]))
        lines.append(
            "- Scenario 1, the personalised algorithm slightly less efficient (more dose units) "
            f"(paper): at {share:.0%} of iterations x strata."
        )
        s2 = {
            (a, z): value("2", a, z, "expected_dose_units")
            for a in ("standard", "personalised")
            for z in ("z1=0", "z1=1")
        }
        lines.append(
            "- Scenario 2, the personalised algorithm finds both optima, the standard one does not "
            f"(paper): personalised {s2[('personalised', 'z1=0')]:.2f} / {s2[('personalised', 'z1=1')]:.2f}, "
            f"standard {s2[('standard', 'z1=0')]:.2f} / {s2[('standard', 'z1=1')]:.2f} dose units (z1 = 0 / 1)."
        )
        strata3 = ("z1=0,z2=1", "z1=1,z2=0", "z1=1,z2=1")
        p3 = {z: value("3", "personalised", z, "expected_dose_units") for z in strata3}
        s3 = {z: value("3", "standard", z, "expected_dose_units") for z in strata3}
        lines.append(
            "- Scenario 3, the personalised algorithm within 1-1.5 dose units of the optima (paper): "
            + ", ".join(f"{z}: {u:.2f}" for z, u in p3.items())
            + "; the standard one: "
            + ", ".join(f"{z}: {u:.2f}" for z, u in s3.items())
            + f"; the standard algorithm is best in stratum {min(s3, key=s3.get)} (paper: (1,1), "
            "'where the standardized effect is the largest', though Table 1 gives (1,0) the "
            "largest effect)."
        )
        three = simulation[simulation["scenario"] == "3"]
        trend = []
        for algorithm in ("personalised", "standard"):
            part = three[three["algorithm"] == algorithm]
            first = part[part["iteration"] == 0]["rpsel"].mean()
            end = part[part["iteration"] == part["iteration"].max()]["rpsel"].mean()
            trend.append(f"{algorithm} {first:.2f} -> {end:.2f}")
        lines.append(
            "- Scenario 3, RPSEL decreasing towards 0 for the personalised algorithm only (paper), "
            "mean over strata, iteration 0 -> 15: " + "; ".join(trend) + "."
        )
    if implant is not None:
        paper = implant[implant["delta_source"].isin(["none", "paper"])]
        for source in ("paper", "calibrated"):
            part = implant[implant["delta_source"].isin(["none", source])]
            sizes = part.pivot_table(index="n_stop", columns="design", values="expected_n")
            unique = part.pivot_table(
                index="n_stop", columns="design", values="unique_combinations"
            )
            lines.append(
                f"- Implant ({source} delta), expected sample size S vs P within each stopping rule "
                "(paper: about equal): "
                + "; ".join(
                    f"n_stop {n}: " + ", ".join(f"{d} {sizes.loc[n, d]:.1f}" for d in IMPLANT)
                    for n in sizes.index
                )
                + "."
            )
            more = int(((unique["P1"] > unique["S1"]) & (unique["P2"] > unique["S2"])).sum())
            lines.append(
                f"- Implant ({source} delta), P designs evaluate more unique combinations than S "
                f"(paper): in {more} of {len(unique)} stopping rules."
            )
        for source in ("paper", "calibrated"):
            rows = implant[(implant["design"] == "P1") & implant["delta_source"].isin([source])]
            lines.append(
                f"- Implant ({source} delta), P1: n_stop 40 -> {float(rows[rows['n_stop'] == 40]['unique_combinations'].iloc[0]):.1f} "
                f"combinations, {float(rows[rows['n_stop'] == 40]['expected_n'].iloc[0]):.1f} patients; n_stop 60 -> "
                f"{float(rows[rows['n_stop'] == 60]['unique_combinations'].iloc[0]):.1f} combinations, "
                f"{float(rows[rows['n_stop'] == 60]['expected_n'].iloc[0]):.1f} patients (paper: 13 and 44; 15 and 58)."
            )
        units = implant.assign(
            units=(implant["expected_dose_units_s0"] + implant["expected_dose_units_s1"]) / 2
        )
        pivot = units.pivot_table(
            index=["delta_source", "n_stop"], columns="design", values="units"
        )
        lines.append(
            "- Implant, P1 vs P2 expected dose units (mean of the strata) differ by about 0.1 "
            "(paper): "
            + "; ".join(
                f"{s} n_stop {n}: {abs(r['P1'] - r['P2']):.2f}" for (s, n), r in pivot.iterrows()
            )
            + "."
        )
        rpsel = implant.assign(rpsel=(implant["rpsel_s0"] + implant["rpsel_s1"]) / 2).pivot_table(
            index=["delta_source", "n_stop"], columns="design", values="rpsel"
        )
        best = rpsel.idxmin(axis=1)
        lines.append(
            "- Implant, P1 estimates f best (lowest RPSEL, mean of the strata) (paper): P1 lowest in "
            f"{int((best == 'P1').sum())} of {len(best)} stopping rules ("
            + ", ".join(f"{s} {n}: {d}" for (s, n), d in best.items())
            + ")."
        )
        worst = pivot.idxmax(axis=1)
        lines.append(
            "- Implant, standard designs poor (paper): the most dose units from the optima in "
            f"{int(worst.isin(['S1', 'S2']).sum())} of {len(worst)} stopping rules come from an S design."
        )
        shares = implant[implant["design"].isin(["P1", "P2"])][
            ["design", "n_stop", "delta_source", "share_n_s0"]
        ]
        lines.append(
            "- Implant, early stopping shifts patients to the harder stratum z1 = 0 (paper): "
            "share of patients in z1 = 0: "
            + ", ".join(
                f"{r.design} {r.delta_source} {r.n_stop}: {r.share_n_s0:.2f}"
                for r in shares.itertuples()
            )
            + "."
        )
        del paper
    return lines


def _fmt(table: pd.DataFrame, metric: str) -> pd.Series:
    return (
        table[metric].map("{:.2f}".format) + " (" + table[f"{metric}_se"].map("{:.2f}".format) + ")"
    )


def figures(
    simulation: pd.DataFrame | None, implant: pd.DataFrame | None, curves: pd.DataFrame | None
) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    titles = {
        "expected_dose_units": "B) dose units from the optimum",
        "rpsel": "C) average RPSEL",
        "abs_deviation": "D) absolute deviation",
    }
    if simulation is not None:
        for number in ("1", "2", "3"):
            scenario = willard2024_scenario(number)
            part = simulation[simulation["scenario"] == number]
            strata = [_label(scenario, k) for k in range(len(scenario.strata))]
            fig, axes = plt.subplots(len(strata), 4, figsize=(16, 3.2 * len(strata)), squeeze=False)
            axis = np.linspace(0, 1, 101)
            d1, d2 = np.meshgrid(axis, axis, indexing="ij")
            points = np.column_stack([d1.ravel(), d2.ravel()])
            for k, stratum in enumerate(strata):
                surface = scenario.mean_response(points, k).reshape(d1.shape)
                ax = axes[k, 0]
                image = ax.imshow(surface.T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
                best, _ = scenario.optimum(k)
                if best is not None:
                    ax.plot(*best, marker="*", color="white", markersize=14)
                ax.set(title=f"A) f, {stratum}", xlabel="d1", ylabel="d2")
                fig.colorbar(image, ax=ax, shrink=0.8)
                for j, metric in enumerate(METRICS, start=1):
                    ax = axes[k, j]
                    for algorithm, marker in (("standard", "o"), ("personalised", "s")):
                        rows = part[(part["algorithm"] == algorithm) & (part["stratum"] == stratum)]
                        ax.errorbar(
                            rows["iteration"],
                            rows[metric],
                            yerr=rows[f"{metric}_se"],
                            marker=marker,
                            linestyle=":",
                            label=algorithm,
                            markersize=4,
                        )
                    ax.set(
                        title=f"{titles[metric]}, {stratum}",
                        xlabel="iteration (n = 20 + 4 x iteration)",
                    )
                    if metric == "expected_dose_units" and scenario.optimum(k)[0] is None:
                        ax.set_title(f"{titles[metric]}, {stratum}: no optimum")
            axes[0, 1].legend(fontsize=8)
            fig.suptitle(f"Scenario {number} (Willard et al. 2024, Fig {number})")
            fig.tight_layout()
            path = RESULTS / f"combination_bo_scenario{number}.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            written.append(path.name)
    if implant is not None and curves is not None:
        for source, stem in (
            ("paper", "combination_bo_implant"),
            ("calibrated", "combination_bo_implant_calibrated"),
        ):
            written.append(_implant_figure(plt, implant, curves, source, stem))
    return written


def _implant_figure(
    plt, implant: pd.DataFrame, curves: pd.DataFrame, source: str, stem: str
) -> str:
    """Fig 4 of the paper for one choice of delta: B) costs, C-E) metrics by enrolment."""
    titles = {
        "expected_dose_units": "dose units from the optimum",
        "rpsel": "average RPSEL",
        "abs_deviation": "absolute deviation",
    }
    fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    rows = implant[implant["delta_source"].isin(["none", source])]
    x = np.arange(len(rows))
    axes[0, 0].bar(
        x - 0.2, rows["expected_n"], width=0.4, yerr=rows["expected_n_se"], label="expected n"
    )
    axes[0, 0].bar(
        x + 0.2,
        rows["unique_combinations"],
        width=0.4,
        yerr=rows["unique_combinations_se"],
        label="unique combinations",
    )
    axes[0, 0].set_xticks(x, [f"{r.design}\n{r.n_stop}" for r in rows.itertuples()], fontsize=7)
    axes[0, 0].set_title("B) expected n and unique combinations")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].bar(x, rows["share_n_s0"], yerr=rows["share_n_s0_se"])
    axes[1, 0].axhline(0.5, color="grey", linestyle=":")
    axes[1, 0].set_xticks(x, [f"{r.design}\n{r.n_stop}" for r in rows.itertuples()], fontsize=7)
    axes[1, 0].set_title("share of patients in z1 = 0 (the harder stratum)")
    part = curves[curves["delta_source"].isin(["none", source])]
    for k in range(2):
        for j, metric in enumerate(METRICS, start=1):
            ax = axes[k, j]
            for (design, n_stop), group in part[part["stratum"] == k].groupby(["design", "n_stop"]):
                ax.plot(
                    group["patients"],
                    group[metric],
                    label=f"{design} {n_stop}",
                    linestyle="-" if design.startswith("P") else ":",
                    marker="o" if design.endswith("1") else "s",
                    markersize=3,
                )
            ax.set(title=f"{'CDE'[j - 1]}) {titles[metric]}, z1={k}", xlabel="patients enrolled")
    axes[0, 1].legend(fontsize=6, ncol=2)
    fig.suptitle(
        f"Implant scenario (Willard et al. 2024, Fig 4), {source} delta; a stopped trial keeps its "
        "final estimate"
    )
    fig.tight_layout()
    path = RESULTS / f"{stem}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def markdown(simulation, implant, calibrated, record) -> str:
    runs = record.get("runs", {})
    lines = [
        "The studies of Willard et al. (2024) with empirical-Bayes fits (hetGP's concentrated "
        "likelihood, default bounds and starts), common random numbers across the designs of a "
        "scenario, and Monte Carlo SEs in brackets. RPSEL is exact for the normal posterior, "
        "sqrt(sd^2 + (mean - f)^2): the number the paper estimates with 10,000 posterior draws.",
        "",
    ]
    for part, run in runs.items():
        lines.append(
            f"- {part}: `{run['command']}`, {run['trials']} replicates per design, "
            f"{run['wall_seconds'] / 60:.1f} min on {run['jobs']} worker processes (load "
            f"averages {run['load_average_before'][0]:.1f} before, "
            f"{run['load_average_after'][0]:.1f} after)"
            + (f"; resumed runs: {', '.join(run['resumed'])}" if run.get("resumed") else "")
            + "."
        )
    lines += ["", "## The paper's claims, checked", "", *claims(simulation, implant), ""]
    if simulation is not None:
        lines += ["## Section 3: metrics at iterations 0, 5, 10 and 15", ""]
        shown = simulation[simulation["iteration"].isin([0, 5, 10, 15])].copy()
        for metric in METRICS:
            shown[metric] = _fmt(shown, metric)
        lines += [md_table(shown[["scenario", "stratum", "algorithm", "iteration", *METRICS]]), ""]
        lines += [
            "Every iteration: `combination_bo_simulation.csv`; Figs 1-3: "
            "![scenario 1](combination_bo_scenario1.png) ![scenario 2](combination_bo_scenario2.png) "
            "![scenario 3](combination_bo_scenario3.png)",
            "",
        ]
    if implant is not None:
        lines += ["## Section 4: the implant designs (final recommendation)", ""]
        shown = implant.copy()
        for metric in (
            "expected_n",
            "unique_combinations",
            *[f"{m}_s{k}" for m in METRICS for k in (0, 1)],
        ):
            shown[metric] = _fmt(shown, metric)
        shown["delta"] = shown["delta"].map("{:.5g}".format)
        shown["share_n_s0"] = shown["share_n_s0"].map("{:.2f}".format)
        columns = [
            "design", "n_stop", "delta_source", "delta", "expected_n", "unique_combinations",
            "expected_dose_units_s0", "expected_dose_units_s1", "rpsel_s0", "rpsel_s1",
            "abs_deviation_s0", "abs_deviation_s1", "share_n_s0",
        ]  # fmt: skip
        lines += [md_table(shown[columns]), ""]
        if calibrated:
            lines += [
                "Calibrated delta (the median over the replicates of the maximum AEI, strata "
                "pooled, at the fit that saw n_stop patients, in the design without stopping): "
                + ", ".join(f"{d} {n}: {v:.4g}" for (d, n), v in calibrated.items())
                + ".",
                "",
            ]
        lines += [
            "Metrics by patients enrolled: `combination_bo_implant_iterations.csv`; Fig 4 with "
            "the paper's delta and with the calibrated one: "
            "![implant](combination_bo_implant.png) "
            "![implant, calibrated delta](combination_bo_implant_calibrated.png)",
            "",
        ]
    if "speed" in record:
        lines += [
            "## Speed",
            "",
            "One empirical-Bayes fit plus the AEI on the grid with 80 patients (one core, CPU "
            "time): "
            + "; ".join(
                f"{k}: median {v['median_ms']:.2f} ms, 90% {v['p90_ms']:.2f} ms"
                for k, v in record["speed"].items()
            )
            + ".",
            "",
        ]
    seconds = {k: v for run in runs.values() for k, v in run.get("seconds_per_trial", {}).items()}
    if seconds:
        lines += [
            "CPU seconds per trial of each design (the workers' time over the trials): "
            + ", ".join(f"{k} {v:.3f}" for k, v in seconds.items())
            + ".",
            "",
        ]
    return "\n".join(lines)


MAKE_RUN = "willard2024_study.py --trials 1000 --jobs 2"


def write_report(output: str) -> None:
    """Write the figures and the page ``<output>.md`` from the saved CSVs and JSON."""
    saved = RESULTS / f"{output}.json"
    if not saved.exists():
        print(f"{saved} does not exist yet: run `make combination-bo-study` first")
        return
    record = json.loads(saved.read_text())
    simulation = implant = curves = None
    data = []
    path = RESULTS / f"{output}_simulation.csv"
    if path.exists():
        simulation = pd.read_csv(path, dtype={"scenario": str})
        data.append(path.name)
    path = RESULTS / f"{output}_implant.csv"
    if path.exists():
        implant = pd.read_csv(path)
        curves = pd.read_csv(RESULTS / f"{output}_implant_iterations.csv")
        data += [path.name, f"{output}_implant_iterations.csv"]
    calibrated = {
        (key.rsplit("_", 1)[0], int(key.rsplit("_", 1)[1])): value
        for key, value in record.get("calibrated_delta", {}).items()
    }
    figures(simulation, implant, curves)
    write_page(
        output,
        "Willard et al. (2024): Bayesian optimisation of drug combinations, standard and "
        "personalised",
        markdown(simulation, implant, calibrated, record),
        make="combination-bo-study",
        runs=[MAKE_RUN],
        rebuild="willard2024_study.py --report-only",
        data=[*data, f"{output}.json"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="replicates per design")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--part", choices=("all", "simulation", "implant", "speed"), default="all")
    parser.add_argument("--output", default="combination_bo", help="file stem in docs/results")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the figures and the page from the saved CSVs and JSON (no simulation)",
    )
    args = parser.parse_args()
    if args.report_only:
        write_report(args.output)
        return
    RUNS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.output}.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    record.setdefault("runs", {})
    parts = ("simulation", "implant") if args.part == "all" else (args.part,)
    for part in parts:
        if part == "speed":
            continue
        load_before = os.getloadavg()
        started = time.perf_counter()
        seconds: dict[str, float] = {}
        RESUMED.clear()
        if part == "simulation":
            simulation = simulation_study(args.trials, args.jobs, seconds)
            simulation.to_csv(
                RESULTS / f"{args.output}_simulation.csv", index=False, float_format="%.6g"
            )
        else:
            implant, curves, calibrated = implant_study(args.trials, args.jobs, seconds)
            implant.to_csv(RESULTS / f"{args.output}_implant.csv", index=False, float_format="%.6g")
            curves.to_csv(
                RESULTS / f"{args.output}_implant_iterations.csv", index=False, float_format="%.6g"
            )
            record["calibrated_delta"] = {f"{d}_{n}": v for (d, n), v in calibrated.items()}
        record["runs"][part] = {
            "command": f"python benchmarks/willard2024_study.py --trials {args.trials} "
            f"--jobs {args.jobs} --part {part}",
            "wall_seconds": round(time.perf_counter() - started, 1),
            "jobs": args.jobs,
            "trials": args.trials,
            "seconds_per_trial": {k: round(v, 4) for k, v in seconds.items()},
            "resumed": list(RESUMED),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
        }
    record["machine"] = platform.machine()
    record["cpu_count"] = os.cpu_count()
    record["speed"] = speed()
    path.write_text(json.dumps(record, indent=2) + "\n")
    write_report(args.output)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
