"""`simulate`: many trials of a design under a scenario, in batches, on any workers.

`simulate_designs` runs several designs on the same trials, trial by trial in turn.

`simulate` splits the trials into batches and runs each batch with the lockstep engine
(`dosezoo.simulate.lockstep`) when the design and the scenario offer the count capabilities,
else trial by trial (`dosezoo.simulate.engine`); in process, on local worker processes (loky,
as joblib ships it) or on a dask cluster, with a progress bar over finished trials. It gathers the
batches in one `xarray.Dataset` with one entry per trial; with ``path``, every finished batch
is saved at once (`dosezoo.simulate.store`), so a run that was killed resumes where it stopped.

Reproducibility
---------------
Trial ``i`` draws its random numbers from ``numpy.random.default_rng(children[i])``,
where ``children = numpy.random.SeedSequence(random_seed).spawn(n_trials)``, and from
nothing else. The result of `simulate` therefore depends only on the design, the
scenario, ``n_trials`` and ``random_seed``: not on ``n_jobs``, ``batch_size``, the
use of dask, the order in which workers finish, nor on how often a run was
interrupted and resumed. This holds provided the design is a deterministic function
of the data it is given (a design that fits a posterior by MCMC must seed the fit
from its own settings and the data, never from global state).
"""

import concurrent.futures
import hashlib
import math
import numbers
import os
import pickle
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from rich.progress import MofNCompleteColumn, Progress, TimeRemainingColumn

from dosezoo.checks import flag, integer, positive_int, worker_count
from dosezoo.garbage import rare_collections
from dosezoo.protocols import CountRuleDesign, Design, LevelScenario, Scenario
from dosezoo.simulate.engine import _conduct, _run_trials_batch
from dosezoo.simulate.layout import AttrValue, _combine, _Layout
from dosezoo.simulate.lockstep import _count_design, _counts_suffice, _run_count_batch
from dosezoo.simulate.store import _fingerprint, _Store

if TYPE_CHECKING:
    from distributed import Client

_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
#: In a worker process: the designs of the run and its scenario, each by the digest of its
#: pickle. A worker unpickles each once, not once per batch, and keeps the designs while only
#: the scenario changes, so whatever they keep (compiled kernels, posteriors memoised by count
#: state) stays warm across batches and across the scenarios of a study, as in this process.
_WARM: dict[str, dict[str, object]] = {"designs": {}, "scenario": {}}
_MAX_BATCH = 100
#: Seconds a local worker process waits idle for the next run before it exits (joblib's).
_IDLE_WORKER_SECONDS = 300
#: Seconds between a local worker's checks that the process that started it still lives.
_PARENT_CHECK_SECONDS = 1.0
#: The cap for designs run in lockstep, whose trials cost microseconds: a batch's fixed costs
#: (a rule call per step, the Dataset) are then spread over more trials.
_MAX_LOCKSTEP_BATCH = 1000
_RECORD_RESERVED = (
    "random_seed",
    "n_trials",
    "sample_size",
    "cohort_size",
    "source_sha256",
    "metrics",
)
_BATCHES_PER_WORKER = 4
#: The smallest batch the trial-by-trial path shrinks to at the end of a parallel run.
_MIN_BATCH = 4


def simulate(
    design: Design,
    scenario: Scenario,
    n_trials: int,
    *,
    random_seed: int,
    n_jobs: int = 1,
    client: "Client | None" = None,
    path: str | os.PathLike[str] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    save_every: float = 1.0,
    record: Mapping[str, str] | None = None,
) -> xr.Dataset:
    """Simulate many trials of a design under a scenario.

    Parameters
    ----------
    design : Design
        How each trial is conducted.
    scenario : Scenario
        The truth the outcomes are drawn from.
    n_trials : int
        Number of trials, a positive integer.
    random_seed : int
        Non-negative seed; trial ``i`` uses child ``i`` of
        ``numpy.random.SeedSequence(random_seed).spawn(n_trials)``, so the result does
        not depend on ``n_jobs``, ``batch_size``, ``client`` or on resuming.
    n_jobs : int, default 1
        Local worker processes (loky's reusable executor, the one joblib ships); -1 for one
        per CPU. With 1 and no ``client`` the trials run in this process. Workers pay for
        designs whose trials cost milliseconds (a 3PND design); the count designs (CRM, BLRM,
        EWOC, which memoise their posteriors by count state, and BOIN, 3+3) run thousands of
        trials a second in one process, and two workers each compute many of the same
        posteriors (``docs/results/scaleout.md`` measures both).
    client : distributed.Client, optional
        Run the batches on this dask cluster instead (then ``n_jobs`` must be 1).
    path : str or path-like, optional
        netCDF file of the results. Finished batches are saved in the directory
        ``<path>.parts`` (see ``save_every``); a later call with the same arguments runs
        only the trials not saved yet, then writes ``path`` and removes the parts. If
        ``path`` already holds this simulation, it is loaded and returned.
    batch_size : int, optional
        Trials per batch (the unit of work sent to a worker). Default: when every design
        runs in lockstep (see Notes), one batch per worker, at most 1000 trials each;
        else about four batches per worker, at most 100 trials each, and on several
        workers the batches shrink towards the end of the run, down to 4 trials, so that
        the workers finish together.
    progress : bool, default True
        Show a progress bar over finished trials.
    save_every : float, default 1.0
        With ``path``: seconds of running between two saves. A finished batch is saved at
        once when this long has passed since the last save, together with the finished
        batches held since; so a killed run loses at most about this much finished work
        (and the batches running), and a fast design, whose batches take milliseconds, saves
        a few times a second rather than per batch (``docs/results/store_overhead.md``
        measures what saving costs).
        0 saves every batch at once. An error, an interrupt (Ctrl-C, or SIGTERM, which then
        exits with status 143) or a failed final write (a full disk) saves the batches held.
    record : mapping of str to str, optional
        Text attributes written with the results, outside their fingerprint (e.g. the command
        line that ran them and its configuration, which ``dosezoo report`` shows). A
        finished file that already holds this simulation keeps what it recorded.

    Returns
    -------
    xarray.Dataset
        One entry per trial, dims ``trial`` (coordinate 0..n_trials-1), ``patient``
        (``design.sample_size``) and ``decision`` (``ceil(sample_size / cohort_size)
        + 1``; a trial's decisions are those of ``design.next`` and then the one of
        ``design.recommend``). Per patient: ``dose``,
        ``cohort`` (-1 past the last patient) and one float variable per outcome (NaN
        past the last patient) and per covariate of the data (NaN, or ``""`` for text,
        past the last patient). Doses of drug combinations have a last dim
        ``dose_column`` (the scenario's dose columns). Per decision: ``decision_dose``
        (NaN for a stop and for a decision per stratum, whose doses its rule may record
        as quantities),
        ``decision_stop_reason``, ``decision_bound_by`` (comma-joined),
        ``decision_kind`` (``"next"``, ``"recommend"``, ``""`` past the last decision)
        and ``decision_<key>`` for every real scalar in ``Decision.quantities``. Per
        trial: ``n_patients``, ``stop_reason`` (``""`` when the trial reached its
        sample size), ``recommended_dose`` (NaN if none) and one variable per metric.
        Attributes: ``random_seed``, ``n_trials``, ``sample_size``, ``cohort_size``,
        ``source_sha256`` (the digest of dosezoo's source that ran them), ``design_<key>``
        and ``scenario_<key>`` from ``describe()`` (bool as int, None as ``"none"``),
        ``metrics`` (comma-joined names), ``version_<package>`` and those of ``record``.

    Raises
    ------
    ValueError
        If an argument is invalid (the message names it), or ``path`` holds a
        different simulation.

    Notes
    -----
    A design offering `CountRuleDesign` with a scenario offering `LevelScenario` on the same
    dose levels (and an outcome ``dlt``) is simulated with its trials in lockstep (see
    `dosezoo.simulate.lockstep`): trial ``i`` still draws the latent variables of its patients
    from ``numpy.random.default_rng(children[i])``, in enrolment order, so the result is
    identical to the trial-by-trial run, for any ``n_jobs``, ``batch_size`` or resumption; any
    other pair is run trial by trial with `run_trial`.

    A design with a backfill (its conduct's ``backfill``) is run in time, trial by trial (see
    `dosezoo.simulate.engine`): the results add per patient ``enrolled`` (time) and ``role``
    (``"escalation"`` / ``"backfill"``, ``""`` past the last patient), per decision
    ``decision_time``, and per trial the metrics ``duration``, ``n_backfill`` and
    ``n_turned_away``.
    """
    n_trials, random_seed, batch_size = _checked_options(
        "simulate", n_trials, random_seed, n_jobs, client, batch_size, progress
    )
    save_every = _checked_save_every("simulate", save_every)
    recorded = _recorded(record)
    fingerprint, layout = _layout(design, scenario, n_trials, random_seed, "simulate")
    run = _runner(
        (design,), scenario, (layout,), n_trials, random_seed, n_jobs, client, batch_size, progress
    )
    if path is None:
        with _interrupt_as_such():
            parts = run([0], np.arange(n_trials), None)
        return _combine([part for (part,) in parts], n_trials, {**fingerprint, **recorded})
    store = _Store(Path(path), fingerprint, save_every=save_every)
    (result,) = _run_stored((store,), run, n_trials, recorded)
    return result


#: Runs the trials ``todo`` of the designs chosen by their positions, passing each finished
#: batch (the chosen designs' Datasets) to the callback; returns the batches.
_Run = Callable[
    [Sequence[int], np.ndarray, Callable[[list[xr.Dataset]], None] | None], list[list[xr.Dataset]]
]


def _runner(
    designs: tuple[Design, ...],
    scenario: Scenario,
    layouts: tuple[_Layout, ...],
    n_trials: int,
    random_seed: int,
    n_jobs: int,
    client: "Client | None",
    batch_size: int | None,
    progress: bool,
) -> _Run:
    """Return the function that runs trials of some of ``designs`` with these options."""

    def run(
        chosen: Sequence[int],
        todo: np.ndarray,
        save: Callable[[list[xr.Dataset]], None] | None,
    ) -> list[list[xr.Dataset]]:
        return _run_todo(
            tuple(designs[k] for k in chosen),
            scenario,
            todo,
            random_seed,
            tuple(layouts[k] for k in chosen),
            n_jobs,
            client,
            batch_size,
            progress,
            save=save,
            n_trials=n_trials,
        )

    return run


def _run_stored(
    stores: tuple[_Store, ...], run: _Run, n_trials: int, recorded: dict[str, str]
) -> list[xr.Dataset]:
    """Return the results of every design, each kept in its store (``stores[k]`` of design k).

    A design whose store holds its finished file is loaded, not run. The others are run
    together, on the trials that any of them has not saved yet, under the locks of their
    stores; each store saves only the trials it lacks, so stores saved by separate runs
    resume too.
    """
    results: list[xr.Dataset | None] = [
        # A finished run's file (written whole, then renamed): loaded without the lock, which
        # a read-only place could not hold.
        store.finished(holding_lock=False)
        if store.path.exists() and not store.parts_dir.exists()
        else None
        for store in stores
    ]
    pending = [k for k, result in enumerate(results) if result is None]
    with ExitStack() as locks:
        for k in pending:
            locks.enter_context(stores[k].locked())
        for k in pending:
            results[k] = stores[k].finished()
        pending = [k for k in pending if results[k] is None]
        saved = {k: stores[k].parts() for k in pending}
        done = {
            k: np.concatenate([part["trial"].values for part in parts]) if parts else np.zeros(0)
            for k, parts in saved.items()
        }
        done_by_all = reduce(np.intersect1d, done.values()) if done else np.arange(n_trials)
        todo = np.setdiff1d(np.arange(n_trials), done_by_all)

        def save(finished: list[xr.Dataset]) -> None:
            for k, part in zip(pending, finished, strict=True):
                new = ~np.isin(part["trial"].values, done[k])
                if new.any():
                    part = part if new.all() else part.isel(trial=new)
                    saved[k].append(part)
                    stores[k].save(part)

        try:
            if todo.size:
                with _terminate_as_exit(), _interrupt_as_such():
                    run(pending, todo, save)
            for k in pending:
                fingerprint = stores[k].fingerprint
                result = _combine(saved[k], n_trials, {**fingerprint, **recorded})
                stores[k].finish(result)
                results[k] = result
        except BaseException:
            # The trials finished but not yet saved outlive an error, an interrupt or a
            # failed final write (a full disk): a run on the same paths resumes after them.
            for k in pending:
                stores[k].save_held()
            raise
    return [result for result in results if result is not None]


def _checked_save_every(owner: str, save_every: float) -> float:
    """Return ``save_every`` as seconds, after checking it is a finite number >= 0."""
    if (
        isinstance(save_every, bool)
        or not isinstance(save_every, numbers.Real)
        or not 0 <= save_every < math.inf
    ):
        raise ValueError(
            f"{owner}: save_every must be a finite number of seconds >= 0; got {save_every!r}"
        )
    return float(save_every)


@contextmanager
def _interrupt_as_such() -> Iterator[None]:
    """Within the block, a Ctrl-C inside a numba function is raised as the KeyboardInterrupt it is.

    A compiled function returns with the interrupt set, and Python raises ``SystemError: ...
    returned a result with an exception set`` from it: the command line printed that traceback
    in place of its "interrupted: ... resumes" line (the finished batches were saved all the
    same).
    """
    try:
        yield
    except SystemError as error:
        causes: list[BaseException] = []
        cause: BaseException | None = error
        while cause is not None and cause not in causes:  # a chain may loop back
            causes.append(cause)
            cause = cause.__cause__ or cause.__context__
        if not any(isinstance(c, KeyboardInterrupt) for c in causes):
            raise
        raise KeyboardInterrupt from error


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM exits by ``SystemExit(128 + SIGTERM)``, as the shell reports it.

    The default action of SIGTERM (a job scheduler's, ``kill``'s) ends the process at once: the
    finished batches held for the next save were lost. As an exception, they are saved first.
    A handler of the program's own is left alone, as is a thread other than the main one
    (which cannot set one).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def exit_on_terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _recorded(record: Mapping[str, str] | None) -> dict[str, str]:
    """Return the attributes to record, checked: text, under names the results do not use."""
    if record is None:
        return {}
    if not isinstance(record, Mapping):
        raise ValueError(f"simulate: record must be a mapping of str to str; got {record!r}")
    for key, value in record.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"simulate: record[{key!r}] = {value!r}; names and values must be str")
        if key in _RECORD_RESERVED or key.startswith(("design_", "scenario_", "version_")):
            raise ValueError(
                f"simulate: record[{key!r}] would replace an attribute of the results (run "
                "settings, metrics, design_*, scenario_*, version_*); rename it"
            )
    return dict(record)


def simulate_designs(
    designs: Mapping[str, Design],
    scenario: Scenario,
    n_trials: int,
    *,
    random_seed: int,
    n_jobs: int = 1,
    client: "Client | None" = None,
    paths: Mapping[str, str | os.PathLike[str]] | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    save_every: float = 1.0,
    record: Mapping[str, str] | None = None,
) -> dict[str, xr.Dataset]:
    """Simulate several designs on the same trials (common random numbers).

    ``result[name]`` is identical to ``simulate(designs[name], scenario, n_trials,
    random_seed=random_seed, record=record)`` (trial ``i`` of every design draws from child
    ``i`` of ``numpy.random.SeedSequence(random_seed)``), for any ``n_jobs``, ``batch_size``
    or ``client``. What running them together adds: a batch runs trial ``i`` of every design
    before trial ``i + 1``, and the designs travel to a worker together, so designs that share
    a model object share what it memoises while it is fresh. A model whose posterior depends
    on the data only through counts (``count_posterior``, seeded from them) then computes the
    posterior of a count state once for every design reaching it in a trial: the variants of
    a design in a sensitivity analysis, which treat the same patients until their settings
    first disagree, cost little more than one of them.

    Parameters
    ----------
    designs : mapping of str to Design
        The designs by name (at least one).
    scenario, n_trials, random_seed, n_jobs, client, batch_size, progress, save_every, record
        As :func:`simulate` (the progress bar counts trials run by every design).
    paths : mapping of str to str or path-like, optional
        The netCDF file of each design's results, by name (every name of ``designs``, each
        its own file): the file, and its store of finished batches, that ``simulate(designs[name],
        ..., path=paths[name])`` keeps. A killed run resumes with the trials not saved yet; a
        design whose file is finished is loaded, not run.

    Returns
    -------
    dict of str to xarray.Dataset
        Each design's results, by name, as :func:`simulate` returns them.
    """
    if not isinstance(designs, Mapping) or not designs:
        raise ValueError(
            f"simulate_designs: designs must be a non-empty mapping of name to design; "
            f"got {designs!r}"
        )
    n_trials, random_seed, batch_size = _checked_options(
        "simulate_designs", n_trials, random_seed, n_jobs, client, batch_size, progress
    )
    save_every = _checked_save_every("simulate_designs", save_every)
    recorded = _recorded(record)
    laid_out = {
        name: _layout(design, scenario, n_trials, random_seed, f"simulate_designs[{name!r}]")
        for name, design in designs.items()
    }
    run = _runner(
        tuple(designs.values()),
        scenario,
        tuple(layout for _, layout in laid_out.values()),
        n_trials,
        random_seed,
        n_jobs,
        client,
        batch_size,
        progress,
    )
    if paths is not None:
        stores = tuple(
            _Store(path, fingerprint, save_every=save_every)
            for path, (fingerprint, _) in zip(
                _design_paths(designs, paths), laid_out.values(), strict=True
            )
        )
        return dict(zip(designs, _run_stored(stores, run, n_trials, recorded), strict=True))
    parts = run(range(len(designs)), np.arange(n_trials), None)
    return {
        name: _combine([part[k] for part in parts], n_trials, {**fingerprint, **recorded})
        for k, (name, (fingerprint, _)) in enumerate(laid_out.items())
    }


def _design_paths(
    designs: Mapping[str, Design], paths: Mapping[str, str | os.PathLike[str]]
) -> list[Path]:
    """Return the file of every design, in the order of ``designs``, after checking them."""
    if not isinstance(paths, Mapping) or set(paths) != set(designs):
        names = sorted(paths) if isinstance(paths, Mapping) else paths
        raise ValueError(
            f"simulate_designs: paths must map every design's name to its file, "
            f"{sorted(designs)}; got {names!r}"
        )
    files: dict[Path, str] = {}
    for name in designs:
        if not isinstance(paths[name], str | os.PathLike):
            raise ValueError(
                f"simulate_designs: paths[{name!r}] must be a file name; got {paths[name]!r}"
            )
        file = Path(paths[name])
        same = files.setdefault(file.resolve(), name)
        if same != name:
            raise ValueError(
                f"simulate_designs: paths[{name!r}] and paths[{same!r}] are the same file "
                f"{str(file)!r}; give each design its own"
            )
    return [Path(paths[name]) for name in designs]


def _checked_options(
    owner: str,
    n_trials: object,
    random_seed: object,
    n_jobs: int,
    client: "Client | None",
    batch_size: object,
    progress: object,
) -> tuple[int, int, int | None]:
    """Validate the run options common to `simulate` and `simulate_designs`.

    Returns ``n_trials``, ``random_seed`` and ``batch_size`` (None: the default).
    """
    flag(owner, "progress", progress)
    n_trials = positive_int(owner, "n_trials", n_trials)
    random_seed = integer(owner, "random_seed", random_seed, minimum=0)
    worker_count(owner, "n_jobs", n_jobs)
    if client is not None and n_jobs != 1:
        raise ValueError(
            f"{owner}: n_jobs must be 1 when a dask client runs the trials; got n_jobs={n_jobs!r}"
        )
    if batch_size is not None:
        batch_size = positive_int(owner, "batch_size", batch_size)
    return n_trials, random_seed, batch_size


def _layout(
    design: Design, scenario: Scenario, n_trials: int, random_seed: int, owner: str
) -> tuple[dict[str, AttrValue], _Layout]:
    """Return the fingerprint of a design's run and the layout of its results.

    Raises ValueError when the design has dose levels the scenario has no truth for: a trial
    would fail when it reached one, and the scenario would score its levels by position.
    """
    design_levels = getattr(design, "dose_levels", None)
    scenario_levels = getattr(scenario, "dose_levels", None)
    if design_levels and scenario_levels:
        missing = [level for level in design_levels if level not in scenario_levels]
        if missing:
            raise ValueError(
                f"{owner}: the design's dose levels {list(design_levels)} are not all the "
                f"scenario's {list(scenario_levels)} (no truth for {missing}); give the "
                "scenario the design's levels"
            )
    cohort_size, sample_size = _conduct(design, owner)
    _check_memory(owner, n_trials, sample_size, len(tuple(scenario.outcomes)))
    run = {
        "random_seed": random_seed,
        "n_trials": n_trials,
        "sample_size": sample_size,
        "cohort_size": cohort_size,
    }
    fingerprint = _fingerprint(design, scenario, run)
    empty = scenario.empty_data()
    layout = _Layout(
        outcomes=tuple(scenario.outcomes),
        sample_size=sample_size,
        n_decisions=math.ceil(sample_size / cohort_size) + 1,
        fingerprint=fingerprint,
        dose_columns=tuple(empty.dose_columns),
        covariates=tuple(empty.covariates),
        timed=getattr(design, "backfill", None) is not None,
    )
    return fingerprint, layout


def _check_memory(owner: str, n_trials: int, sample_size: int, n_outcomes: int) -> None:
    """Raise ValueError when the results of ``n_trials`` cannot fit in this machine's memory.

    The bound is a lower one, the per-patient arrays alone (a dose, a cohort and each outcome
    of 8 bytes per patient): a run refused here would fail anyway, in numpy's allocation, at
    its start or after hours of trials.
    """
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): nothing to compare
        return
    needed = n_trials * sample_size * (2 + n_outcomes) * 8
    if needed > memory:
        raise ValueError(
            f"{owner}: n_trials={n_trials} trials of up to {sample_size} patients need at "
            f"least {needed / 2**30:.3g} GiB for their results, more than this machine's "
            f"{memory / 2**30:.3g} GiB of memory; run fewer trials"
        )


def _run_todo(
    designs: tuple[Design, ...],
    scenario: Scenario,
    todo: np.ndarray,
    random_seed: int,
    layouts: tuple[_Layout, ...],
    n_jobs: int,
    client: "Client | None",
    batch_size: int | None,
    progress: bool,
    save: Callable[[list[xr.Dataset]], None] | None,
    n_trials: int | None = None,
) -> list[list[xr.Dataset]]:
    """Run the trials ``todo`` of ``n_trials`` (default: ``todo.size``) in batches.

    Returns one list per batch, of every design's Dataset; each is passed to ``save`` at once.
    """
    n_trials = todo.size if n_trials is None else n_trials
    if batch_size is None:
        if client is not None:
            workers = sum(client.nthreads().values())
        else:
            workers = _workers(n_jobs)
        lockstep = all(
            _lockstep_design(design, scenario, layout) is not None
            for design, layout in zip(designs, layouts, strict=True)
        )
        if lockstep:
            # One batch per worker up to the cap: a lockstep batch's fixed costs (a rule call
            # per step, its Dataset, handing it to a worker and back) are most of the cost of
            # a few hundred trials, and its trials cost about the same, so more batches would
            # balance nothing.
            batch_size = max(1, min(_MAX_LOCKSTEP_BATCH, math.ceil(todo.size / workers)))
            batches = _batches_of(todo, batch_size)
        elif workers == 1:
            batch_size = max(1, min(_MAX_BATCH, math.ceil(todo.size / _BATCHES_PER_WORKER)))
            batches = _batches_of(todo, batch_size)
        else:
            batches = _guided_batches(todo, workers)
    else:
        batches = _batches_of(todo, batch_size)
    parts: list[list[xr.Dataset]] = []
    if not batches:
        return parts
    with _progress_bar(progress, n_trials, n_trials - todo.size) as advance:
        for part in _run_batches(
            designs,
            scenario,
            batches,
            random_seed,
            layouts,
            n_jobs=int(n_jobs),
            client=client,
            advance=advance,
        ):
            if save is not None:
                save(part)
            parts.append(part)
    return parts


def _workers(n_jobs: int) -> int:
    """Return the worker processes ``n_jobs`` asks for (-1: one per CPU)."""
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def _batches_of(todo: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Split the trials ``todo`` into batches of ``batch_size`` (the last one may be smaller)."""
    return [todo[start : start + batch_size] for start in range(0, todo.size, batch_size)]


def _guided_batches(todo: np.ndarray, workers: int) -> list[np.ndarray]:
    """Split the trials ``todo`` into batches that shrink as the run nears its end.

    Guided self-scheduling (Polychronopoulos and Kuck 1987): each batch takes
    ``1 / (_BATCHES_PER_WORKER * workers)`` of the trials not yet handed out, at most
    ``_MAX_BATCH`` and at least ``_MIN_BATCH``. A worker that is free takes the next batch, so
    the workers finish within about one small batch of each other; with batches of one size,
    one worker runs its last batch alone for up to a whole batch (for a design whose trials
    take a quarter of a second, 100 trials: 25 s of an idle core at the end of every run).
    """
    batches = []
    start = 0
    while start < todo.size:
        remaining = todo.size - start
        size = math.ceil(remaining / (_BATCHES_PER_WORKER * workers))
        size = max(_MIN_BATCH, min(_MAX_BATCH, size))
        batches.append(todo[start : start + size])
        start += size
    return batches


def _lockstep_design(
    design: Design, scenario: Scenario, layout: _Layout
) -> tuple[CountRuleDesign, LevelScenario] | None:
    """Return the design and scenario as the count-rule pair its trials run in lockstep as.

    None for a design run in time (with a backfill), one without the count capabilities, or a
    scenario that does not answer for its dose levels.
    """
    counts = None if layout.timed else _count_design(design)
    if (
        counts is not None
        and isinstance(scenario, LevelScenario)
        and _counts_suffice(counts, scenario)
    ):
        return counts, scenario
    return None


def _trial_seeds(random_seed: int, trials: np.ndarray) -> list[np.random.SeedSequence]:
    """Return child ``i`` of ``SeedSequence(random_seed)`` for every trial ``i`` of ``trials``.

    ``SeedSequence(random_seed).spawn(n)[i]`` is ``SeedSequence(random_seed, spawn_key=(i,))``
    whatever ``n``: a batch makes its own children from the seed and its trials' numbers, so
    neither the whole run's children nor a batch's travel to a worker (pickling a thousand
    SeedSequences cost this process more than a batch of a count design took to run).
    """
    return [np.random.SeedSequence(random_seed, spawn_key=(int(i),)) for i in trials]


def _run_batch(
    designs: Sequence[Design],
    scenario: Scenario,
    trials: np.ndarray,
    random_seed: int,
    layouts: Sequence[_Layout],
    advance: Callable[[int], None] | None = None,
) -> list[xr.Dataset]:
    """Run the trials of one batch for every design: in lockstep if counts suffice, else in turn.

    A design with a backfill runs in time, trial by trial, whatever its rule. The garbage
    collector runs rarely meanwhile (`dosezoo.garbage`): the posteriors a design memoises by
    count state live on, and walking them at every collection cost up to a fifth of a run.
    """
    with rare_collections():
        return _run_batch_of(designs, scenario, trials, random_seed, layouts, advance)


def _run_batch_of(
    designs: Sequence[Design],
    scenario: Scenario,
    trials: np.ndarray,
    random_seed: int,
    layouts: Sequence[_Layout],
    advance: Callable[[int], None] | None,
) -> list[xr.Dataset]:
    seeds = _trial_seeds(random_seed, trials)
    parts: dict[int, xr.Dataset] = {}
    in_turn = []
    for k, (design, layout) in enumerate(zip(designs, layouts, strict=True)):
        lockstep = _lockstep_design(design, scenario, layout)
        if lockstep is not None:
            parts[k] = _run_count_batch(*lockstep, trials, seeds, layout)
        else:
            in_turn.append(k)
    if in_turn:
        ran = _run_trials_batch(
            [designs[k] for k in in_turn],
            scenario,
            trials,
            seeds,
            [layouts[k] for k in in_turn],
            advance,
        )
        parts.update(zip(in_turn, ran, strict=True))
    elif advance is not None:
        advance(len(seeds))
    return [parts[k] for k in range(len(designs))]


def _run_batch_in_worker(
    designs: Sequence[Design],
    scenario: Scenario,
    trials: np.ndarray,
    random_seed: int,
    layouts: Sequence[_Layout],
) -> list[xr.Dataset]:
    """`_run_batch` in a worker process: one BLAS thread unless the user chose otherwise."""
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")
    return _run_batch(designs, scenario, trials, random_seed, layouts)


def _shipped(what: str, digest: str, shipped: bytes) -> object:
    """Return ``what`` (``"designs"`` or ``"scenario"``) of the run, unpickled once per worker.

    Only the latest of each is kept: a worker runs one simulation at a time.
    """
    kept = _WARM[what]
    if digest not in kept:
        kept.clear()
        kept[digest] = pickle.loads(shipped)
    return kept[digest]


def _run_shipped_batch(
    designs: tuple[str, bytes],
    scenario: tuple[str, bytes],
    trials: np.ndarray,
    random_seed: int,
    layouts: Sequence[_Layout],
) -> list[xr.Dataset]:
    """`_run_batch_in_worker` on the pickled designs and scenario, each ``(digest, pickle)``."""
    return _run_batch_in_worker(
        _shipped("designs", *designs),  # type: ignore[arg-type]
        _shipped("scenario", *scenario),  # type: ignore[arg-type]
        trials,
        random_seed,
        layouts,
    )


def _pickled(value: object) -> tuple[str, bytes]:
    """Return ``value`` pickled by cloudpickle (as loky would) with the digest of its pickle."""
    import cloudpickle  # a dependency of joblib

    shipped = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.blake2b(shipped, digest_size=16).hexdigest(), shipped


def _run_batches(
    designs: tuple[Design, ...],
    scenario: Scenario,
    batches: Sequence[np.ndarray],
    random_seed: int,
    layouts: tuple[_Layout, ...],
    *,
    n_jobs: int,
    client: "Client | None",
    advance: Callable[[int], None],
) -> Iterator[list[xr.Dataset]]:
    """Yield every batch's Datasets (one per design) as soon as it is finished, in any order."""
    if client is not None:
        from distributed import as_completed

        designs_future, scenario_future = client.scatter(
            [designs, scenario], broadcast=True, hash=False
        )
        futures = [
            client.submit(
                _run_batch_in_worker,
                designs_future,
                scenario_future,
                trials,
                random_seed,
                layouts,
                pure=False,
            )
            for trials in batches
        ]
        try:
            for future in as_completed(futures):
                part = future.result()
                advance(part[0].sizes["trial"])
                yield part
        finally:
            client.cancel(futures)
    elif n_jobs == 1:
        for trials in batches:
            yield _run_batch(designs, scenario, trials, random_seed, layouts, advance)
    else:
        from joblib.externals.loky import get_reusable_executor

        # Pickled once here, not once per batch (by cloudpickle, so a design defined in a
        # script travels by value; designs sharing a model still share it in the worker), the
        # designs apart from the scenario. loky's reusable executor is kept by every call with
        # as many workers, so its workers, their imports and their unpickled designs stay warm
        # across batches, runs and scenarios. Its futures are waited on: joblib's Parallel
        # polls for finished batches every 10 ms, long beside a batch of count trials.
        shipped_designs, shipped_scenario = _pickled(designs), _pickled(scenario)
        executor = get_reusable_executor(
            # One worker per CPU even for a run of fewer batches: resizing the executor would
            # stop warm workers (and start cold ones for the next run). Beyond the CPUs, no
            # more workers than batches, whatever n_jobs asks.
            max_workers=min(_workers(n_jobs), max(len(batches), os.cpu_count() or 1)),
            timeout=_IDLE_WORKER_SECONDS,
            env={name: os.environ.get(name, "1") for name in _BLAS_THREADS},
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        running = [
            executor.submit(
                _run_shipped_batch, shipped_designs, shipped_scenario, trials, random_seed, layouts
            )
            for trials in batches
        ]
        try:
            for future in concurrent.futures.as_completed(running):
                part = future.result()
                advance(part[0].sizes["trial"])
                yield part
        except BaseException:
            # An error, an interrupt or a failed save: the batches still running are stopped
            # too (their workers killed; the next run starts new ones), not left to finish.
            # Waited for, so that loky releases its queues' semaphores: without, its resource
            # tracker warned of a leaked one after 3 interrupted runs in 28 (1 in 65 with).
            _forget_queued_batches(executor)
            executor.shutdown(wait=True, kill_workers=True)
            raise


def _forget_queued_batches(executor: object) -> None:
    """Empty the queue of batches that loky has not yet handed to a worker.

    loky's shutdown with ``kill_workers`` drops the work items of those batches but leaves
    their ids in the executor's queue; its manager thread then looked one up and printed a
    ``KeyError`` traceback after every interrupted parallel run (loky 3.6). Emptied first,
    the queue holds no id of a dropped item; the items themselves still end as loky ends them.
    """
    queued = getattr(executor, "_work_ids", None)
    while queued is not None:
        try:
            queued.get_nowait()
        except queue.Empty:
            return


def _exit_with_parent(parent: int) -> None:
    """In a local worker process: exit once ``parent``, the process that started it, has died.

    A run killed by SIGKILL (which no handler sees) left its loky workers behind for good,
    blocked writing a finished batch into the dead run's pipe or waiting for the lock of it,
    each holding the memory of a whole worker and the dead run's output pipes (a caller waiting
    for them to close hung). A daemon thread notices that the worker was handed to another
    parent and ends the process; blocked system calls release the interpreter, so it runs. The
    parent's pid comes from the parent: a worker still starting up when its parent died has
    already been handed to another one when this runs.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_SECONDS)
        # Nobody is left to take the worker's results; there is nothing to clean up.
        os._exit(1)

    threading.Thread(target=watch, name="dosezoo-exit-with-parent", daemon=True).start()


@contextmanager
def _progress_bar(show: bool, total: int, completed: int) -> Iterator[Callable[[int], None]]:
    """Show a bar over finished trials; yield the function that advances it."""
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show) as bar:
        task = bar.add_task("simulating trials", total=total, completed=completed)
        yield lambda n: bar.advance(task, n)
