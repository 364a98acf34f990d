"""Digests of small simulations, to check that later work changed none of their results.

Without backfill: run on the commit before backfill existed, ``.venv/bin/python
tests/backfill_baseline.py`` wrote ``tests/data/backfill_baseline.json``;
``tests/test_backfill.py`` recomputes the same digests and compares. The CRM's digest was
recorded again (with the hard overdose limit off) when its posterior's tail probabilities became
exact integrals: that changed its safety stop's probability, not backfill; and again when its
posterior became a Gauss-Legendre quadrature (every dose, stop and recommendation of the 20
trials the same; the posterior means moved by at most 1.1e-10, the safety stop's probability by
less than 3e-7); and again when that quadrature went from 12 panels to 8 (every dose, stop and
recommendation the same; every recorded probability and mean within 4e-10, past the digests'
rounding to 1e-10). BOIN's digests are still those of the commit before backfill.

Run in time, with backfill (`timed_digests`): ``.venv/bin/python tests/backfill_baseline.py
--timed`` wrote ``tests/data/timed_baseline.json`` on the commit before the timed engine was
made cheaper (097d868), so that its speed-ups are shown to change no result. The CRM's was
recorded again when its posterior became a Gauss-Legendre quadrature: every dose, role, stop
and recommendation of its 20 trials the same, its posterior means within 5e-9 and its
recorded overdose probability within 6e-3 (the old grid's error). All were recorded again when
the arrivals and backfill choices got a stream of their own (the patients' outcomes now follow
the trial's generator in enrolment order, as without backfill): a change of the random numbers,
not of the rules. The 3+3's was recorded again when an MTD confirmed below a dose that had been
given named that dose's DLTs instead of "no higher dose to try": against the commit before, only
the stop reasons of 7 of its 20 trials differ, in their text. The CRM's was recorded again when
its quadrature went from 12 panels to 8: all the same but the recorded probabilities and means,
within 4e-10. BOIN12's was recorded again when its decisions stopped naming "desirability" (no
option moved them) and named "lambda_e" where it held back j + 1: against the commit before,
only ``decision_bound_by`` differs (119 "desirability" now "", 3 now "lambda_e").
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
TIMED_PATH = Path(__file__).parent / "data" / "timed_baseline.json"


#: Records added after the digests were taken (the hard overdose limit's probability).
RECORDED_LATER = {"decision_overdose_probability"}


def _settled(values: np.ndarray) -> bytes:
    """The bytes of an array, floats rounded to 1e-10 (and -0 as 0).

    Posterior summaries computed by numba differ in their last bits between CPUs (the width
    of their vector instructions changes the order of a sum); rounded, they are the same.
    """
    if values.dtype.kind in "OU":
        return values.astype(str).tobytes()
    if values.dtype.kind == "f":
        return (np.round(values, 10) + 0.0).tobytes()
    return values.tobytes()


def digest(result: xr.Dataset) -> str:
    """SHA-256 of every variable's name and values (attributes, which carry versions, left out)."""
    sha = hashlib.sha256()
    for name in sorted(set(result.data_vars) - RECORDED_LATER):
        sha.update(name.encode())
        sha.update(_settled(result[name].values))
    return sha.hexdigest()


def record_digest(design, scenario) -> str:
    """SHA-256 of the per-trial engine's records of ``N_TRIALS`` trials."""
    sha = hashlib.sha256()
    for seed in np.random.SeedSequence(SEED).spawn(N_TRIALS):
        record = run_trial(design, scenario, np.random.default_rng(seed))
        for key in ("dose", "cohort", "decision_dose", "recommended_dose"):
            sha.update(_settled(np.asarray(record[key], dtype=float)))
        sha.update(_settled(np.asarray(record["outcomes"]["dlt"], dtype=float)))
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


def timed_digests() -> dict[str, str]:
    """The digests of trials run in time with backfill, by design.

    BOIN (highest and random allocation), BOIN12, the 3+3 and the CRM, 36 patients on the
    Optimus study's levels, each with backfill, under the study's ``monotone`` scenario (the
    toxicity and response of every patient from one latent pair).
    """
    # Imported here: the package before backfill has none of them (digests() runs there).
    from dosezoo.designs import Backfill, boin12_design, three_plus_three_design
    from dosezoo.models.crm import crm_skeleton
    from dosezoo.studies import OPTIMUS_LEVELS, optimus_scenarios

    backfill = Backfill(1.0, 4.0)
    crm = CRM(crm_skeleton(0.25, 0.05, 3, len(OPTIMUS_LEVELS)), 0.25, dose_levels=OPTIMUS_LEVELS)
    designs = {
        "boin": boin_design(0.25, OPTIMUS_LEVELS, sample_size=36, backfill=backfill),
        "boin_random": boin_design(
            0.25,
            OPTIMUS_LEVELS,
            sample_size=36,
            backfill=Backfill(2.0, 3.0, total_cap=9, allocation="random"),
        ),
        "boin12": boin12_design(
            0.33, OPTIMUS_LEVELS, efficacy_limit=0.2, sample_size=36, backfill=backfill
        ),
        "three_plus_three": three_plus_three_design(OPTIMUS_LEVELS, backfill=backfill),
        "crm": crm_design(crm, sample_size=36, backfill=backfill),
    }
    scenario = optimus_scenarios(planned_sample_size=36)["monotone"]
    return {
        f"timed_{name}": digest(
            simulate(design, scenario, N_TRIALS, random_seed=SEED, progress=False)
        )
        for name, design in designs.items()
    }


if __name__ == "__main__":
    path, record = (TIMED_PATH, timed_digests) if "--timed" in sys.argv else (PATH, digests)
    path.write_text(json.dumps(record(), indent=2) + "\n")
    sys.stdout.write(path.read_text())
