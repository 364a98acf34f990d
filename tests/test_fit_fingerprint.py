"""A fit records a fingerprint of its data and model; ``decide`` refuses a fit of anything else.

A stale fit (made before the last cohort), a fit of another model class, or of the same class
with other settings (dose levels, hyper-parameters) would give a silently wrong decision.
"""

import pandas as pd
import pytest

from dosezoo.data import TrialData
from dosezoo.designs import blrm_design, crm_design, mtd_quantile_design
from dosezoo.designs.mtd_quantile import MTDQuantileRule
from dosezoo.errors import DataError, FitMismatchError
from dosezoo.models import BLRM, CRM, ThreePND

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
SKELETON = (0.084, 0.157, 0.25, 0.355, 0.46)


def _binary(doses, dlts) -> TrialData:
    return TrialData.from_dataframe(pd.DataFrame({"dose": doses, "dlt": dlts}))


BEFORE = _binary([10.0] * 3 + [20.0] * 3, [0] * 6)
#: The same trial after a cohort with 3 DLTs in 3 patients at 40.
AFTER = _binary([10.0] * 3 + [20.0] * 3 + [40.0] * 3, [0] * 6 + [1] * 3)


@pytest.fixture(scope="module")
def crm():
    design = crm_design(CRM(SKELETON, 0.25, dose_levels=LEVELS))
    return design, design.model.fit(BEFORE, engine="grid", draws=500, random_seed=1)


def test_a_fit_made_before_the_last_cohort_is_refused(crm):
    design, stale = crm
    assert design.decide(stale, BEFORE).next_dose == design.next(BEFORE).next_dose
    # The stale fit escalates to 40 or above; the current data de-escalate.
    assert design.next(AFTER).next_dose < 40.0
    with pytest.raises(FitMismatchError, match=r"data differ.*6 patients.*9 patients"):
        design.decide(stale, AFTER)
    assert issubclass(FitMismatchError, DataError)


def test_a_change_of_one_outcome_is_a_change_of_data(crm):
    design, stale = crm
    changed = _binary([10.0] * 3 + [20.0] * 3, [0] * 5 + [1])
    with pytest.raises(FitMismatchError, match="data differ"):
        design.decide(stale, changed)


def test_a_crm_fit_is_refused_by_a_blrm_design(crm):
    _, fit = crm
    design = blrm_design(BLRM(LEVELS, reference_dose=40.0))
    with pytest.raises(FitMismatchError, match=r"model class differs.*CRM.*BLRM"):
        design.decide(fit, BEFORE)


def test_a_fit_on_other_dose_levels_is_refused(crm):
    _, fit = crm
    design = crm_design(CRM(SKELETON, 0.25, dose_levels=(5.0, 10.0, 20.0, 40.0, 80.0)))
    with pytest.raises(FitMismatchError, match=r"model settings differ.*dose_levels"):
        design.decide(fit, _binary([10.0] * 3 + [20.0] * 3, [0] * 6))


def test_a_3pnd_fit_with_other_settings_is_refused():
    data = TrialData.from_dataframe(pd.DataFrame({"dose": [40.0] * 3, "y": [30.0, 20.0, 45.0]}))
    fitted = ThreePND(eta=55.0, gamma=0.6, x_min=20.0, x_max=140.0)
    fit = fitted.fit(data, engine="quadrature", draws=200, random_seed=1)
    rule = MTDQuantileRule(alpha=0.1)
    assert mtd_quantile_design(fitted, rule, start_dose=40.0).decide(fit, data).next_dose
    other = ThreePND(eta=60.0, gamma=0.6, x_min=20.0, x_max=140.0)
    with pytest.raises(FitMismatchError, match=r"model settings differ.*eta.*55.*60"):
        mtd_quantile_design(other, rule, start_dose=40.0).decide(fit, data)


def test_a_fit_without_a_fingerprint_is_refused_until_stamped(crm):
    design, fit = crm
    bare = fit.copy()
    for key in ("data_fingerprint", "model_class"):
        del bare.attrs[key]
    with pytest.raises(FitMismatchError, match="records no fingerprint"):
        design.decide(bare, BEFORE)
    stamped = design.model.stamp(bare, BEFORE)
    assert design.decide(stamped, BEFORE).next_dose == design.decide(fit, BEFORE).next_dose


def test_a_fit_of_the_same_patients_in_another_order_is_accepted(crm):
    # The seed and the posterior memo ignore the row order (exchangeable patients), but the
    # fingerprint did not: a fit with the DLT on another patient at the same dose was refused
    # with "the fit was made on 9 patients, these data have 9 patients".
    design, _ = crm
    first = _binary([10.0] * 3 + [20.0] * 3 + [40.0] * 3, [0] * 6 + [1, 0, 0])
    last = _binary([10.0] * 3 + [20.0] * 3 + [40.0] * 3, [0] * 6 + [0, 0, 1])
    fit = design.model.fit(last, engine="grid", draws=500, random_seed=1)
    accepted, own = design.decide(fit, first), design.decide(fit, last)
    assert (accepted.next_dose, accepted.quantities) == (own.next_dose, own.quantities)
    # Replicates per patient are set beside the fit's observed data: the order must match.
    with pytest.raises(FitMismatchError, match="these patients with their rows in another order"):
        design.model.check_fit(fit, first, same_order=True)
    # Other outcomes are still other data, named as such.
    with pytest.raises(FitMismatchError, match=r"9 patients.*9 patients.*in any row order"):
        design.decide(fit, _binary([10.0] * 3 + [20.0] * 3 + [40.0] * 3, [0] * 6 + [1, 1, 0]))


def test_a_repeated_measures_fit_keeps_its_row_order():
    import xarray as xr

    from dosezoo.models.three_pnd_repeated import ThreePNDRepeated

    model = ThreePNDRepeated(eta=3.0, gamma=0.9, x_min=5.0, x_max=80.0)

    def measurements(order):
        frame = pd.DataFrame(
            {"dose": [10.0, 20.0, 10.0, 20.0], "y": [1.0, 2.0, 1.5, 2.5], "subject": list("aabb")}
        )
        return TrialData.from_dataframe(frame.iloc[order], covariates=("subject",))

    data = measurements([0, 1, 2, 3])
    fit = model.stamp(xr.DataTree(), data)
    model.check_fit(fit, data)
    with pytest.raises(FitMismatchError, match="rows in another order"):
        model.check_fit(fit, measurements([2, 3, 0, 1]))
