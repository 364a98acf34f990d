import functools
import math
import os
import pickle
import shutil
import sys
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pytest
import xarray as xr

from dosezoo.data import TrialData
from dosezoo.decision import Decision
from dosezoo.errors import DamagedBatchWarning
from dosezoo.simulate import (
    operating_characteristics,
    run_trial,
    runner,
    simulate,
    simulate_designs,
)
from dosezoo.simulate import store as store_module
from dosezoo.simulate.netcdf import load_netcdf
from tests.test_store_faults import read_by_xarray


@dataclass(frozen=True)
class Escalate:
    """Toy design: +step per cohort while the last cohort's mean y < threshold, else stop."""

    start_dose: float = 1.0
    step: float = 1.0
    threshold: float = 2.0
    cohort_size: int = 3
    sample_size: int = 10

    def next(self, data: TrialData) -> Decision:
        if data.n_patients == 0:
            return Decision(self.start_dose, quantities={"curve": np.arange(3.0)})
        last = data.cohort == data.cohort[-1]
        mean_y = float(np.mean(data.column("y")[last]))
        if mean_y >= self.threshold:
            return Decision(None, stop_reason="toxic cohort", quantities={"mean_y": mean_y})
        bound_by = ("step", "cap") if mean_y < 0 else ()
        return Decision(
            float(data.dose[-1]) + self.step,
            quantities={"mean_y": mean_y, "label": "escalate"},
            bound_by=bound_by,
        )

    def recommend(self, data: TrialData) -> Decision:
        stop = self.next(data) if data.n_patients < self.sample_size else None
        if stop is not None and stop.stopped:
            return Decision(None, stop_reason=stop.stop_reason)
        return Decision(float(data.dose[-1]), quantities={"n_seen": data.n_patients})

    def describe(self) -> dict:
        return {
            "name": "escalate",
            "start_dose": self.start_dose,
            "step": self.step,
            "threshold": self.threshold,
            "monotone": True,
            "max_dose": None,
        }


@dataclass
class Linear:
    """Toy scenario: y ~ N(slope * dose, 1); respond raises after `fail_after` calls."""

    slope: float = 0.5
    fail_after: int | None = None
    calls: int = field(default=0, compare=False)
    outcomes: ClassVar[tuple[str, ...]] = ("y",)

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        return {"y": self.slope * doses + rng.standard_normal(doses.size)}

    def trial_metrics(self, data: TrialData, recommendation: Decision) -> dict[str, float]:
        mtd = Escalate.threshold / self.slope
        error = np.nan if recommendation.stopped else recommendation.next_dose - mtd
        return {
            "error": float(error),
            "residual": float(data.column("y")[0] - self.slope * data.dose[0]),
            "mean_dose": float(np.mean(data.dose)),
        }

    def describe(self) -> dict:
        return {"slope": self.slope, "model": "linear"}

    def empty_data(self) -> TrialData:
        return TrialData.empty(outcomes=self.outcomes, dose_range=(0.0, 100.0))


N_TRIALS = 40
SEED = 20240611


@pytest.fixture(scope="module")
def reference() -> xr.Dataset:
    return simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, progress=False)


def test_schema(reference):
    ds = reference
    assert dict(ds.sizes) == {"trial": N_TRIALS, "patient": 10, "decision": math.ceil(10 / 3) + 1}
    assert ds["trial"].values.tolist() == list(range(N_TRIALS))
    for name in ("dose", "cohort", "y"):
        assert ds[name].dims == ("trial", "patient")
    assert ds["cohort"].dtype == np.int64 and ds["n_patients"].dtype == np.int64
    decision_vars = {name for name in ds.data_vars if name.startswith("decision_")}
    assert decision_vars == {
        "decision_dose",
        "decision_stop_reason",
        "decision_bound_by",
        "decision_kind",
        "decision_mean_y",
        "decision_n_seen",
    }  # non-scalar "curve" and the string "label" are skipped
    assert set(ds.attrs["metrics"].split(",")) == {"error", "residual", "mean_dose"}
    assert ds.attrs["design_monotone"] == 1 and ds.attrs["design_max_dose"] == "none"
    assert ds.attrs["scenario_slope"] == 0.5 and ds.attrs["random_seed"] == SEED
    assert ds.attrs["n_trials"] == N_TRIALS and ds.attrs["cohort_size"] == 3
    for package in ("dosezoo", "numpy", "xarray", "scipy", "pymc", "arviz"):
        assert isinstance(ds.attrs[f"version_{package}"], str)
    for value in ds.attrs.values():
        assert isinstance(value, str | int | float)

    stopped = ds["stop_reason"].values != ""
    assert 0 < stopped.sum() < N_TRIALS  # both kinds of trial occur with this seed
    for i in range(N_TRIALS):
        trial = ds.isel(trial=i)
        n = int(trial["n_patients"])
        kinds = [k for k in trial["decision_kind"].values.tolist() if k]
        doses = trial["dose"].values
        assert np.isnan(doses[n:]).all() and (trial["cohort"].values[n:] == -1).all()
        assert not np.isnan(trial["y"].values[:n]).any()
        # every patient got the dose decided for their cohort
        cohort = trial["cohort"].values[:n]
        np.testing.assert_array_equal(doses[:n], trial["decision_dose"].values[cohort - 1])
        if stopped[i]:
            assert kinds == ["next"] * (len(kinds) - 1) + ["recommend"] and n < 10
            assert trial["decision_stop_reason"].values[len(kinds) - 2] == "toxic cohort"
            # the engine asks for a recommendation after an early stop too; this one is a stop
            assert trial["decision_stop_reason"].values[len(kinds) - 1] == "toxic cohort"
            assert np.isnan(trial["recommended_dose"]) and np.isnan(trial["error"])
        else:
            assert n == 10 and kinds == ["next"] * 4 + ["recommend"]
            assert float(trial["recommended_dose"]) == doses[n - 1]
            assert float(trial["decision_n_seen"][4]) == 10
        negative = trial["decision_mean_y"].values < 0
        assert (trial["decision_bound_by"].values[negative] == "step,cap").all()


def test_run_trial_is_reproducible_from_its_generator():
    first = run_trial(Escalate(), Linear(), np.random.default_rng(3))
    second = run_trial(Escalate(), Linear(), np.random.default_rng(3))
    assert first["n_patients"] == first["dose"].size == first["outcomes"]["y"].size
    np.testing.assert_array_equal(first["outcomes"]["y"], second["outcomes"]["y"])
    assert first["metrics"] == second["metrics"]


def test_seed_changes_the_result(reference):
    other = simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED + 1, progress=False)
    assert not np.array_equal(other["y"].values, reference["y"].values, equal_nan=True)


@pytest.fixture
def toys_by_value():
    """Let loky workers unpickle the toys of this module, which they cannot import."""
    cloudpickle = pytest.importorskip("cloudpickle")
    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)
    yield
    cloudpickle.unregister_pickle_by_value(module)


@pytest.mark.parametrize(("n_jobs", "batch_size"), [(1, None), (1, 7), (1, 1), (2, None), (2, 3)])
def test_independent_of_jobs_and_batches(reference, toys_by_value, n_jobs, batch_size):
    options = {"random_seed": SEED, "n_jobs": n_jobs, "batch_size": batch_size, "progress": False}
    result = simulate(Escalate(), Linear(), N_TRIALS, **options)
    xr.testing.assert_identical(result, reference)
    # Designs run together: each gets the result it gets alone.
    designs = {"unit": Escalate(), "double": Escalate(step=2.0, sample_size=12)}
    together = simulate_designs(designs, Linear(), N_TRIALS, record={"command": "test"}, **options)
    assert list(together) == ["unit", "double"]
    xr.testing.assert_identical(together["unit"], reference.assign_attrs(command="test"))
    alone = simulate(designs["double"], Linear(), N_TRIALS, random_seed=SEED, progress=False)
    xr.testing.assert_identical(together["double"], alone.assign_attrs(command="test"))


@dataclass(frozen=True)
class NotesHighStarts(Escalate):
    """Escalate, with a decision quantity only in trials whose first response is high."""

    def next(self, data: TrialData) -> Decision:
        decision = super().next(data)
        if data.n_patients == 0 or data.column("y")[0] < 1.5:
            return decision
        return replace(decision, quantities={**decision.quantities, "high_start": 1.0})


def test_the_variables_order_and_file_do_not_depend_on_the_batches(tmp_path):
    runs = {
        batch_size: simulate(
            NotesHighStarts(),
            Linear(),
            N_TRIALS,
            random_seed=SEED,
            batch_size=batch_size,
            path=tmp_path / f"{batch_size}.nc",
            progress=False,
        )
        for batch_size in (None, 1, N_TRIALS)
    }
    high = runs[None]["decision_high_start"].notnull().any("decision").values
    assert not high[0] and high.any()  # the first batch of one trial has no such quantity
    names = list(runs[None].data_vars)
    assert names.index("decision_high_start") < names.index("n_patients")
    for batch_size in (1, N_TRIALS):  # one batch per trial; all trials in one batch
        assert list(runs[batch_size].data_vars) == names
        xr.testing.assert_identical(runs[batch_size], runs[None])
        assert (tmp_path / f"{batch_size}.nc").read_bytes() == (tmp_path / "None.nc").read_bytes()


@pytest.mark.parametrize(("n_trials", "workers"), [(2000, 2), (40, 2), (7, 3), (500, 8)])
def test_parallel_batches_shrink_towards_the_end(n_trials, workers):
    todo = np.arange(n_trials) * 3  # trials left by an interrupted run need not be contiguous
    batches = runner._guided_batches(todo, workers)
    np.testing.assert_array_equal(np.concatenate(batches), todo)  # each trial once, in order
    sizes = [batch.size for batch in batches]
    assert sizes == sorted(sizes, reverse=True)
    assert max(sizes) <= runner._MAX_BATCH
    # the workers finish within a small batch of each other
    assert all(size <= runner._MIN_BATCH for size in sizes[-workers:])


@pytest.mark.parametrize(
    ("designs", "match"),
    [
        ({}, "designs must be a non-empty mapping of name to design"),
        ([Escalate()], "designs must be a non-empty mapping"),
        (
            {"ok": Escalate(), "bad": Escalate(cohort_size=0)},
            r"simulate_designs\['bad'\]: design.cohort_size must be an integer >= 1, got 0",
        ),
    ],
)
def test_bad_designs_to_run_together(designs, match):
    with pytest.raises(ValueError, match=match):
        simulate_designs(designs, Linear(), 5, random_seed=0, progress=False)


#: The scheduler's HTTP server (health, metrics) on a free port: with the dashboard off it still
#: takes port 8787, and warns (an error here) when another cluster on the machine holds it.
ANY_FREE_PORT = ":0"


def test_dask_client_gives_the_same_result(reference):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=ANY_FREE_PORT
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = simulate(
            Escalate(), Linear(), N_TRIALS, random_seed=SEED, client=client, progress=False
        )
        together = simulate_designs(
            {"a": Escalate(), "b": Escalate()},
            Linear(),
            N_TRIALS,
            random_seed=SEED,
            client=client,
            progress=False,
        )
    xr.testing.assert_identical(result, reference)
    for alike in together.values():
        xr.testing.assert_identical(alike, reference)


def test_dask_worker_processes_give_the_same_result(reference, toys_by_value):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=ANY_FREE_PORT
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = simulate(
            Escalate(), Linear(), N_TRIALS, random_seed=SEED, client=client, progress=False
        )
        # every batch ran in a worker process, none in this one
        assert all(pid != os.getpid() for pid in client.run(os.getpid).values())
    xr.testing.assert_identical(result, reference)


def test_a_worker_unpickles_the_designs_once_and_keeps_them_across_scenarios(monkeypatch):

    seen = []
    monkeypatch.setattr(runner, "_WARM", {"designs": {}, "scenario": {}})
    monkeypatch.setattr(runner, "_run_batch_in_worker", lambda d, s, *rest: seen.append((d, s)))
    first, second = ("a", pickle.dumps((Escalate(),))), ("b", pickle.dumps((Escalate(step=2.0),)))
    linear, other = ("s", pickle.dumps(Linear())), ("t", pickle.dumps(Linear(fail_after=0)))
    runs = (
        (first, linear),
        (first, linear),
        (first, other),
        (second, other),
        (second, other),
    )
    for designs, scenario in runs:
        runner._run_shipped_batch(designs, scenario, np.arange(2), SEED, None)
    assert seen[0][0] is seen[1][0] and seen[0][1] is seen[1][1]  # warm across batches
    # a new scenario, the same designs: they stay warm (what they memoise too)
    assert seen[2][0] is seen[1][0] and seen[2][1] is not seen[1][1]
    assert seen[2][1] == Linear(fail_after=0)
    assert seen[3][0] is seen[4][0] and seen[3][0] is not seen[2][0]
    assert seen[3][0] == (Escalate(step=2.0),)
    assert seen[3][1] is seen[2][1]
    # the previous run's designs are let go
    assert list(runner._WARM["designs"]) == ["b"] and list(runner._WARM["scenario"]) == ["t"]


def test_a_batch_makes_the_children_of_the_run_seed_for_its_trials():
    trials = np.array([0, 3, 17, 999])
    children = np.random.SeedSequence(SEED).spawn(1000)
    made = runner._trial_seeds(SEED, trials)
    for trial, seed in zip(trials, made, strict=True):
        assert seed.spawn_key == children[trial].spawn_key
        np.testing.assert_array_equal(seed.generate_state(8), children[trial].generate_state(8))


def test_progress_bar_does_not_change_the_result(reference, capsys):
    result = simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, progress=True)
    xr.testing.assert_identical(result, reference)
    assert f"{N_TRIALS}/{N_TRIALS}" in capsys.readouterr().out


def test_netcdf_round_trip(reference, tmp_path):
    path = tmp_path / "sim.nc"
    result = simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, path=path, progress=False)
    xr.testing.assert_identical(result, reference)
    # xarray reads the text (character arrays) as Python strings; load_netcdf as numpy text
    xr.testing.assert_identical(read_by_xarray(path), reference)
    loaded = load_netcdf(path)
    xr.testing.assert_identical(loaded, reference)
    assert loaded.attrs == reference.attrs
    for name in reference.variables:
        assert loaded[name].dtype.kind == reference[name].dtype.kind, name
    assert not path.with_name("sim.nc.parts").exists()
    # a finished file is loaded, not recomputed: this scenario would fail at once
    again = simulate(
        Escalate(), Linear(fail_after=0), N_TRIALS, random_seed=SEED, path=path, progress=False
    )
    xr.testing.assert_identical(again, reference)


def _interrupted(path, *, fail_after=60, save_every=0.0):
    """Run until the scenario 'kills' the run; return the saved part files."""
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        simulate(
            Escalate(),
            Linear(fail_after=fail_after),
            N_TRIALS,
            random_seed=SEED,
            path=path,
            batch_size=4,
            progress=False,
            save_every=save_every,
        )
    assert not path.exists()
    return sorted(path.with_name(f"{path.name}.parts").glob("trials-*.batch"))


def _trials_of(batch) -> np.ndarray:
    """The trials a saved batch holds: its name is trials-<first>-<last>.batch."""
    first, last = (int(k) for k in batch.stem.split("-")[1:])
    return np.arange(first, last + 1)


def test_resume_after_a_kill_equals_the_uninterrupted_run(reference, tmp_path):
    path = tmp_path / "sim.nc"
    saved = _interrupted(path)
    assert 0 < len(saved) < N_TRIALS / 4
    kept = np.concatenate([_trials_of(f) for f in saved[1:]])
    saved[0].unlink()  # a lost batch is reported and run again
    counting = Linear()
    with pytest.warns(DamagedBatchWarning, match=f"{saved[0].name!r} is recorded but missing"):
        result = simulate(
            Escalate(),
            counting,
            N_TRIALS,
            random_seed=SEED,
            path=path,
            batch_size=6,
            progress=False,
        )
    xr.testing.assert_identical(result, reference)
    xr.testing.assert_identical(read_by_xarray(path), reference)
    assert not path.with_name("sim.nc.parts").exists()
    # only the trials not kept were run (one respond call per cohort)
    rerun = np.setdiff1d(np.arange(N_TRIALS), kept)
    assert counting.calls == int(reference["cohort"].sel(trial=rerun).max("patient").sum())


@dataclass
class _InterruptedInNumba(Linear):
    """A Ctrl-C inside a numba function: Python raises a SystemError with it as the cause."""

    interrupt: bool = True

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        try:
            return super().respond(doses, rng)
        except KeyboardInterrupt as interrupt:
            cause = interrupt if self.interrupt else ValueError("not an interrupt")
            raise SystemError("CPUDispatcher returned a result with an exception set") from cause


def test_an_interrupt_inside_a_numba_function_is_raised_as_one(tmp_path):
    # The command line printed the SystemError's traceback, not its "interrupted: ... resumes"
    path = tmp_path / "sim.nc"
    run = functools.partial(
        simulate, Escalate(), n_trials=N_TRIALS, random_seed=SEED, batch_size=4, progress=False
    )
    with pytest.raises(KeyboardInterrupt):
        run(scenario=_InterruptedInNumba(fail_after=60), path=path, save_every=0.0)
    assert list(path.with_name("sim.nc.parts").glob("trials-*.batch"))  # finished work is kept
    with pytest.raises(KeyboardInterrupt):
        run(scenario=_InterruptedInNumba(fail_after=60))
    with pytest.raises(SystemError):  # any other SystemError is left as it is
        run(scenario=_InterruptedInNumba(fail_after=60, interrupt=False))


def test_batches_finished_within_save_every_are_held_then_saved_in_one_file(reference, tmp_path):
    path = tmp_path / "sim.nc"
    # an interrupt long before save_every: the finished batches are saved at once, together
    saved = _interrupted(path, save_every=3600.0)
    assert len(saved) == 1
    held = _trials_of(saved[0])
    assert held[0] == 0 and 4 < held.size < N_TRIALS and held.size % 4 == 0
    counting = Linear()
    result = simulate(
        Escalate(), counting, N_TRIALS, random_seed=SEED, path=path, batch_size=4, progress=False
    )
    xr.testing.assert_identical(result, reference)
    rerun = np.setdiff1d(np.arange(N_TRIALS), held)
    assert counting.calls == int(reference["cohort"].sel(trial=rerun).max("patient").sum())


def test_a_save_happens_once_save_every_has_passed(reference, tmp_path, monkeypatch):
    clock = iter(range(10**6))  # one second per reading of the clock
    monkeypatch.setattr(store_module.time, "monotonic", lambda: next(clock))
    # started at 0; batches taken at 1, 2 and 3 (>= 2.5: saved together, the clock reads 4),
    # at 5, 6 and 7 (saved), ...: three batches of 4 trials per file
    saved = _interrupted(tmp_path / "sim.nc", save_every=2.5)
    sizes = [_trials_of(file).size for file in saved]
    assert len(saved) >= 2 and all(size == 12 for size in sizes[:-1]) and sizes[-1] <= 12


def test_designs_run_together_resume_from_each_ones_store(reference, tmp_path):
    designs = {"unit": Escalate(), "double": Escalate(step=2.0, sample_size=12)}
    paths = {name: tmp_path / f"{name}.nc" for name in designs}
    options = {"random_seed": SEED, "paths": paths, "progress": False}
    with pytest.raises(KeyboardInterrupt, match="simulated kill"):
        simulate_designs(
            designs, Linear(fail_after=60), N_TRIALS, batch_size=4, save_every=0.0, **options
        )
    saved = {
        name: sorted(path.with_name(f"{path.name}.parts").glob("trials-*.batch"))
        for name, path in paths.items()
    }
    assert [file.name for file in saved["unit"]] == [file.name for file in saved["double"]]
    assert 1 < len(saved["unit"]) < N_TRIALS / 4
    # the stores need not agree: one lost batch is run again, and only its store takes it
    saved["double"][0].unlink()
    kept = np.concatenate([_trials_of(file) for file in saved["double"][1:]])
    counting = Linear()
    with pytest.warns(DamagedBatchWarning, match="is recorded but missing"):
        together = simulate_designs(designs, counting, N_TRIALS, batch_size=6, **options)
    alone = {
        name: simulate(design, Linear(), N_TRIALS, random_seed=SEED, progress=False)
        for name, design in designs.items()
    }
    xr.testing.assert_identical(alone["unit"], reference)
    for name, path in paths.items():
        xr.testing.assert_identical(together[name], alone[name])
        xr.testing.assert_identical(load_netcdf(path), alone[name])
        assert not path.with_name(f"{path.name}.parts").exists()
    rerun = np.setdiff1d(np.arange(N_TRIALS), kept)
    cohorts = sum(
        int(alone[name]["cohort"].sel(trial=rerun).max("patient").sum()) for name in alone
    )
    assert counting.calls == cohorts
    # finished files are loaded, not run again: this scenario would fail at once
    again = simulate_designs(designs, Linear(fail_after=0), N_TRIALS, **options)
    for name in designs:
        xr.testing.assert_identical(again[name], alone[name])
    # and they are the files simulate keeps
    unit = simulate(
        designs["unit"], Linear(fail_after=0), N_TRIALS, random_seed=SEED, path=paths["unit"]
    )
    xr.testing.assert_identical(unit, reference)


def test_a_design_run_alone_is_loaded_when_run_together(reference, tmp_path):
    path = tmp_path / "unit.nc"
    simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, path=path, progress=False)
    counting = Linear()
    designs = {"unit": Escalate(), "double": Escalate(step=2.0, sample_size=12)}
    paths = {"unit": path, "double": tmp_path / "double.nc"}
    together = simulate_designs(
        designs, counting, N_TRIALS, random_seed=SEED, paths=paths, progress=False
    )
    xr.testing.assert_identical(together["unit"], reference)
    assert counting.calls == int(together["double"]["cohort"].max("patient").sum())


@pytest.mark.parametrize(
    ("paths", "match"),
    [
        (
            {"a": "a.nc"},
            r"paths must map every design's name to its file, \['a', 'b'\]; got \['a'\]",
        ),
        (["a.nc", "b.nc"], r"paths must map every design's name .*; got \['a.nc', 'b.nc'\]"),
        ({"a": "same.nc", "b": "./same.nc"}, r"paths\['b'\] and paths\['a'\] are the same file"),
        ({"a": "a.nc", "b": 3}, r"paths\['b'\] must be a file name; got 3"),
    ],
)
def test_bad_paths_of_designs_run_together(paths, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        simulate_designs(
            {"a": Escalate(), "b": Escalate()}, Linear(), 5, random_seed=0, paths=paths
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("save_every", [-1.0, math.inf, math.nan, "1", True])
def test_save_every_must_be_a_finite_number_of_seconds(save_every):
    with pytest.raises(ValueError, match="save_every must be a finite number of seconds"):
        simulate(Escalate(), Linear(), 2, random_seed=0, save_every=save_every)


def test_duplicated_batch_is_reported_and_not_merged(reference, tmp_path):
    path = tmp_path / "sim.nc"
    saved = _interrupted(path)
    copy = saved[0].with_name("trials-999999998-999999999.batch")
    shutil.copy(saved[0], copy)
    with pytest.warns(
        DamagedBatchWarning, match="'trials-999999998-999999999.batch' is not recorded"
    ):
        result = simulate(
            Escalate(), Linear(), N_TRIALS, random_seed=SEED, path=path, progress=False
        )
    xr.testing.assert_identical(result, reference)


def test_resume_with_another_simulation_raises(tmp_path):
    path = tmp_path / "sim.nc"
    _interrupted(path)
    with pytest.raises(ValueError, match=r"holds a different simulation \(design_threshold"):
        simulate(
            Escalate(threshold=3.0), Linear(), N_TRIALS, random_seed=SEED, path=path, progress=False
        )
    with pytest.raises(ValueError, match=r"holds a different simulation.*random_seed"):
        simulate(Escalate(), Linear(), N_TRIALS, random_seed=1, path=path, progress=False)


def test_resume_under_other_package_versions_raises(tmp_path, monkeypatch):
    # A run killed under one environment resumed under another without a word, its trials
    # from both, labelled with the last one's versions only.
    path = tmp_path / "sim.nc"
    _interrupted(path)
    versions = store_module._versions() | {"version_numpy": "0.0.1"}
    monkeypatch.setattr(store_module, "_versions", lambda: versions)
    with pytest.raises(ValueError, match=r"holds a different simulation.*version_numpy"):
        simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, path=path, progress=False)


def test_finished_file_of_another_simulation_raises(reference, tmp_path):
    path = tmp_path / "sim.nc"
    reference.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ValueError, match=r"holds a different simulation.*scenario_slope"):
        simulate(Escalate(), Linear(slope=0.7), N_TRIALS, random_seed=SEED, path=path)


def test_operating_characteristics_match_numpy(reference):
    oc = operating_characteristics(reference, random_seed=1, n_bootstrap=500)
    assert oc["metric"].values.tolist() == reference.attrs["metrics"].split(",")
    for name in oc["metric"].values:
        values = reference[name].values
        x = values[~np.isnan(values)]
        row = oc.sel(metric=name)
        assert int(row["n"]) == x.size
        np.testing.assert_allclose(float(row["median"]), np.median(x))
        np.testing.assert_allclose(float(row["mean"]), np.mean(x))
        np.testing.assert_allclose(float(row["mcse_mean"]), np.std(x, ddof=1) / np.sqrt(x.size))
        assert float(row["mcse_median"]) >= 0
    assert (oc["mcse_median"].sel(metric=["residual", "mean_dose"]) > 0).all()
    assert int(oc["n"].sel(metric="error")) < N_TRIALS  # NaN trials are left out
    stopped = np.mean(reference["stop_reason"].values != "")
    assert float(oc["p_stopped_early"]) == stopped
    assert oc.attrs["random_seed"] == SEED and oc.attrs["n_bootstrap"] == 500
    again = operating_characteristics(reference, random_seed=1, n_bootstrap=500)
    xr.testing.assert_identical(again, oc)


def test_mcse_of_the_median_matches_the_normal_asymptotics():
    rng = np.random.default_rng(7)
    n = 4000
    z = rng.normal(3.0, 2.0, n)
    sparse = np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n))
    results = xr.Dataset(
        {
            "z": ("trial", z),
            "sparse": ("trial", sparse),
            "stop_reason": ("trial", np.where(np.arange(n) < 1000, "stopped", "")),
        },
        attrs={"metrics": "z,sparse"},
    )
    oc = operating_characteristics(results, random_seed=3)
    for name, x in (("z", z), ("sparse", sparse[~np.isnan(sparse)])):
        asymptotic = 1.2533 * np.std(x, ddof=1) / np.sqrt(x.size)
        assert abs(float(oc["mcse_median"].sel(metric=name)) / asymptotic - 1) < 0.3
    assert float(oc["p_stopped_early"]) == 0.25
    assert float(oc["mcse_p_stopped_early"]) == pytest.approx(np.sqrt(0.25 * 0.75 / n))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_trials": 0}, "simulate: n_trials must be an integer >= 1, got 0"),
        ({"n_trials": 2.5}, "simulate: n_trials must be an integer >= 1, got 2.5"),
        ({"n_trials": True}, "simulate: n_trials must be an integer >= 1, got True"),
        ({"random_seed": -1}, "simulate: random_seed must be an integer >= 0, got -1"),
        ({"random_seed": 1.5}, "simulate: random_seed must be an integer >= 0, got 1.5"),
        ({"n_jobs": 0}, r"n_jobs must be a positive integer or -1 \(one per CPU\); got 0"),
        ({"n_jobs": -2}, "n_jobs must be a positive integer or -1.*got -2"),
        ({"batch_size": 0}, "simulate: batch_size must be an integer >= 1, got 0"),
        ({"progress": "no"}, "simulate: progress must be True or False, got 'no'"),
        (
            {"n_trials": 10**18},
            rf"simulate: n_trials={10**18} trials of up to \d+ patients need at least .* GiB .* "
            "machine's .* GiB of memory; run fewer trials",
        ),
        ({"n_jobs": 2, "client": object()}, "n_jobs must be 1 when a dask client.*n_jobs=2"),
        ({"design": Escalate(cohort_size=0)}, "design.cohort_size must be an integer >= 1, got 0"),
        (
            {"design": Escalate(sample_size=-3)},
            "design.sample_size must be an integer >= 1, got -3",
        ),
    ],
)
def test_bad_arguments(kwargs, match):
    arguments = {
        "design": Escalate(),
        "scenario": Linear(),
        "n_trials": 5,
        "random_seed": 0,
        "progress": False,
    } | kwargs
    with pytest.raises(ValueError, match=match):
        simulate(**arguments)


def test_stop_without_a_reason_is_refused():
    @dataclass(frozen=True)
    class Silent(Escalate):
        def next(self, data: TrialData) -> Decision:
            return Decision(None, stop_reason="")

    with pytest.raises(ValueError, match=r"design\.next stopped with an empty stop_reason"):
        run_trial(Silent(), Linear(), np.random.default_rng(0))


def test_bad_describe_value_is_refused():
    @dataclass(frozen=True)
    class Listed(Escalate):
        def describe(self) -> dict:
            return {"levels": [1, 2, 3]}

    with pytest.raises(TypeError, match=r"design.describe\(\)\['levels'\] must be a str"):
        simulate(Listed(), Linear(), 2, random_seed=0, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"n_bootstrap": 1},
            "operating_characteristics: n_bootstrap must be an integer >= 2, got 1",
        ),
        (
            {"n_bootstrap": 0},
            "operating_characteristics: n_bootstrap must be an integer >= 2, got 0",
        ),
        (
            {"random_seed": -5},
            "operating_characteristics: random_seed must be an integer >= 0, got -5",
        ),
    ],
)
def test_bad_operating_characteristics_arguments(reference, kwargs, match):
    with pytest.raises(ValueError, match=match):
        operating_characteristics(reference, **kwargs)


def test_operating_characteristics_needs_simulation_results():
    with pytest.raises(ValueError, match="results must be the Dataset returned by simulate"):
        operating_characteristics(xr.Dataset({"x": ("trial", [1.0])}))


def test_a_scenario_without_the_designs_levels_is_refused_before_any_trial():
    # A scenario on other levels has no truth for some of the design's: the trial-by-trial run
    # failed when a trial reached one, and the metrics scored the levels by position.
    from dosezoo.designs import boin_design
    from dosezoo.scenarios import BinaryToxicityScenario

    design = boin_design(0.25, [10, 20, 40, 80, 160])
    other = BinaryToxicityScenario(
        (10, 20, 40, 80, 200), (0.5, 0.6, 0.7, 0.8, 0.9), 0.25, planned_sample_size=36
    )
    with pytest.raises(ValueError, match=r"no truth for \[160.0\]"):
        simulate(design, other, 4, random_seed=1, progress=False)
    with pytest.raises(ValueError, match=r"simulate_designs\['BOIN'\].*no truth for \[160.0\]"):
        simulate_designs({"BOIN": design}, other, 4, random_seed=1, progress=False)


def test_the_monte_carlo_errors_of_a_constant_metric_are_zero():
    # numpy's SD of equal values (1/3 fifty times) is 5.6e-17, shown as a Monte Carlo error
    results = xr.Dataset(
        {"a": ("trial", np.full(50, 1 / 3)), "stop_reason": ("trial", np.array([""] * 50))},
        attrs={"metrics": "a"},
    )
    oc = operating_characteristics(results)
    assert float(oc["mcse_median"][0]) == 0.0 and float(oc["mcse_mean"][0]) == 0.0


@dataclass
class FailsOnTrial(Linear):
    """Linear, whose responses fail with a ValueError in the trial of one seed."""

    failing_seed: tuple[int, ...] = ()

    def respond(self, doses: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if rng.bit_generator.seed_seq.spawn_key == self.failing_seed:
            raise ValueError(f"the scenario failed in trial {self.failing_seed[0]}")
        return super().respond(doses, rng)


def test_an_error_on_a_worker_is_raised_here_and_the_next_run_has_workers(reference, toys_by_value):
    with pytest.raises(ValueError, match="the scenario failed in trial 33"):
        simulate(
            Escalate(),
            FailsOnTrial(failing_seed=(33,)),
            N_TRIALS,
            random_seed=SEED,
            n_jobs=2,
            batch_size=4,
            progress=False,
        )
    again = simulate(Escalate(), Linear(), N_TRIALS, random_seed=SEED, n_jobs=2, progress=False)
    xr.testing.assert_identical(again, reference)
