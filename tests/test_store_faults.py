"""Fault injection on the result store of `simulate`: kills, concurrent writers, damaged batches.

Each fault is followed by a resumed run, which must return exactly the result of an
uninterrupted run (no trial lost, none duplicated), never merge a damaged batch, and name every
batch it dropped. Runs use the 3+3 design, whose trials run in lockstep in milliseconds. A
killed run is a forked child that sends itself SIGKILL at a chosen point of the store's work
(before a rename, half-way through a write) or after a random delay; the short profile kills at a
few points, the long one (``make test-slow``) at many.
"""

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr

from dosezoo.designs.three_plus_three import three_plus_three_design
from dosezoo.errors import DamagedBatchWarning, StoreLockedError
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import layout as layout_module
from dosezoo.simulate import simulate
from dosezoo.simulate import store as store_module
from dosezoo.simulate.netcdf import CHECKSUMS, DIGEST_TAG, HDF5_SIGNATURE, USER_BLOCK

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
P_TRUE = (0.05, 0.12, 0.30, 0.45, 0.60)
N_TRIALS = 60
BATCH = 5
SEED = 7

DESIGN = three_plus_three_design(LEVELS)
SCENARIO = BinaryToxicityScenario(LEVELS, P_TRUE, 0.3, planned_sample_size=30)
FORK = multiprocessing.get_context("fork")


@pytest.fixture(scope="module")
def reference() -> xr.Dataset:
    return simulate(DESIGN, SCENARIO, N_TRIALS, random_seed=SEED, progress=False)


def read_by_xarray(path: Path) -> xr.Dataset:
    """The results file as xarray reads it, less the checksums of its values (one per variable)."""
    loaded = xr.load_dataset(path, engine="h5netcdf")
    recorded = json.loads(loaded.attrs.pop(CHECKSUMS))
    assert sorted(recorded) == sorted(map(str, loaded.variables))
    return loaded


def _run(path: Path, scenario=SCENARIO, **options) -> xr.Dataset:
    options = {"batch_size": BATCH, "progress": False, "save_every": 0} | options
    return simulate(DESIGN, scenario, N_TRIALS, random_seed=SEED, path=path, **options)


def _resume(path: Path) -> tuple[xr.Dataset, list[str]]:
    """Run to the end; return the result and the messages of the batches it dropped."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedBatchWarning)
        result = _run(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, DamagedBatchWarning)]
    return result, messages


def _batches(path: Path) -> list[Path]:
    return sorted(path.with_name(f"{path.name}.parts").glob("trials-*"))


class _Paused(BinaryToxicityScenario):
    """The scenario (same description) that waits on ``gate`` once ``after`` batches scored."""

    def __init__(self, gate: threading.Event, reached: threading.Event, after: int) -> None:
        super().__init__(LEVELS, P_TRUE, 0.3, planned_sample_size=30)
        object.__setattr__(self, "_gate", (gate, reached, [after]))

    def metrics_at_counts(self, n, y, selected, treated, **outcomes):
        gate, reached, left = self._gate
        if left[0] == 0:
            reached.set()
            gate.wait(60)
        left[0] -= 1
        return super().metrics_at_counts(n, y, selected, treated, **outcomes)


# --------------------------------------------------------------------------- regressions


def test_a_second_writer_is_refused_naming_the_path_and_the_holder(reference, tmp_path):
    path = tmp_path / "sim.nc"
    gate, reached = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        outcome["first"] = _run(path, scenario=_Paused(gate, reached, after=2))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert reached.wait(60)
        with pytest.raises(StoreLockedError) as refused:
            _run(path)
        message = str(refused.value)
        assert repr(str(path)) in message and f"process {os.getpid()}" in message
    finally:
        gate.set()
        thread.join(60)
    xr.testing.assert_identical(outcome["first"], reference)
    xr.testing.assert_identical(read_by_xarray(path), reference)


@pytest.mark.parametrize("damage", ["zeroed", "truncated", "foreign"])
def test_a_damaged_batch_is_named_and_run_again(reference, tmp_path, damage):
    path = tmp_path / "sim.nc"
    _kill_after_batches(path, 4)
    victim = _batches(path)[1]
    content = victim.read_bytes()
    if damage == "zeroed":
        victim.write_bytes(bytes(len(content)))
    elif damage == "truncated":
        victim.write_bytes(content[: len(content) // 2])
    else:  # the same batch of another simulation (another seed), under the same name
        foreign = _foreign_batch(tmp_path, victim.name)
        assert foreign != content
        victim.write_bytes(foreign)
    result, messages = _resume(path)
    xr.testing.assert_identical(result, reference)
    assert len(messages) == 1 and repr(victim.name) in messages[0]


def test_saving_opens_hdf5_once_per_run(tmp_path, monkeypatch):
    opened: list[object] = []
    original = h5py.File.__init__

    def counted(self, name, *args, **kwargs):
        opened.append(name)
        original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "__init__", counted)
    _run(tmp_path / "sim.nc")  # 12 batches
    assert len(opened) == 1


# --------------------------------------------------------------------------- helpers


def _foreign_batch(tmp_path: Path, name: str) -> bytes:
    """The bytes of batch ``name`` of the same design run with another seed."""
    other = tmp_path / "foreign.nc"
    _kill_after_batches(other, N_TRIALS // BATCH - 1, random_seed=SEED + 1)
    return (other.with_name(f"{other.name}.parts") / name).read_bytes()


def _child(path: Path, mode: str, count: int, random_seed: int) -> None:
    """Run in a forked child: SIGKILL (``terminate``: SIGTERM) itself at the ``count``-th event."""
    left = [count]

    def maybe_die() -> None:
        left[0] -= 1
        if left[0] < 0:
            os.kill(os.getpid(), signal.SIGKILL)

    if mode == "batch":  # after `count` batches are saved and recorded
        save = store_module._Store.save

        def saving(self, part):
            maybe_die()
            save(self, part)

        store_module._Store.save = saving  # type: ignore[method-assign]
    elif mode == "replace":  # before the store renames a file it wrote
        replace = os.replace

        def dying(source, target):
            maybe_die()
            return replace(source, target)

        os.replace = dying
    elif mode == "torn":  # half-way through writing a file
        replace = os.replace

        def tearing(source, target):
            if left[0] == 0:
                os.truncate(source, os.stat(source).st_size // 2)
            maybe_die()
            return replace(source, target)

        os.replace = tearing
    elif mode == "time":  # after `count` milliseconds
        threading.Timer(count / 1000, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    elif mode == "terminate":  # SIGTERM once `count` batches were handed to the store
        save = store_module._Store.save
        handed = [0]

        def terminating(self, part):
            save(self, part)
            handed[0] += 1
            if handed[0] == count:
                os.kill(os.getpid(), signal.SIGTERM)

        store_module._Store.save = terminating  # type: ignore[method-assign]
    simulate(
        DESIGN,
        SCENARIO,
        N_TRIALS,
        random_seed=random_seed,
        path=path,
        batch_size=BATCH,
        progress=False,
        # terminate: an hour between saves, so every finished batch is held until the exit
        save_every=3600 if mode == "terminate" else 0,
    )
    os._exit(0)


def _killed(path: Path, mode: str, count: int, random_seed: int = SEED) -> int:
    process = FORK.Process(target=_child, args=(path, mode, count, random_seed))
    process.start()
    process.join(120)
    assert process.exitcode is not None
    return process.exitcode


def _kill_after_batches(path: Path, count: int, random_seed: int = SEED) -> None:
    assert _killed(path, "batch", count, random_seed) == -signal.SIGKILL
    assert len(_batches(path)) == count


def _check_kill_and_resume(reference: xr.Dataset, path: Path, mode: str, count: int) -> None:
    code = _killed(path, mode, count)
    assert code in (0, -signal.SIGKILL)
    saved = _batches(path)
    result, messages = _resume(path)
    xr.testing.assert_identical(result, reference)
    xr.testing.assert_identical(read_by_xarray(path), reference)
    assert not path.with_name(f"{path.name}.parts").exists()
    # Every dropped batch is named; only a batch the kill left unrecorded can be dropped.
    for message in messages:
        assert any(repr(batch.name) in message for batch in saved), message
    assert len(messages) <= 1


# --------------------------------------------------------------------------- kills


def _kill_points(n: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    batches = N_TRIALS // BATCH
    modes = {
        "batch": batches,
        "torn": 2 * batches + 1,
        "replace": 2 * batches + 1,
        "time": 3000,
    }
    return [(mode, rng.randrange(modes[mode])) for mode in rng.choices(list(modes), k=n)]


def test_sigterm_saves_the_finished_batches_then_exits_143(reference, tmp_path):
    # SIGTERM (kill, a job scheduler's time limit) ended the process at once: the finished
    # batches held for the next save were lost, however long the run had been going.
    path = tmp_path / "sim.nc"
    assert _killed(path, "terminate", 3) == 128 + signal.SIGTERM
    # the three batches held, saved in one file: trials-000000000-000000014.batch
    (saved,) = _batches(path)
    assert saved.name == f"trials-{0:09d}-{3 * BATCH - 1:09d}.batch"
    result, messages = _resume(path)
    xr.testing.assert_identical(result, reference)
    assert not messages


#: A run on 2 worker processes whose trials take seconds (a slowed scenario, run trial by trial).
SLOW_PARALLEL_RUN = """
import time

from dosezoo.designs.three_plus_three import three_plus_three_design
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate


class Slow:
    outcomes = ("dlt",)

    def __init__(self, inner):
        self.inner = inner

    def respond(self, doses, rng):
        time.sleep(0.2)
        return self.inner.respond(doses, rng)

    def empty_data(self):
        return self.inner.empty_data()

    def trial_metrics(self, data, recommendation):
        return self.inner.trial_metrics(data, recommendation)

    def describe(self):
        return self.inner.describe()


levels = (10.0, 20.0, 40.0, 80.0, 160.0)
truth = BinaryToxicityScenario(levels, (0.05, 0.12, 0.3, 0.45, 0.6), 0.3, planned_sample_size=30)
scenario = Slow(truth)
simulate(three_plus_three_design(levels), scenario, 40, random_seed=1, n_jobs=2, batch_size=2)
"""


def _workers_of(pid: int) -> list[int]:
    """The loky worker processes whose parent is ``pid``."""
    workers = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if parent == pid and b"popen_loky" in command:
            workers.append(int(entry.name))
    return workers


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _parallel_run_with_workers(
    tmp_path: Path, running: float
) -> tuple[subprocess.Popen, list[int], Path]:
    """Start SLOW_PARALLEL_RUN; return it, its 2 workers and its stderr file.

    Returned ``running`` seconds after both workers exist.
    """
    script = tmp_path / "run.py"
    script.write_text(SLOW_PARALLEL_RUN)
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        run = subprocess.Popen(
            [sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 120
        while len(workers := _workers_of(run.pid)) < 2 and time.monotonic() < deadline:
            assert run.poll() is None, errors.read_text()
            time.sleep(0.1)
        time.sleep(running)
        assert run.poll() is None, errors.read_text()
    except BaseException:
        run.kill()
        run.wait()
        raise
    assert len(workers) == 2
    return run, workers, errors


def _workers_left(workers: list[int]) -> list[int]:
    """The ``workers`` still running after up to 30 s (killed, so that no test leaves one)."""
    deadline = time.monotonic() + 30
    while any(map(_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _running(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("running", [0.0, 1.0], ids=["starting-up", "running-batches"])
def test_a_killed_parallel_run_leaves_no_worker_behind(tmp_path, running):
    # SIGKILL, which no handler sees, left both loky workers blocked on the dead run's pipes,
    # for good: each with a worker's memory, and the run's output pipes held open. Killed while
    # its workers still start up (importing, loading kernels), or once they run batches.
    run, workers, _ = _parallel_run_with_workers(tmp_path, running)
    run.kill()
    run.wait()
    assert not _workers_left(workers)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("running", [0.5, 1.5])
def test_an_interrupted_parallel_run_reports_the_interrupt_alone(tmp_path, running):
    # Ctrl-C on a run with batches still queued: loky's manager thread also printed a KeyError
    # traceback, looking up a batch its shutdown had dropped (in about 3 runs of 5; two
    # moments of the interrupt, so that the race is seldom missed).
    run, workers, errors = _parallel_run_with_workers(tmp_path, running)
    run.send_signal(signal.SIGINT)
    try:
        run.wait(timeout=60)
    finally:
        run.kill()
    message = _without_resource_tracker_warnings(errors.read_text())
    assert message.rstrip().endswith("KeyboardInterrupt"), message
    assert "Exception in thread" not in message, message
    assert not _workers_left(workers)


def _without_resource_tracker_warnings(message: str) -> str:
    """``message`` without the UserWarnings of loky's resource tracker and their source lines.

    The tracker, a process of its own that outlives the run by a moment, may warn of a
    semaphore that a killed worker held (1 interrupted run in 65 here): loky's notice, not a
    traceback of the run's.
    """
    kept, lines = [], iter(message.splitlines())
    for line in lines:
        if "UserWarning: resource_tracker:" in line:
            next(lines, None)  # the warnings.warn(...) line that follows
            continue
        kept.append(line)
    return "\n".join(kept)


@pytest.mark.parametrize(
    ("mode", "count"), [("batch", 3), ("replace", 4), ("replace", 5), ("torn", 6)]
)
def test_kill_at_a_point_of_saving_then_resume(reference, tmp_path, mode, count):
    _check_kill_and_resume(reference, tmp_path / "sim.nc", mode, count)


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "count"), _kill_points(40, 20261202))
def test_kill_at_random_points_then_resume(reference, tmp_path, mode, count):
    _check_kill_and_resume(reference, tmp_path / "sim.nc", mode, count)


def test_repeated_kills_lose_and_duplicate_no_trial(reference, tmp_path):
    path = tmp_path / "sim.nc"
    for mode, count in [("batch", 2), ("replace", 3), ("torn", 2), ("batch", 1)]:
        _killed(path, mode, count)
    result, messages = _resume(path)
    xr.testing.assert_identical(result, reference)
    assert len(messages) <= 4


# --------------------------------------------------------------------------- concurrency


def _writer(path: Path, outcome: Path) -> None:
    """Run in a forked child: simulate, and write how it ended to ``outcome``."""
    try:
        simulate(
            DESIGN,
            SCENARIO,
            N_TRIALS,
            random_seed=SEED,
            path=path,
            batch_size=1,
            progress=False,
            save_every=0,
        )
        outcome.write_text("done")
    except StoreLockedError as error:
        outcome.write_text(f"refused: {error}")
    os._exit(0)


@pytest.mark.parametrize("n_writers", [pytest.param(2), pytest.param(4, marks=pytest.mark.slow)])
def test_concurrent_writers_one_wins_the_others_are_refused(reference, tmp_path, n_writers):
    path = tmp_path / "sim.nc"
    files = [tmp_path / f"outcome-{i}.txt" for i in range(n_writers)]
    writers = [FORK.Process(target=_writer, args=(path, file)) for file in files]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    outcomes = [file.read_text() for file in files]
    assert "done" in outcomes
    for outcome in outcomes:
        assert outcome == "done" or (
            outcome.startswith("refused: ") and repr(str(path)) in outcome and "process" in outcome
        )
    xr.testing.assert_identical(read_by_xarray(path), reference)


def test_lock_of_a_killed_run_is_released(reference, tmp_path):
    path = tmp_path / "sim.nc"
    _kill_after_batches(path, 2)
    started = time.perf_counter()
    result, messages = _resume(path)
    assert time.perf_counter() - started < 60
    xr.testing.assert_identical(result, reference)
    assert messages == []
    assert np.array_equal(result["trial"].values, np.arange(N_TRIALS))


def test_results_and_batches_of_other_source_are_refused_naming_it(tmp_path, monkeypatch):
    """A finished file, or saved batches, made by other dosezoo source (another version, or an
    edited one) belong to another simulation: never returned, never resumed."""
    finished, parts = tmp_path / "finished.nc", tmp_path / "parts.nc"
    with monkeypatch.context() as patch:
        patch.setattr(store_module, "source_digest", lambda: "0" * 64)
        assert _run(finished).attrs["source_sha256"] == "0" * 64
        _kill_after_batches(parts, 3)  # the forked child saves under the same digest
    for path in (finished, parts):
        with pytest.raises(ValueError, match=r"made by other dosezoo source.*source_sha256"):
            _run(path)
    assert len(_batches(parts)) == 3  # refused, not deleted


def test_the_source_digest_reads_every_module_and_data_file_and_nothing_else(tmp_path, monkeypatch):
    package = tmp_path / "fakepackage"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "module.py").write_text("x = 1\n")
    (package / "table.csv").write_text("a\n1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(layout_module, "_SOURCE_PACKAGES", ("fakepackage",))
    digest = layout_module.source_digest.__wrapped__
    first = digest()
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "module.cpython-312.pyc").write_bytes(b"compiled")
    (package / "notes.txt").write_text("not source")
    assert digest() == first
    (package / "sub" / "module.py").write_text("x = 2\n")
    assert digest() != first
    (package / "sub" / "module.py").write_text("x = 1\n")
    (package / "table.csv").write_text("a\n2\n")
    assert digest() != first
    assert (
        simulate(DESIGN, SCENARIO, 2, random_seed=SEED, progress=False).attrs["source_sha256"]
        == layout_module.source_digest()
    )


def test_a_failed_final_write_keeps_the_finished_trials_and_names_the_file(
    reference, tmp_path, monkeypatch
):
    # A full disk at the final netCDF write lost every trial held since the last save (all of
    # them with a long save_every), and the error named a removed temporary file.
    path = tmp_path / "run.nc"

    def full_disk(dataset, target, **options):
        raise OSError(28, f"Can't close file (filename = {target.name!r})")

    monkeypatch.setattr(store_module, "write_netcdf", full_disk)
    with pytest.raises(OSError, match=r"results could not be written .*run\.nc'"):
        _run(path, save_every=3600)
    assert not list(tmp_path.glob(".run.nc.*.tmp"))
    saved = [store_module._decode_batch(file.read_bytes()) for file in _batches(path)]
    assert sorted(np.concatenate([part["trial"].values for part in saved])) == list(
        range(N_TRIALS)
    )  # every finished trial was saved: the resumed run runs none again
    monkeypatch.undo()
    result, dropped = _resume(path)
    assert not dropped
    xr.testing.assert_identical(result.drop_attrs(), reference.drop_attrs())


def test_a_half_written_result_of_a_killed_run_is_removed_on_resume(reference, tmp_path):
    path = tmp_path / "run.nc"
    _kill_after_batches(path, 2)
    stale = tmp_path / ".run.nc.12345.0badcafe.tmp"  # a final write cut by SIGKILL
    stale.write_bytes(b"\x89HDF\r\n\x1a\n half")
    other = tmp_path / ".run.nc.x.12345.0badcafe.tmp"  # another path's ('run.nc.x')
    other.write_bytes(b"")
    result, _ = _resume(path)
    assert not stale.exists() and other.exists()
    xr.testing.assert_identical(result.drop_attrs(), reference.drop_attrs())


def test_refused_paths_leave_nothing_behind(tmp_path):
    # A refused run left '<path>.parts/lock' next to the user's file; a symbolic link as the
    # batch directory failed at the end of a finished run ('Not a directory').
    text = tmp_path / "notes.nc"
    text.write_text("my notes")
    with pytest.raises(ValueError, match="is not a netCDF file of results"):
        _run(text)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.nc"]
    (tmp_path / "filed.nc.parts").write_text("not a directory")
    with pytest.raises(ValueError, match=r"filed\.nc\.parts', where its batches are kept, is a"):
        _run(tmp_path / "filed.nc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "linked.nc.parts").symlink_to(elsewhere)
    with pytest.raises(ValueError, match=r"batch directory .*linked\.nc\.parts' is a symbolic"):
        _run(tmp_path / "linked.nc")


def test_a_file_where_the_path_needs_a_directory_is_named(tmp_path):
    # '-o A.nc/x.nc' with A.nc a file said "[Errno 20] Not a directory: 'A.nc/x.nc.parts'",
    # naming a batch directory the user never gave (an audit)
    (tmp_path / "A.nc").write_text("a file")
    for path in (tmp_path / "A.nc" / "x.nc", tmp_path / "A.nc" / "sub" / "x.nc"):
        with pytest.raises(ValueError, match=rf"'{tmp_path / 'A.nc'}' is a file, not a directory"):
            _run(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["A.nc"]


def test_a_path_whose_directory_cannot_be_made_is_named_not_retried_forever(tmp_path, monkeypatch):
    # Through a symbolic link to a missing directory (an unmounted disk), making the batch
    # directory raised FileExistsError, which the lock took for a race and retried forever.
    (tmp_path / "results").symlink_to(tmp_path / "unmounted")
    with pytest.raises(ValueError, match=r"'.*results' is a symbolic link to '.*unmounted'"):
        _run(tmp_path / "results" / "run.nc")
    attempts = []

    def refused(self, *args, **kwargs):
        attempts.append(self)
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(Path, "mkdir", refused)
    with pytest.raises(ValueError, match=r"batch directory .*run\.nc\.parts' cannot be made"):
        _run(tmp_path / "run.nc")
    assert len(attempts) == store_module._MAKE_ATTEMPTS


def test_a_foreign_file_with_array_attributes_is_refused_by_name(tmp_path):
    # numpy's "truth value of an array ... is ambiguous" named no file
    path = tmp_path / "foreign.nc"
    xr.Dataset({"x": ("t", [1.0])}, attrs={"random_seed": [1, 2]}).to_netcdf(
        path, engine="h5netcdf"
    )
    with pytest.raises(ValueError, match=r"foreign\.nc' holds a different simulation"):
        _run(path)


def test_the_end_of_a_run_races_with_a_waiting_run_safely(tmp_path, monkeypatch):
    # The finishing run removes the lock, then the directory: a waiting run could find the
    # directory gone when it opened the lock (FileNotFoundError), or recreate the lock before
    # the removal ('Directory not empty', raised by the run that had finished).
    store = store_module._Store(tmp_path / "run.nc", {})
    opened = []
    real_open = Path.open

    def open_after_removal(self, *args, **kwargs):
        if self.name == "lock" and not opened:
            opened.append(self)
            raise FileNotFoundError(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_after_removal)
    with store.locked():
        assert opened  # the first open failed and the lock was taken at the second
        monkeypatch.setattr(
            Path, "rmdir", lambda self: (_ for _ in ()).throw(OSError(39, "Directory not empty"))
        )
        store._remove_parts()  # the waiting run's new lock keeps the directory: no error


def test_loading_a_finished_file_leaves_a_new_runs_batches(reference, tmp_path, monkeypatch):
    # The finished file is loaded without the lock. A run that started on the path meanwhile
    # (the file moved away and back by hand) had its lock and batches removed by the loading
    # run, which then held no lock (an audit's race; the new run crashed on a missing batch).
    path = tmp_path / "run.nc"
    _run(path)
    parts = path.with_name(path.name + ".parts")
    real_load = store_module.load_netcdf

    def load_while_a_run_starts(file):
        parts.mkdir()
        (parts / "lock").write_text("12345")
        (parts / "trials-000000000-000000004.batch").write_bytes(b"a batch")
        return real_load(file)

    monkeypatch.setattr(store_module, "load_netcdf", load_while_a_run_starts)
    xr.testing.assert_identical(_run(path), reference)
    assert sorted(p.name for p in parts.iterdir()) == ["lock", "trials-000000000-000000004.batch"]


@pytest.mark.parametrize("variable", ["dose", "decision_stop_reason", "trial"])
def test_a_finished_file_damaged_later_is_refused(reference, tmp_path, variable):
    # HDF5 checks no raw data: bytes zeroed in a finished file's values read back as other,
    # normal-looking results, which a run on the path returned as its own (an audit).
    path = tmp_path / "run.nc"
    _run(path)
    with h5py.File(path, "r") as file:
        stored = file[variable].id
        offset, size = stored.get_offset(), stored.get_storage_size()
    with path.open("r+b") as stream:
        stream.seek(offset + size // 2)
        flipped = bytes(255 - byte for byte in stream.read(8))
        stream.seek(offset + size // 2)
        stream.write(flipped)
    damaged = r"run\.nc' is damaged: its bytes are not those dosezoo wrote"
    with pytest.raises(ValueError, match=damaged):
        _run(path)
    with pytest.raises(ValueError, match=damaged):
        store_module.load_netcdf(path)
    # Without the file's digest (a file written before it), the checksums name the variable.
    with path.open("r+b") as stream:
        stream.write(bytes(USER_BLOCK))
    by_name = rf"run\.nc' is damaged: the values of variable '{variable}' are not those dosezoo"
    with pytest.raises(ValueError, match=by_name):
        store_module.load_netcdf(path)


def test_a_byte_of_a_finished_file_damaged_anywhere_is_refused_before_it_is_parsed(tmp_path):
    # One flipped byte of the HDF5 metadata sent h5py into an endless loop, which no signal
    # stopped; a flip of an attribute (the metrics' names) went unseen (an audit).
    path = tmp_path / "run.nc"
    _run(path)
    intact = path.read_bytes()
    assert intact.startswith(DIGEST_TAG) and intact[USER_BLOCK:].startswith(HDF5_SIGNATURE)
    rng = np.random.default_rng(3)
    offsets = [len(DIGEST_TAG), USER_BLOCK, USER_BLOCK + 60, len(intact) - 1]
    offsets += sorted(rng.integers(USER_BLOCK, len(intact), size=12))
    for offset in offsets:
        damaged = bytearray(intact)
        damaged[offset] ^= 0x10
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="is damaged: its bytes are not those"):
            store_module.load_netcdf(path)
    path.write_bytes(intact)
    assert store_module.load_netcdf(path).sizes["trial"] == N_TRIALS


def test_a_file_made_from_the_results_by_xarray_loads(tmp_path):
    # xarray keeps the checksums' attribute on a subset of the trials saved again: its record
    # no longer describes the file, which loads unverified
    path, subset = tmp_path / "run.nc", tmp_path / "subset.nc"
    _run(path)
    loaded = xr.load_dataset(path, engine="h5netcdf")
    loaded.isel(trial=slice(0, 10)).drop_encoding().to_netcdf(subset, engine="h5netcdf")
    assert store_module.load_netcdf(subset).sizes["trial"] == 10


def test_a_results_file_without_checksums_still_loads(reference, tmp_path):
    # written by another tool (xarray), or by dosezoo before the checksums
    path = tmp_path / "plain.nc"
    store_module.write_netcdf(reference, path)
    xr.testing.assert_identical(store_module.load_netcdf(path), reference)


def _patient_writer(path: Path, outcome: Path) -> None:
    """Run in a forked child: simulate, retrying while another run holds the path."""
    try:
        while True:
            try:
                _run(path)
                break
            except StoreLockedError:
                time.sleep(0.001)
        outcome.write_text("done")
    except BaseException as error:  # what the test reports
        outcome.write_text(f"{type(error).__name__}: {error}")
    os._exit(0)


@pytest.mark.parametrize("rounds", [pytest.param(3), pytest.param(30, marks=pytest.mark.slow)])
def test_runs_waiting_on_a_path_finish_or_load_the_result(reference, tmp_path, rounds):
    # A run waiting on the path met the end of the run that held it: the lock's directory gone
    # at open, 'Directory not empty' raised by the finished run, or its directory removed.
    for round_ in range(rounds):
        path = tmp_path / f"run{round_}.nc"
        files = [tmp_path / f"outcome-{round_}-{i}.txt" for i in range(3)]
        writers = [FORK.Process(target=_patient_writer, args=(path, file)) for file in files]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(120)
        assert [file.read_text() for file in files] == ["done"] * 3
        xr.testing.assert_identical(read_by_xarray(path), reference)


def test_a_finished_result_loads_without_taking_the_lock(reference, tmp_path, monkeypatch):
    # A finished result in a read-only directory could not be loaded: the lock's directory
    # was made first ('Read-only file system').
    path = tmp_path / "run.nc"
    _run(path)

    def read_only(self):
        raise OSError(30, "Read-only file system", str(self.parts_dir))

    monkeypatch.setattr(store_module._Store, "locked", read_only)
    result = _run(path)
    xr.testing.assert_identical(result.drop_attrs(), reference.drop_attrs())
    assert not path.with_name("run.nc.parts").exists()
