"""Validation figures for the 3PND samplers: agreement with NUTS and SBC, with negative controls.

Run ``make validate`` (or ``python benchmarks/validate_3pnd.py``); about 15 minutes on two
cores. Writes ``docs/results/three_pnd_validation.json`` and the page
``docs/results/three_pnd_validation.md``; ``--report-only`` rewrites the page from the JSON.
The same checks, with pass/fail thresholds, are
the tests in ``tests/test_three_pnd_samplers.py`` and ``tests/test_three_pnd_sbc.py``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from report import RESULTS, write_page
from scipy import stats

from dosezoo.datasets import load_o6bg
from dosezoo.models import ThreePND
from dosezoo.samplers import three_pnd_kernels as kernels
from dosezoo.validation import agreement_z, three_pnd_sbc

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ("beta", "sigma", "nu", "mtd")
MODEL = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0, delta=0.5)
SBC_DOSES = np.repeat([40.0, 60.0, 80.0, 100.0], 3)
SBC_RUNS = {
    "kernel": ("kernel", 2000, None),
    "step methods": ("pymc", 500, None),
    "kernel, negative control: delta read as delta^2": (
        "kernel",
        4000,
        kernels.pack_hyper(MODEL.eta, MODEL.z, MODEL.x_min, MODEL.x_max, MODEL.delta**2),
    ),
    "kernel, negative control: gamma for Phi^-1(gamma)": (
        "kernel",
        500,
        kernels.pack_hyper(MODEL.eta, MODEL.gamma, MODEL.x_min, MODEL.x_max, MODEL.delta),
    ),
}


def nuts_agreement() -> dict:
    data = load_o6bg()
    fits = {
        "nuts": MODEL.fit(data, engine="nuts", draws=2000, tune=1000, chains=2, random_seed=11),
        "step methods": MODEL.fit(
            data, engine="pymc", draws=2000, tune=500, chains=2, random_seed=12
        ),
        "kernel": MODEL.fit(
            data, engine="kernel", draws=20000, tune=1000, chains=2, random_seed=13
        ),
    }
    nuts = fits.pop("nuts")
    out = {}
    for engine, idata in fits.items():
        for name in PARAMS:
            ours, ref = idata["posterior"][name].to_numpy(), nuts["posterior"][name].to_numpy()
            z = agreement_z(ours, ref)
            ks = stats.ks_2samp(ours.ravel()[:: max(1, ours.size // 2000)], ref.ravel()[::2])
            out[f"{engine} / {name}"] = {"max_z": max(z.values()), **z, "ks_p": float(ks.pvalue)}
    return out


def markdown(results: dict) -> str:
    """Return the page's tables: agreement with NUTS, SBC p-values, wall time."""
    agreement, sbc = results["nuts_agreement_o6bg"], results["sbc"]
    lines = [
        "Agreement with NUTS on the O6-BG data (z = |difference| / combined MCSE for the mean and the "
        "5/50/95% quantiles, largest shown; KS two-sample p on thinned draws):",
        "",
        "| engine / variable | max z | KS p |",
        "|---|---:|---:|",
    ]
    lines += [f"| {key} | {v['max_z']:.2f} | {v['ks_p']:.3f} |" for key, v in agreement.items()]
    lines += [
        "",
        "Simulation-based calibration (12 patients at 40/60/80/100, 99 thinned draws per fit, chi-square "
        "test of rank uniformity with 10 bins, p per variable):",
        "",
        "| sampler | replications | beta | sigma | nu | mtd |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {label} | {v['n_reps']} | "
        + " | ".join(f"{v['p_values'][n]:.2g}" for n in PARAMS)
        + " |"
        for label, v in sbc.items()
    ]
    lines.append(f"\nWall time of this validation run: {results['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def write_report() -> None:
    """Write the page three_pnd_validation.md from the saved JSON."""
    results = json.loads((RESULTS / "three_pnd_validation.json").read_text())
    write_page(
        "three_pnd_validation",
        "3PND: validation of the samplers",
        markdown(results),
        make="validate",
        runs=["validate_3pnd.py"],
        rebuild="validate_3pnd.py --report-only",
        data=["three_pnd_validation.json"],
    )
    print(markdown(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the page from the saved JSON"
    )
    if parser.parse_args().report_only:
        write_report()
        return
    started = time.perf_counter()
    agreement = nuts_agreement()
    sbc = {}
    for label, (engine, n_reps, hyper) in SBC_RUNS.items():
        print(f"SBC: {label} ({n_reps} replications) ...", flush=True)
        result = three_pnd_sbc(
            MODEL, SBC_DOSES, engine=engine, n_reps=n_reps, random_seed=500, sampler_hyper=hyper
        )
        sbc[label] = {"n_reps": n_reps, "p_values": result.p_values(bins=10)}
    results = {
        "nuts_agreement_o6bg": agreement,
        "sbc": sbc,
        "wall_seconds": time.perf_counter() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "three_pnd_validation.json").write_text(json.dumps(results, indent=2))
    write_report()


if __name__ == "__main__":
    main()
