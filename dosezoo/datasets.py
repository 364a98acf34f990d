"""Real trial data bundled with dosezoo."""

from importlib.resources import files

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
