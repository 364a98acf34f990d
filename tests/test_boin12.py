"""BOIN12 (Lin et al. 2020): constants, decision table and decisions against an independent
calculation written here from the paper with scipy.stats.beta, the rule's safety properties,
and its lockstep simulation against the trial-by-trial engine."""

import copy
import math

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.data import TrialData
from dosezoo.designs import BOIN12Design, BOIN12TableRow, boin12_design
from dosezoo.errors import DataError
from dosezoo.protocols import CountRuleDesign, LevelScenario
from dosezoo.scenarios import EffToxScenario
from dosezoo.simulate import simulate

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)


# --------------------------------------------------------------------------- reference


def reference_boundaries(phi: float) -> tuple[float, float]:
    """BOIN's boundaries (Liu and Yuan 2015, eq. for lambda_e, lambda_d) with 0.6/1.4 phi."""
    phi1, phi2 = 0.6 * phi, 1.4 * phi
    lam_e = math.log((1 - phi1) / (1 - phi)) / math.log(phi * (1 - phi1) / (phi1 * (1 - phi)))
    lam_d = math.log((1 - phi) / (1 - phi2)) / math.log(phi2 * (1 - phi) / (phi * (1 - phi2)))
    return lam_e, lam_d


def reference_benchmark(phi_t: float, phi_e: float, u11: float, u00: float) -> float:
    """u_b from the four outcome probabilities at (phi_E, phi_T), toxicity independent."""
    cells = {  # (E, T): (probability, utility)
        (1, 0): (phi_e * (1 - phi_t), 100.0),
        (0, 0): ((1 - phi_e) * (1 - phi_t), u00),
        (1, 1): (phi_e * phi_t, u11),
        (0, 1): ((1 - phi_e) * phi_t, 0.0),
    }
    u_bar = sum(p * u for p, u in cells.values())
    return u_bar + (100 - u_bar) / 2


def reference_desirability(n, t, e, r, u_b, u11, u00) -> float:
    """P(u > u_b) with the quasi-binomial utility counted from the four outcome cells."""
    y10, y11, y00, y01 = e - r, r, n - t - e + r, t - r
    assert min(y10, y11, y00, y01) >= 0
    x = (100 * y10 + u11 * y11 + u00 * y00 + 0 * y01) / 100
    return float(beta.sf(u_b / 100, 1 + x, 1 + n - x))


def reference_toxic(n, t, phi_t) -> bool:
    # At least 3 DLTs: the authors' get.oc.obd searches the elimination boundary from 3 DLTs.
    return t >= 3 and beta.sf(phi_t, 1 + t, 1 + n - t) > 0.95


def reference_futile(n, e, phi_e) -> bool:
    return n >= 3 and beta.cdf(phi_e, 1 + e, 1 + n - e) > 0.9


def reference_next(n, t, e, r, current, *, phi_t, phi_e, u11, u00, sample_size=36):
    """The next level (or None to stop) by the algorithm as the paper states it, dose by dose."""
    levels = len(n)
    if current < 0:
        return 0
    if sum(n) >= sample_size:
        return None
    lam_e, lam_d = reference_boundaries(phi_t)
    u_b = reference_benchmark(phi_t, phi_e, u11, u00)
    eliminated = [False] * levels
    for k in range(levels):
        if reference_toxic(n[k], t[k], phi_t):
            for j in range(k, levels):
                eliminated[j] = True
        if reference_futile(n[k], e[k], phi_e):
            eliminated[k] = True
    if all(eliminated):
        return None
    ok = [k for k in range(levels) if not eliminated[k]]
    lower = max((k for k in ok if k < current), default=None)
    upper = min((k for k in ok if k > current), default=None)
    p = t[current] / n[current]
    if p >= lam_d:
        if lower is not None:
            return lower
        return current if current in ok else None
    candidates = [k for k in (lower, current) if k is not None and k in ok]
    if upper is not None and (p <= lam_e or n[current] < 6):
        candidates.append(upper)
    if not candidates:  # the authors' code stops here, before it explores
        return None
    if n[current] >= 9 and upper is not None and n[upper] == 0:
        return upper
    scores = {k: reference_desirability(n[k], t[k], e[k], r[k], u_b, u11, u00) for k in candidates}
    best = max(scores.values())
    return max(k for k in candidates if scores[k] >= best - 1e-12)


# --------------------------------------------------------------------------- constants


def test_boundaries_and_benchmark_of_the_papers_example():
    design = boin12_design(0.35, LEVELS, efficacy_limit=0.25, u11=60, u00=40)
    rule = design.rule
    # BOIN's published boundaries for a target of 0.35: 0.276 and 0.419.
    assert rule.lambda_e == pytest.approx(0.2763, abs=1e-4)
    assert rule.lambda_d == pytest.approx(0.4189, abs=1e-4)
    assert (rule.lambda_e, rule.lambda_d) == pytest.approx(reference_boundaries(0.35))
    # u_bar = 100 * .25 * .65 + 40 * .75 * .65 + 60 * .35 * .25 = 41, u_b = 41 + 59 / 2.
    assert rule.utility_benchmark == pytest.approx(70.5)
    assert BOIN12Design is boin12_design


# --------------------------------------------------------------------------- decision table


@pytest.mark.parametrize(
    ("phi_t", "phi_e", "u11", "u00", "cohort"),
    [(0.35, 0.25, 60.0, 40.0, 3), (0.3, 0.2, 50.0, 30.0, 3), (0.25, 0.3, 70.0, 30.0, 2)],
)
def test_decision_table_matches_an_independent_calculation(phi_t, phi_e, u11, u00, cohort):
    design = boin12_design(
        phi_t, LEVELS, efficacy_limit=phi_e, u11=u11, u00=u00, cohort_size=cohort
    )
    rows = design.decision_table(4 * cohort)
    assert all(isinstance(row, BOIN12TableRow) for row in rows)
    additive = u11 + u00 == 100
    expected_cells = set()
    for n in [0, *range(cohort, 4 * cohort + 1, cohort)]:
        for t in range(n + 1):
            for e in range(n + 1):
                joint = range(max(0, t + e - n), min(t, e) + 1)
                for r in [None] if additive else joint:
                    expected_cells.add((n, t, e, r))
    assert {(r.n, r.n_dlt, r.n_response, r.n_dlt_and_response) for r in rows} == expected_cells
    lam_e, lam_d = reference_boundaries(phi_t)
    u_b = reference_benchmark(phi_t, phi_e, u11, u00)
    for row in rows:
        joint = row.n_dlt_and_response
        # With u11 + u00 = 100 the utility ignores the joint count: any feasible one gives it.
        r = max(0, row.n_dlt + row.n_response - row.n) if joint is None else joint
        assert row.desirability == pytest.approx(
            reference_desirability(row.n, row.n_dlt, row.n_response, r, u_b, u11, u00), abs=1e-12
        )
        assert row.eliminate_toxicity == reference_toxic(row.n, row.n_dlt, phi_t)
        assert row.eliminate_futility == reference_futile(row.n, row.n_response, phi_e)
        if row.n == 0:
            assert row.toxicity == ""
        elif row.n_dlt / row.n <= lam_e:
            assert row.toxicity == "escalate"
        elif row.n_dlt / row.n >= lam_d:
            assert row.toxicity == "de-escalate"
        elif row.n < 6:  # N*: with fewer patients the rule may escalate between the boundaries
            assert row.toxicity == "escalate (n < N*)"
        else:
            assert row.toxicity == "stay"
    # The rank-based desirability score orders the admissible rows by desirability.
    admissible = [r for r in rows if not (r.eliminate_toxicity or r.eliminate_futility)]
    assert all(r.rds is not None for r in admissible)
    assert all(r.rds is None for r in rows if r not in admissible)
    ordered = sorted(admissible, key=lambda r: r.desirability)
    assert [r.rds for r in ordered] == sorted(r.rds for r in admissible)
    assert max(r.rds for r in admissible) == pytest.approx(len(admissible) - 0.5, abs=0.5)


def test_the_table_says_what_the_rule_does_between_the_boundaries_below_n_star():
    # 3 patients, 1 DLT, no response at the lowest dose: the table said "stay", the rule
    # escalated (rule 4: j - 1, j, j + 1 are candidates while n < N*).
    design = boin12_design(0.35, LEVELS)
    (row,) = [r for r in design.decision_table(6) if (r.n, r.n_dlt, r.n_response) == (3, 1, 0)]
    assert row.toxicity == "escalate (n < N*)"
    data = TrialData.empty(outcomes=("dlt", "efficacy")).with_cohort(
        LEVELS[0], dlt=[1, 0, 0], efficacy=[0, 0, 0]
    )
    assert design.next(data).next_dose == LEVELS[1]


def test_the_table_names_bad_sizes_and_needs_no_middle_level():
    rule = boin12_design(0.35, LEVELS).rule
    for cohort, most, name in ((0, 9, "cohort_size"), (-3, 9, "cohort_size"), (3, -1, "max_")):
        with pytest.raises(ValueError, match=name):
            rule.tabulate(cohort, most)
    # The table is by counts at one dose: two levels are enough (it was refused).
    assert len(boin12_design(0.35, LEVELS[:2]).decision_table(9)) > 100


def test_the_untried_dose_has_the_prior_desirability():
    rows = boin12_design(0.35, LEVELS).decision_table(3)
    (untried,) = [r for r in rows if r.n == 0]
    assert untried.desirability == pytest.approx(1 - 70.5 / 100)


def test_cli_prints_the_boin12_table_as_json():
    result = CliRunner().invoke(
        app, ["decision-table", "examples/boin12.toml", "--max-patients", "6", "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    record = json.loads(result.output)
    assert record["family"] == "boin12"
    assert {"n", "n_dlt", "n_response", "desirability", "rds"} <= set(record["rows"][0])
    assert len(record["rows"]) == 1 + 16 + 49


# --------------------------------------------------------------------------- decisions


@st.composite
def efftox_states(draw):
    """A batch of BOIN12 count states with responses and DLTs-with-response per level."""
    size = draw(st.integers(1, 5))
    n, t, e, r, current = [], [], [], [], []
    for _ in range(size):
        ns = [draw(st.sampled_from([0, 3, 6, 9, 12])) for _ in LEVELS]
        ts = [draw(st.integers(0, k)) for k in ns]
        es = [draw(st.integers(0, k)) for k in ns]
        rs = [draw(st.integers(max(0, a + b - k), min(a, b))) for k, a, b in zip(ns, ts, es)]
        tried = [k for k, v in enumerate(ns) if v]
        n.append(ns)
        t.append(ts)
        e.append(es)
        r.append(rs)
        current.append(draw(st.sampled_from(tried)) if tried else -1)
    return tuple(np.array(v, dtype=np.int64) for v in (n, t, e, r, current))


@settings(max_examples=150, deadline=None)
@given(
    state=efftox_states(),
    utilities=st.sampled_from([(60.0, 40.0), (50.0, 20.0)]),
    target=st.sampled_from([0.35, 0.2]),
)
def test_decisions_match_an_independent_implementation(state, utilities, target):
    n, t, e, r, current = state
    u11, u00 = utilities
    design = boin12_design(target, LEVELS, efficacy_limit=0.25, u11=u11, u00=u00)
    events = {"responses": e, "dlt_and_response": r}
    decided = design.decide_counts(n, t, current, events)
    for row in range(current.size):
        expected = reference_next(
            n[row].tolist(),
            t[row].tolist(),
            e[row].tolist(),
            r[row].tolist(),
            int(current[row]),
            phi_t=target,
            phi_e=0.25,
            u11=u11,
            u00=u00,
        )
        assert (None if decided.level[row] < 0 else int(decided.level[row])) == expected


@pytest.mark.parametrize("cohort", ["1EBB", "1ETB", "1ETT", "1NBB", "1NTB"])
def test_two_dlts_in_three_do_not_eliminate_the_dose_at_a_low_target(cohort):
    # The BOIN12 Shiny application (MD Anderson), as the escalation package's tests record it
    # for target 0.15, efficacy limit 0.4, u11 30, u00 50, c_T 0.9, c_E 0.8: after one cohort
    # at the lowest dose with 2 DLTs (T: DLT, B: DLT and response, E: response, N: neither),
    # the trial continues at that dose. P(p_T > 0.15) = 0.988 > c_T here, so only the
    # authors' 3-DLT minimum keeps the dose.
    design = boin12_design(
        0.15,
        LEVELS,
        efficacy_limit=0.4,
        u11=30,
        u00=50,
        toxicity_cutoff=0.9,
        futility_cutoff=0.8,
        sample_size=36,
    )
    outcomes = cohort[1:]
    dlt = np.array([[sum(c in "TB" for c in outcomes), 0, 0, 0, 0]])
    events = {
        "responses": np.array([[sum(c in "EB" for c in outcomes), 0, 0, 0, 0]]),
        "dlt_and_response": np.array([[outcomes.count("B"), 0, 0, 0, 0]]),
    }
    n = np.array([[3, 0, 0, 0, 0]])
    assert beta.sf(0.15, 1 + 2, 1 + 1) > 0.9
    decided = design.decide_counts(n, dlt, np.array([0]), events)
    assert decided.level[0] == 0, decided.stop_reason[0]
    # A fourth patient with a DLT (and no response) makes it 3 DLTs, which eliminate every dose.
    fourth = np.array([[1, 0, 0, 0, 0]])
    three = design.decide_counts(n + fourth, dlt + fourth, np.array([0]), events)
    assert three.level[0] == -1


def test_exploration_does_not_override_a_stop_for_want_of_a_candidate():
    # 3/9 DLTs (between lambda_e and lambda_d) and no response at the lowest dose: it is
    # futile, so no candidate among it and the dose below; the untried dose above is not
    # explored, the trial stops (Lin et al.'s get.oc.obd).
    n, t, e = np.array([[9, 0, 0]]), np.array([[3, 0, 0]]), np.array([[0, 0, 0]])
    design = boin12_design(0.35, LEVELS[:3], efficacy_limit=0.25)
    decided = design.decide_counts(n, t, np.array([0]), {"responses": e, "dlt_and_response": t * 0})
    assert decided.level[0] == -1
    assert decided.stop_reason[0] == "no admissible dose to go to from dose 10"


@pytest.mark.parametrize("n_star, level, bound_by", [(6, 2, "lambda_e"), (7, 4, "")])
def test_the_record_names_lambda_e_where_it_held_back_the_more_desirable_dose(
    n_star, level, bound_by
):
    # 2 DLTs in 6 at 80 (p_hat 0.333 > lambda_e 0.276) and no response: 160, untried, is
    # the most desirable of j - 1, j, j + 1, but with n_star = 6 patients at 80 the rule may
    # not escalate, and gives 40. The record said "desirability" on every decision.
    n, t = np.array([[3, 3, 3, 6, 0]]), np.array([[0, 0, 0, 2, 0]])
    e, r = np.array([[0, 1, 1, 0, 0]]), np.zeros((1, 5), dtype=np.int64)
    design = boin12_design(0.35, LEVELS, efficacy_limit=0.25, n_star=n_star)
    decided = design.decide_counts(n, t, np.array([3]), {"responses": e, "dlt_and_response": r})
    desirability = design.rule.desirability(n[0], t[0], e[0], r[0])
    assert int(np.argmax(desirability)) == 4
    assert decided.level[0] == level and decided.bound_by[0] == bound_by


def _data(levels, n, t, e, r, current) -> TrialData:
    """Trial data with these counts per level, the last cohort at ``current``."""
    data = TrialData.empty(outcomes=("dlt", "efficacy"))
    order = [k for k in range(len(levels)) if n[k] and k != current] + [current]
    for k in order:
        if k < 0 or not n[k]:
            continue
        dlt = [1] * r[k] + [1] * (t[k] - r[k]) + [0] * (n[k] - t[k])
        eff = [1] * r[k] + [0] * (t[k] - r[k]) + [2] * (e[k] - r[k])
        eff += [0] * (n[k] - len(eff))
        data = data.with_cohort(levels[k], dlt=dlt, efficacy=eff)
    return data


@settings(max_examples=40, deadline=None)
@given(state=efftox_states())
def test_next_and_recommend_on_data_equal_the_count_rule(state):
    n, t, e, r, current = state
    design = boin12_design(0.35, LEVELS)
    events = {"responses": e, "dlt_and_response": r}
    decided = design.decide_counts(n, t, current, events)
    recommended = design.recommend_counts(n, t, current, events)
    for row in range(current.size):
        data = _data(LEVELS, n[row], t[row], e[row], r[row], int(current[row]))
        assert design.next(data).next_dose == decided.decision(row, LEVELS).next_dose
        got, want = design.recommend(data), recommended.decision(row, LEVELS)
        assert got.next_dose == want.next_dose
        np.testing.assert_equal(got.quantities, want.quantities)


@settings(max_examples=60, deadline=None)
@given(
    p_tox=st.lists(st.floats(0.01, 0.9), min_size=5, max_size=5).map(sorted),
    p_eff=st.lists(st.floats(0.01, 0.9), min_size=5, max_size=5),
    seed=st.integers(0, 2**31),
)
def test_never_assigns_an_eliminated_or_skipped_dose(p_tox, p_eff, seed):
    design = boin12_design(0.3, LEVELS, efficacy_limit=0.2, sample_size=36)
    rule = design.rule
    rng = np.random.default_rng(seed)
    m = 8  # trials in lockstep
    n = np.zeros((m, 5), dtype=np.int64)
    t, e, r = np.zeros_like(n), np.zeros_like(n), np.zeros_like(n)
    current = np.full(m, -1)
    running = np.ones(m, dtype=bool)
    for _ in range(12):
        rows = np.flatnonzero(running)
        if not rows.size:
            break
        level = design.decide_counts(
            n[rows], t[rows], current[rows], {"responses": e[rows], "dlt_and_response": r[rows]}
        ).level
        for row, k in zip(rows, level, strict=True):
            if k < 0:
                running[row] = False
                continue
            eliminated, _, _ = rule.eliminated(n[row], t[row], e[row])
            assert not eliminated[k], (n[row], t[row], e[row], k)
            highest_tried = max(np.flatnonzero(n[row]), default=-1)
            assert k <= highest_tried + 1  # never skips an untried dose
            dlt = rng.random(3) < p_tox[k]
            eff = rng.random(3) < p_eff[k]
            n[row, k] += 3
            t[row, k] += dlt.sum()
            e[row, k] += eff.sum()
            r[row, k] += (dlt & eff).sum()
            current[row] = k


# --------------------------------------------------------------------------- simulation


@pytest.mark.parametrize("shape", ["plateau", "all-toxic"])
def test_lockstep_simulation_equals_the_per_trial_engine(shape):
    design = boin12_design(0.3, LEVELS, efficacy_limit=0.2)
    p_tox = (0.04, 0.10, 0.20, 0.32, 0.45) if shape == "plateau" else (0.5, 0.6, 0.7, 0.8, 0.9)
    scenario = EffToxScenario(
        LEVELS,
        p_tox,
        (0.10, 0.40, 0.45, 0.46, 0.46),
        rho=0.3,
        planned_sample_size=36,
        utility=(60.0, 40.0),  # the OBD metrics too
        utility_limits=(0.3, 0.2),
    )
    assert isinstance(design, CountRuleDesign) and isinstance(scenario, LevelScenario)

    class PerTrial:
        def __init__(self, inner) -> None:
            self.inner = inner
            self.start_dose, self.cohort_size = inner.start_dose, inner.cohort_size
            self.sample_size = inner.sample_size

        def next(self, data):
            return self.inner.next(data)

        def recommend(self, data):
            return self.inner.recommend(data)

        def describe(self):
            return self.inner.describe()

    per_trial = simulate(PerTrial(design), scenario, 60, random_seed=7, progress=False)
    lockstep = simulate(design, scenario, 60, random_seed=7, progress=False)
    xr.testing.assert_identical(lockstep, per_trial)
    assert "obd_selection" in lockstep.attrs["metrics"]
    if shape == "all-toxic":
        # No dose is acceptable: most trials stop with no OBD (an unlucky few select one).
        assert float(lockstep["no_selection"].mean()) >= 0.9


# --------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="u11 must lie in"):
        boin12_design(0.3, LEVELS, u11=120)
    with pytest.raises(ValueError, match="efficacy_limit"):
        boin12_design(0.3, LEVELS, efficacy_limit=1.5)
    with pytest.raises(ValueError, match="n_star"):
        boin12_design(0.3, LEVELS, n_star=0)
    design = boin12_design(0.3, LEVELS)
    no_efficacy = TrialData.empty(outcomes=("dlt",)).with_cohort(10.0, dlt=[0, 0, 1])
    with pytest.raises(DataError, match="efficacy"):
        design.next(no_efficacy)
    n, y, current = np.array([[3, 0, 0, 0, 0]]), np.array([[1, 0, 0, 0, 0]]), np.array([0])
    with pytest.raises(ValueError, match="responses"):
        design.decide_counts(n, y, current)
    with pytest.raises(ValueError, match="impossible"):
        design.decide_counts(
            n,
            y,
            current,
            {
                "responses": np.array([[0, 0, 0, 0, 0]]),
                "dlt_and_response": np.array([[1, 0, 0, 0, 0]]),
            },
        )


def test_counts_of_data_check_the_events_the_rule_counts():
    design = boin12_design(0.35, LEVELS)
    data = _data(LEVELS, [3, 0, 0, 0, 0], [1, 0, 0, 0, 0], [2, 0, 0, 0, 0], [1, 0, 0, 0, 0], 0)
    states = design.rule.counts(data)
    assert states.events["responses"].tolist() == [[2, 0, 0, 0, 0]]
    assert states.events["dlt_and_response"].tolist() == [[1, 0, 0, 0, 0]]

    class Doubled(type(design.rule)):
        """Counts every response twice: more responses than patients."""

        def events_of(self, outcomes):
            return {name: 2 * flags for name, flags in super().events_of(outcomes).items()}

    doubled = copy.copy(design.rule)
    object.__setattr__(doubled, "__class__", Doubled)  # the bound rule, counting twice
    with pytest.raises(ValueError, match=r"row 0 is impossible: responses=\[4, 0, 0, 0, 0\]"):
        doubled.counts(data)
