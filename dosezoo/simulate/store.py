"""The result store of a simulation: saved batches, their manifest, a lock, resumption.

With ``path``, `dosezoo.simulate.simulate` saves finished batches of trials in the directory
``<path>.parts``, so a run that was killed resumes where it stopped: only the missing trials
are run. A finished batch is saved at once when ``save_every`` seconds have passed since the
last save, with the batches held since in the same file; so a kill loses at most about
``save_every`` seconds of finished work, and a design whose batches take milliseconds does not
pay a file per batch. The store keeps four promises:

- **One writer.** A run holds an exclusive lock (``flock``) on ``<path>.parts/lock`` from its
  start to its end; a second run on the same path is refused at once with `StoreLockedError`,
  naming the path and the process that holds it. The lock dies with its process, so a killed
  run never leaves a stale lock.
- **Nothing incomplete.** A batch file (one or more finished batches) is written to a
  temporary name unique to its process, then renamed to ``trials-<first>-<last>.batch``
  (its lowest and highest trial); only then is its SHA-256 checksum
  recorded, as one line appended to ``manifest.jsonl`` (whose first line is the simulation's
  fingerprint). A kill at any point leaves either a recorded, complete batch or nothing the
  next run will use (a batch without its line, or a torn last line, is not used).
- **Nothing damaged or foreign merged.** On resume, every batch is checked against its recorded
  checksum *before* it is parsed; a batch that is missing from the manifest, whose checksum
  differs (zeroed, truncated, overwritten, copied from another run) or whose trials overlap
  another's is reported by file name with a `DamagedBatchWarning`, removed, and its trials are
  run again. The manifest carries the simulation's fingerprint (the run settings, the
  descriptions of the design and the scenario, and the digest of dosezoo's source,
  `dosezoo.simulate.layout.source_digest`): a store, or a finished file, of another
  simulation, or of the same one run by other source (another version, an edited one), is
  refused.
- **Cheap.** A batch is a JSON header and the raw bytes of its arrays (no HDF5, no pickle), so
  saving costs a copy; the netCDF file ``path`` is written once, at the end, in one pass
  (`dosezoo.simulate.netcdf`: the file xarray's ``to_netcdf`` would write, each HDF5 object
  created once).
"""

import errno
import fcntl
import glob
import hashlib
import itertools
import json
import numbers
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import xarray as xr

from dosezoo.errors import DamagedBatchWarning, StoreLockedError
from dosezoo.protocols import Design, Scenario
from dosezoo.simulate.layout import AttrValue, _join, _versions, source_digest
from dosezoo.simulate.netcdf import is_netcdf4, load_netcdf, write_netcdf

#: The run settings and the source that made the results (`source_digest`).
_RUN_KEYS = ("random_seed", "n_trials", "sample_size", "cohort_size", "source_sha256")
#: Attributes of the fingerprint besides the run keys: both descriptions and the versions of
#: the packages that shape the results (a batch made under other versions is not merged).
_FINGERPRINT_PREFIXES = ("design_", "scenario_", "version_")
_BATCH_GLOB = "trials-*"
_MANIFEST = "manifest.jsonl"
_LOCK = "lock"
#: Tries to make the batch directory: a run that finishes removes it, and another may be
#: making it again at that moment; a path that fails this often cannot be made.
_MAKE_ATTEMPTS = 100
_META = "__meta__"


def _attr_value(value: object, name: str) -> AttrValue:
    """Convert a described parameter to a netCDF-safe attribute value."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{name} must be a str, int, float, bool or None; got {value!r}")


def _fingerprint(design: Design, scenario: Scenario, run: dict[str, int]) -> dict[str, AttrValue]:
    """Attributes that identify a simulation: run settings, source, versions, descriptions."""
    attrs: dict[str, AttrValue] = {**run, "source_sha256": source_digest(), **_versions()}
    for prefix, described in (("design", design.describe()), ("scenario", scenario.describe())):
        for key, value in described.items():
            attrs[f"{prefix}_{key}"] = _attr_value(value, f"{prefix}.describe()[{key!r}]")
    return attrs


def _same_value(a: AttrValue, b: AttrValue) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    # NaN equals NaN; a stored array (a foreign file's attribute) equals no scalar
    return bool(np.array_equal(a, b, equal_nan=True))


def _check_fingerprint(attrs: dict, fingerprint: dict[str, AttrValue], path: Path) -> None:
    """Raise ValueError if stored attributes belong to another simulation."""
    stored = {
        key: value.item() if isinstance(value, np.generic) else value
        for key, value in attrs.items()
        if key in _RUN_KEYS or key.startswith(_FINGERPRINT_PREFIXES)
    }
    differences = [
        f"{key}: stored {stored.get(key, 'nothing')!r}, now {fingerprint.get(key, 'nothing')!r}"
        for key in dict.fromkeys([*stored, *fingerprint])
        if key not in stored
        or key not in fingerprint
        or not _same_value(stored[key], fingerprint[key])
    ]
    if differences:
        source = (
            ": it was made by other dosezoo source (another version, or an edited one)"
            if not _same_value(
                stored.get("source_sha256", ""), fingerprint.get("source_sha256", "")
            )
            else ""
        )
        raise ValueError(
            f"path {str(path)!r} holds a different simulation{source} "
            f"({'; '.join(differences)}); choose another path or delete it"
        )


def _temporary(target: Path) -> Path:
    """Return a temporary name next to ``target`` that no other process uses."""
    return target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


def _write_bytes_atomically(payload: bytes, target: Path) -> None:
    """Write ``payload`` under a unique temporary name, then rename it to ``target``.

    A killed process cannot tear a file it has written (the kernel keeps it), so the rename
    makes the write atomic without an ``fsync``, which would cost more than the simulation; a
    file torn by a crash of the machine fails its checksum and is run again.
    """
    temporary = _temporary(target)
    try:
        temporary.write_bytes(payload)
        os.replace(temporary, target)
    except OSError as error:  # e.g. a full disk: name the file, not a temporary name
        raise OSError(error.errno, error.strerror or str(error), str(target)) from None
    finally:
        temporary.unlink(missing_ok=True)


def _write_netcdf_atomically(dataset: xr.Dataset, target: Path) -> None:
    """Write netCDF under a unique temporary name next to ``target``, then rename it."""
    temporary = _temporary(target)
    try:
        write_netcdf(dataset, temporary, checksums=True)
        os.replace(temporary, target)
    except OSError as error:  # HDF5 names the temporary file, removed below
        raise OSError(
            error.errno, f"the results could not be written ({error})", str(target)
        ) from None
    finally:
        temporary.unlink(missing_ok=True)


def _encode_batch(part: xr.Dataset) -> bytes:
    """Return a batch as bytes: a JSON header line, then the raw bytes of every array.

    The header gives each variable's dims, dtype, shape and byte offset, the coordinates'
    names and the attributes. Arrays of numbers and of fixed-width text are stored as they are
    in memory, so writing a batch is one copy (``np.savez`` costs a zip member per variable,
    HDF5 a dataset per variable, both more than the simulation of a batch of a count design).
    """
    variables: dict[str, dict[str, object]] = {}
    arrays: list[np.ndarray] = []
    offset = 0
    for name, variable in part.variables.items():
        values = np.ascontiguousarray(variable.values)
        if values.dtype.hasobject:
            raise TypeError(f"variable {name!r} of a batch holds Python objects")
        variables[str(name)] = {
            "dims": list(variable.dims),
            "dtype": values.dtype.str,
            "shape": list(values.shape),
            "offset": offset,
        }
        arrays.append(values.reshape(-1).view(np.uint8))
        offset += values.nbytes
    header = {"variables": variables, "coords": [str(c) for c in part.coords], "attrs": part.attrs}
    # join reads the arrays' own buffers: the payload is the only copy of the data.
    return b"".join([json.dumps(header).encode(), b"\n", *arrays])


def _decode_batch(payload: bytes) -> xr.Dataset:
    """Rebuild a batch from the bytes `_encode_batch` wrote."""
    end = payload.index(b"\n")
    header = json.loads(payload[:end])
    body = memoryview(payload)[end + 1 :]
    variables = {}
    for name, spec in header["variables"].items():
        dtype, shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        values = np.frombuffer(body, dtype=dtype, count=count, offset=spec["offset"])
        variables[name] = (tuple(spec["dims"]), values.reshape(shape).copy())
    coords = {name: variables.pop(name) for name in header["coords"]}
    return xr.Dataset(variables, coords=coords, attrs=header["attrs"])


def _holder(stream: IO[str]) -> str:
    """Return the process id written in a lock file, for a message."""
    stream.seek(0)
    text = stream.read().strip()
    return f"process {text}" if text.isdigit() else "another process"


class _Store:
    """The netCDF file of a simulation and the directory of its saved batches."""

    def __init__(
        self, path: Path, fingerprint: dict[str, AttrValue], save_every: float = 0.0
    ) -> None:
        if path.is_dir():
            raise ValueError(
                f"path {str(path)!r} is a directory; give the name of a netCDF file (.nc)"
            )
        self.path = path
        self.parts_dir = path.with_name(f"{path.name}.parts")
        self.fingerprint = fingerprint
        self.batches: dict[str, dict[str, object]] = {}
        self.save_every = save_every
        self.held: list[xr.Dataset] = []
        self.last_saved = time.monotonic()

    @contextmanager
    def locked(self) -> Iterator["_Store"]:
        """Hold the store's exclusive lock for the duration of the block.

        Raises
        ------
        StoreLockedError
            If another process holds it; the message names the path and that process.
        """
        if self.parts_dir.is_symlink():  # removing it at the end would fail
            raise ValueError(
                f"path {str(self.path)!r}: its batch directory {str(self.parts_dir)!r} is a "
                "symbolic link; remove the link (the batches are kept next to the results)"
            )
        for attempt in itertools.count(1):
            lock_path = self.parts_dir / _LOCK
            try:
                self.parts_dir.mkdir(parents=True, exist_ok=True)
                stream = lock_path.open("a+")
            except NotADirectoryError:
                # a file where the path needs a directory: name it, not the batch directory
                parent = next(
                    (p for p in self.path.parents if p.exists() and not p.is_dir()),
                    self.path.parent,
                )
                raise ValueError(
                    f"path {str(self.path)!r}: {str(parent)!r} is a file, not a directory; "
                    "choose another path"
                ) from None
            except (FileNotFoundError, FileExistsError) as error:
                if self.parts_dir.exists() and not self.parts_dir.is_dir():
                    raise ValueError(
                        f"path {str(self.path)!r}: {str(self.parts_dir)!r}, where its batches "
                        "are kept, is a file; move it away or choose another path"
                    ) from None
                dangling = next(
                    (p for p in self.parts_dir.parents if p.is_symlink() and not p.exists()),
                    None,
                )
                if dangling is not None:
                    raise ValueError(
                        f"path {str(self.path)!r}: {str(dangling)!r} is a symbolic link to "
                        f"{os.readlink(dangling)!r}, which does not exist; choose another path"
                    ) from None
                if attempt >= _MAKE_ATTEMPTS:
                    raise ValueError(
                        f"path {str(self.path)!r}: its batch directory {str(self.parts_dir)!r} "
                        f"cannot be made ({error.strerror}); choose another path"
                    ) from None
                # A run that finished removed the directory meanwhile (pathlib's mkdir reads
                # a directory made and removed under it as a file that exists): try again.
                continue
            try:
                fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(stream)
                stream.close()
                raise StoreLockedError(
                    f"path {str(self.path)!r} is in use by another simulation ({holder} holds "
                    f"{str(lock_path)!r}); wait for it to finish or choose another path"
                ) from None
            # The run that held the lock may have removed the directory meanwhile: lock the
            # file that is there now, not a removed one.
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                stream.close()
                continue
            if os.fstat(stream.fileno()).st_ino == current.st_ino:
                break
            stream.close()
        try:
            stream.seek(0)
            stream.truncate()
            stream.write(str(os.getpid()))
            stream.flush()
            yield self
        finally:
            self._remove_if_unused(stream, lock_path)
            stream.close()

    def _remove_if_unused(self, stream: IO[str], lock_path: Path) -> None:
        """Remove the batch directory if it holds nothing but this run's lock (a refused run's).

        Only while the lock file there is still this run's: once this run removed the
        directory (finish), a run waiting on the path may have made it again, with its lock.
        """
        try:
            if os.stat(lock_path).st_ino != os.fstat(stream.fileno()).st_ino:
                return
            names = {entry.name for entry in self.parts_dir.iterdir()}
        except FileNotFoundError:  # removed by finish or finished
            return
        if names == {_LOCK}:
            self._remove_parts()

    def finished(self, *, holding_lock: bool = True) -> xr.Dataset | None:
        """Load the finished file of this simulation, if there is one.

        Under the lock, or without it (``holding_lock`` False) when there was no batch
        directory (the file is then complete: it is written whole under another name, then
        renamed). Batches left by the run that finished the file are removed under the lock
        only: a batch directory that appeared meanwhile is another run's.
        """
        if not self.path.exists():
            return None
        if not is_netcdf4(self.path):
            raise ValueError(
                f"path {str(self.path)!r} exists and is not a netCDF file of results; "
                "choose another path or delete it"
            )
        try:
            finished = load_netcdf(self.path)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"path {str(self.path)!r} cannot be read as netCDF results ({error}); "
                "choose another path or delete it"
            ) from None
        _check_fingerprint(finished.attrs, self.fingerprint, self.path)
        if holding_lock and self.parts_dir.exists():
            self._remove_parts()
        return finished

    def _report(self, file: Path, problem: str) -> None:
        warnings.warn(
            f"simulation store {str(self.parts_dir)!r}: batch {file.name!r} {problem}; "
            "it is not used and its trials are run again",
            DamagedBatchWarning,
            stacklevel=4,
        )
        file.unlink(missing_ok=True)

    def _read_manifest(self) -> dict[str, dict[str, object]]:
        """Return the recorded batches, after checking the manifest is this simulation's.

        A line that is not a complete record (the last one, torn by a kill) records nothing.
        """
        manifest_path = self.parts_dir / _MANIFEST
        if not manifest_path.exists():
            return {}
        lines = manifest_path.read_bytes().split(b"\n")
        try:
            fingerprint = json.loads(lines[0])["fingerprint"]
            if not isinstance(fingerprint, dict):
                raise TypeError("not a fingerprint")
        except (ValueError, KeyError, TypeError):
            warnings.warn(
                f"simulation store {str(self.parts_dir)!r}: {_MANIFEST!r} is damaged; no batch "
                "is used and every trial is run again",
                DamagedBatchWarning,
                stacklevel=4,
            )
            return {}
        _check_fingerprint(fingerprint, self.fingerprint, self.path)
        batches: dict[str, dict[str, object]] = {}
        for line in lines[1:-1]:  # every complete line ends with a newline
            try:
                record = json.loads(line)
                batches[str(record["batch"])] = record
            except (ValueError, KeyError, TypeError):
                continue
        return batches

    def parts(self) -> list[xr.Dataset]:
        """Load the recorded, intact batches (under the lock); report and drop the others."""
        # Left by a killed run (its batches, or its final file half written): under the lock,
        # no run is writing them.
        # Only this path's temporary names (`_temporary`): another path's may be in use.
        own = re.compile(rf"\.{re.escape(self.path.name)}\.\d+\.[0-9a-f]{{8}}\.tmp")
        results = self.path.parent.glob(f".{glob.escape(self.path.name)}.*.tmp")
        stale = [*self.parts_dir.glob(".*.tmp"), *(f for f in results if own.fullmatch(f.name))]
        for file in stale:
            file.unlink(missing_ok=True)
        recorded = self._read_manifest()
        loaded: list[xr.Dataset] = []
        seen = np.zeros(0, dtype=np.int64)
        files = sorted(self.parts_dir.glob(_BATCH_GLOB))
        for file in files:
            entry = recorded.get(file.name)
            if entry is None:
                self._report(
                    file,
                    "is not recorded in the manifest (a run stopped before "
                    "recording it, or it comes from elsewhere)",
                )
                continue
            payload = file.read_bytes()
            if hashlib.sha256(payload).hexdigest() != entry.get("sha256"):
                self._report(
                    file,
                    f"is damaged (its SHA-256 checksum differs from the one "
                    f"recorded; {len(payload)} bytes)",
                )
                continue
            try:
                part = _decode_batch(payload)
                _check_fingerprint(part.attrs, self.fingerprint, file)
            except (ValueError, KeyError, TypeError) as error:
                self._report(file, f"cannot be read ({error})")
                continue
            trials = part["trial"].values
            if np.intersect1d(trials, seen).size:
                self._report(file, "holds trials another batch holds")
                continue
            seen = np.concatenate([seen, trials])
            self.batches[file.name] = entry
            loaded.append(part.drop_encoding())
        for name in sorted(set(recorded) - {file.name for file in files}):
            warnings.warn(
                f"simulation store {str(self.parts_dir)!r}: batch {name!r} is recorded but "
                "missing; its trials are run again",
                DamagedBatchWarning,
                stacklevel=3,
            )
        self._write_manifest()
        return loaded

    def _write_manifest(self) -> None:
        """Replace the manifest by the fingerprint and the batches kept."""
        lines = [{"fingerprint": self.fingerprint}, *self.batches.values()]
        text = "".join(json.dumps(line) + "\n" for line in lines)
        _write_bytes_atomically(text.encode(), self.parts_dir / _MANIFEST)

    def save(self, part: xr.Dataset) -> None:
        """Take a finished batch: save it with those held if ``save_every`` has passed."""
        self.held.append(part)
        if time.monotonic() - self.last_saved >= self.save_every:
            self.save_held()

    def save_held(self) -> None:
        """Save the batches held in one file: the complete file first, then its manifest line."""
        if not self.held:
            return
        part = _join(self.held)
        trials = part["trial"].values
        name = f"trials-{trials.min():09d}-{trials.max():09d}.batch"
        payload = _encode_batch(part)
        _write_bytes_atomically(payload, self.parts_dir / name)
        record: dict[str, object] = {"batch": name, "sha256": hashlib.sha256(payload).hexdigest()}
        self.batches[name] = record
        with (self.parts_dir / _MANIFEST).open("a") as manifest:
            manifest.write(json.dumps(record) + "\n")
        self.held = []
        self.last_saved = time.monotonic()

    def finish(self, result: xr.Dataset) -> None:
        """Write the combined results and remove the saved batches (under the lock)."""
        _write_netcdf_atomically(result, self.path)
        # Held batches are in the file now: nothing is left to save, should a later store of
        # the same run fail its final write.
        self.held = []
        self._remove_parts()

    def _remove_parts(self) -> None:
        """Remove the batch directory; its lock file last, while this run still holds it."""
        for entry in self.parts_dir.iterdir():
            if entry.name == _LOCK:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        (self.parts_dir / _LOCK).unlink(missing_ok=True)
        try:
            self.parts_dir.rmdir()
        except FileNotFoundError:
            pass
        except OSError as error:
            # A run waiting on the path made a new lock meanwhile: the directory is its now.
            if error.errno != errno.ENOTEMPTY:
                raise
