"""Real trial data bundled with dosezoo."""

from importlib.resources import files

import numpy as np
import pandas as pd

from dosezoo.data import TrialData

#: AGT activity (fmol/mg) below which tumour AGT is undetectable in the O6-BG trial.
O6BG_AGT_UNDETECTABLE = 5.0
#: The 3PND response is ``O6BG_RESPONSE_OFFSET - AGT`` (Lee 2023, Application).
O6BG_RESPONSE_OFFSET = 60.0


def o6bg_frame() -> pd.DataFrame:
    """Tumour AGT activity of the 24 patients of the O6-benzylguanine phase I trial.

    Friedman et al. (1998), as listed in Lee (2023, Application): 3, 3, 9 and 9
    patients at 40, 60, 80 and 100 mg/m^2, none at 120. Cohorts are groups of three in
    the listed order.

    Returns
    -------
    pandas.DataFrame
        Columns ``dose`` (mg/m^2), ``cohort``, ``agt`` (fmol/mg) and ``y = 60 - agt``.
    """
    frame = pd.read_csv(files("dosezoo").joinpath("bundled", "o6bg.csv"))
    frame["y"] = O6BG_RESPONSE_OFFSET - frame["agt"]
    return frame


def load_o6bg() -> TrialData:
    """Load the O6-BG data as :class:`TrialData` with the continuous response ``y = 60 - AGT``.

    Returns
    -------
    TrialData
    """
    return TrialData.from_dataframe(o6bg_frame()[["dose", "cohort", "y"]])


#: Skeleton of the example of dfcrm's ``crm`` help page (Cheung 2011): levels 1-6.
DFCRM_EXAMPLE_SKELETON = (0.05, 0.10, 0.20, 0.35, 0.50, 0.70)
#: Target DLT rate of the dfcrm example.
DFCRM_EXAMPLE_TARGET = 0.2


def load_dfcrm_example() -> TrialData:
    """Load the ten patients of the example of ``crm`` in the R package dfcrm (Cheung 2011).

    Cheung, Y.K. (2011), *Dose Finding by the Continual Reassessment Method*, whose package
    dfcrm documents ``crm(prior, target, y, level)`` with this "simple data set": patients
    treated one at a time at levels 3, 4, 4, 3, 3, 4, 3, 2, 2, 2 with DLTs in patients 3, 6
    and 7, skeleton :data:`DFCRM_EXAMPLE_SKELETON`, target :data:`DFCRM_EXAMPLE_TARGET`.
    Doses are the level numbers 1-6 (the default levels of :class:`~dosezoo.models.crm.CRM`).

    Returns
    -------
    TrialData
        Columns ``dose`` (the level), ``cohort`` (one patient each) and ``dlt``.
    """
    frame = pd.read_csv(files("dosezoo").joinpath("bundled", "dfcrm_example.csv"))
    return TrialData.from_dataframe(
        frame.rename(columns={"level": "dose"}).astype({"dose": float})[["dose", "cohort", "dlt"]]
    )


#: The 15 doses (mg) of the trial of Neuenschwander, Branson and Gsponer (2008).
NEUENSCHWANDER2008_DOSES = (
    1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0, 250.0
)  # fmt: skip
#: The reference dose d* (mg) of their BLRM.
NEUENSCHWANDER2008_REFERENCE_DOSE = 250.0


def neuenschwander2008_counts() -> pd.DataFrame:
    """Patients and DLTs per dose after the first five cohorts of Neuenschwander et al. (2008).

    Neuenschwander, B., Branson, M. and Gsponer, T. (2008), *Statistics in Medicine* 27,
    2420-2439: an open-label dose-escalation cancer trial; as distributed by the R package
    OncoBayes2 (data set ``hist_SA``): 3, 4, 5 and 4 patients without DLT at 1, 2.5, 5 and
    10 mg, then 2 DLTs in 2 patients at 25 mg.

    Returns
    -------
    pandas.DataFrame
        Columns ``dose`` (mg), ``patients`` and ``dlts``, one row per cohort in trial order.
    """
    return pd.read_csv(files("dosezoo").joinpath("bundled", "neuenschwander2008.csv"))


def load_neuenschwander2008() -> TrialData:
    """Load the 18 patients of :func:`neuenschwander2008_counts`, one cohort per dose.

    Within a cohort the patients with a DLT come last (the order is not published and does
    not enter the likelihood).

    Returns
    -------
    TrialData
        Columns ``dose`` (mg), ``cohort`` and ``dlt``.
    """
    return _from_counts(neuenschwander2008_counts(), "dose")


def boin_example_counts() -> pd.DataFrame:
    """Patients and DLTs per dose level of the example of ``select.mtd`` in the R package BOIN.

    Yan, F., Zhang, L., Zhou, Y., Pan, H., Liu, S. and Yuan, Y. (2020), BOIN: an R package for
    designing single-agent and drug-combination dose-finding trials using Bayesian optimal
    interval designs, *Journal of Statistical Software* 94(13) (the design of Liu and Yuan
    2015): target 0.3, five levels with 3, 3, 15, 9 and 0 patients and 0, 0, 4, 4 and 0 DLTs.
    The example lists counts only, not the order of the cohorts.

    Returns
    -------
    pandas.DataFrame
        Columns ``level`` (1-5), ``patients`` and ``dlts``.
    """
    return pd.read_csv(files("dosezoo").joinpath("bundled", "boin_example.csv"))


def _from_counts(counts: pd.DataFrame, dose: str) -> TrialData:
    """Expand patients and DLTs per row into one row per patient, each row a cohort."""
    rows = counts[counts["patients"] > 0].reset_index(drop=True)
    frame = pd.DataFrame(
        {
            "dose": np.repeat(rows[dose].to_numpy(dtype=float), rows["patients"]),
            "cohort": np.repeat(np.arange(1, len(rows) + 1), rows["patients"]),
            "dlt": np.concatenate(
                [np.arange(n) >= n - y for n, y in zip(rows["patients"], rows["dlts"], strict=True)]
            ).astype(int),
        }
    )
    return TrialData.from_dataframe(frame)
