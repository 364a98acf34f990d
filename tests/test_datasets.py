"""The bundled example data sets load with the published counts."""

import numpy as np

from dosezoo.datasets import (
    DFCRM_EXAMPLE_SKELETON,
    NEUENSCHWANDER2008_DOSES,
    NEUENSCHWANDER2008_REFERENCE_DOSE,
    boin_example_counts,
    load_dfcrm_example,
    load_neuenschwander2008,
    neuenschwander2008_counts,
)


def test_dfcrm_example_is_the_help_page_trial():
    data = load_dfcrm_example()
    assert data.dose.tolist() == [3, 4, 4, 3, 3, 4, 3, 2, 2, 2]
    assert data.column("dlt").tolist() == [0, 0, 1, 0, 0, 1, 1, 0, 0, 0]
    assert data.cohort.tolist() == list(range(1, 11))
    assert len(DFCRM_EXAMPLE_SKELETON) == 6


def test_neuenschwander2008_has_five_cohorts_of_18_patients():
    counts = neuenschwander2008_counts()
    data = load_neuenschwander2008()
    assert data.n_patients == 18 == counts["patients"].sum()
    assert data.cohort.tolist() == np.repeat(np.arange(1, 6), [3, 4, 5, 4, 2]).tolist()
    dlt = np.asarray(data.column("dlt"))
    assert dlt.sum() == 2 and dlt[np.asarray(data.dose) == 25.0].tolist() == [1, 1]
    assert set(counts["dose"]) <= set(NEUENSCHWANDER2008_DOSES)
    assert NEUENSCHWANDER2008_REFERENCE_DOSE == max(NEUENSCHWANDER2008_DOSES)


def test_boin_example_counts():
    counts = boin_example_counts()
    assert counts["patients"].tolist() == [3, 3, 15, 9, 0]
    assert counts["dlts"].tolist() == [0, 0, 4, 4, 0]
