"""Digests of small simulations without backfill, to check that backfill changed nothing else.

Run on the commit before backfill existed, ``.venv/bin/python tests/backfill_baseline.py``
wrote ``tests/data/backfill_baseline.json``; ``tests/test_backfill.py`` recomputes the same
digests and compares. The CRM's digest was recorded again (with the hard overdose limit off)
when its posterior's tail probabilities became exact integrals: that changed its safety stop's
probability, not backfill; and again when its posterior became a Gauss-Legendre quadrature
(every dose, stop and recommendation of the 20 trials the same; the posterior means moved by
at most 1.1e-10, the safety stop's probability by less than 3e-7). BOIN's digests are still
those of the commit before backfill.
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from dosezoo.designs.base import Conduct
from dosezoo.designs.boin import boin_design
from dosezoo.designs.crm import crm_design
from dosezoo.models.crm import CRM
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import run_trial, simulate

LEVELS = (10.0, 20.0, 40.0, 80.0, 120.0)
P_TRUE = (0.05, 0.12, 0.25, 0.4, 0.55)
SKELETON = (0.05, 0.12, 0.25, 0.4, 0.55)
N_TRIALS = 20
SEED = 2024
PATH = Path(__file__).parent / "data" / "backfill_baseline.json"


#: Records added after the digests were taken (the hard overdose limit's probability).
RECORDED_LATER = {"decision_overdose_probability"}


def digest(result: xr.Dataset) -> str:
    """SHA-256 of every variable's name and values (attributes, which carry versions, left out)."""
    sha = hashlib.sha256()
    for name in sorted(set(result.data_vars) - RECORDED_LATER):
        values = result[name].values
        sha.update(name.encode())
        sha.update(values.astype(str).tobytes() if values.dtype.kind in "OU" else values.tobytes())
    return sha.hexdigest()


def record_digest(design, scenario) -> str:
    """SHA-256 of the per-trial engine's records of ``N_TRIALS`` trials."""
    sha = hashlib.sha256()
    for seed in np.random.SeedSequence(SEED).spawn(N_TRIALS):
        record = run_trial(design, scenario, np.random.default_rng(seed))
        for key in ("dose", "cohort", "decision_dose", "recommended_dose"):
            sha.update(np.asarray(record[key], dtype=float).tobytes())
        sha.update(np.asarray(record["outcomes"]["dlt"], dtype=float).tobytes())
        sha.update("|".join(record["decision_stop_reason"]).encode())
    return sha.hexdigest()


def digests() -> dict[str, str]:
    """The digests of the reference runs, by name."""
    boin = boin_design(0.25, LEVELS, sample_size=18)
    # The hard overdose limit came later and changes the CRM's decisions; off (1), the design
    # is the one the digests were recorded with.
    limit_off = (
        {"max_overdose_probability": 1.0} if hasattr(Conduct, "overdose_min_patients") else {}
    )
    crm = crm_design(CRM(SKELETON, 0.25), sample_size=12, cohort_size=2, **limit_off)
    scenario = BinaryToxicityScenario(LEVELS, P_TRUE, 0.25, planned_sample_size=18)
    crm_scenario = BinaryToxicityScenario(crm.dose_levels, P_TRUE, 0.25, planned_sample_size=12)
    run = {"random_seed": SEED, "progress": False}
    return {
        "boin_simulate": digest(simulate(boin, scenario, N_TRIALS, **run)),
        "boin_run_trial": record_digest(boin, scenario),
        "crm_simulate": digest(simulate(crm, crm_scenario, N_TRIALS, **run)),
    }


if __name__ == "__main__":
    PATH.write_text(json.dumps(digests(), indent=2) + "\n")
    sys.stdout.write(PATH.read_text())
