"""The netCDF file of a simulation, written in one pass (`dosezoo.simulate.netcdf`).

The file must be the one ``xarray.Dataset.to_netcdf(engine="h5netcdf")`` writes: every HDF5
object (dimension scales, variables, their types, fill values, layout and attributes) compared
one by one with xarray's file, and the data read back by xarray and by ``open_datatree``
identical, dtypes and encodings included.
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from dosezoo.cli import app
from dosezoo.designs.three_plus_three import three_plus_three_design
from dosezoo.scenarios import BinaryToxicityScenario
from dosezoo.simulate import simulate
from dosezoo.simulate.netcdf import (
    CHECKSUMS,
    _c_strings,
    _characters,
    load_netcdf,
    write_netcdf,
)

LEVELS = (10.0, 20.0, 40.0, 80.0, 160.0)
DESIGN = three_plus_three_design(LEVELS)
SCENARIO = BinaryToxicityScenario(
    LEVELS, (0.05, 0.12, 0.30, 0.45, 0.60), 0.3, planned_sample_size=30
)


def _type(type_id: h5py.h5t.TypeID) -> tuple:
    """Everything a reader can learn from an HDF5 datatype."""
    described: tuple = (type_id.get_class(), type_id.get_size())
    if isinstance(type_id, h5py.h5t.TypeStringID):
        described += (type_id.get_cset(), type_id.is_variable_str(), type_id.get_strpad())
    elif isinstance(type_id, h5py.h5t.TypeAtomicID):
        described += (type_id.get_order(),)
    if isinstance(type_id, h5py.h5t.TypeCompoundID):
        described += tuple(
            (
                type_id.get_member_name(i),
                type_id.get_member_offset(i),
                _type(type_id.get_member_type(i)),
            )
            for i in range(type_id.get_nmembers())
        )
    if isinstance(type_id, h5py.h5t.TypeVlenID):
        described += (_type(type_id.get_super()),)
    return described


def _attributes(owner, file: h5py.File) -> dict[str, tuple]:
    """An object's attributes by name: type, shape and value (references as paths)."""
    described = {}
    for name in owner.attrs:
        attribute = h5py.h5a.open(owner.id, name.encode())
        value = owner.attrs[name]
        if name == "DIMENSION_LIST":
            value = [[file[ref].name for ref in refs] for refs in value]
        elif name == "REFERENCE_LIST":
            value = [(file[ref].name, int(axis)) for ref, axis in value]
        elif name != "_NCProperties":
            value = np.asarray(value).tolist()
        described[name] = (_type(attribute.get_type()), attribute.shape, repr(value))
        if name == "_NCProperties":  # names the library that wrote the file: its length varies
            kind = _type(attribute.get_type())
            described[name] = (kind[0], kind[2:], value.startswith(b"version=2,"))
    return described


def _objects(path: Path) -> list[tuple]:
    """The file's objects in creation order, with everything a reader can see of each."""
    with h5py.File(path, "r") as file:
        plist = file.id.get_create_plist()
        objects: list[tuple] = [
            (
                "/",
                plist.get_link_creation_order(),
                plist.get_attr_creation_order(),
                list(file.attrs),  # attribute order: xarray's attrs keep it
                _attributes(file, file),
            )
        ]
        for name in file:
            dataset = file[name]
            dcpl = dataset.id.get_create_plist()
            data = dataset[()]
            objects.append(
                (
                    name,
                    _type(dataset.id.get_type()),
                    dataset.shape,
                    dataset.maxshape,
                    dataset.chunks,
                    dcpl.get_layout(),
                    dcpl.get_attr_creation_order(),
                    dcpl.get_obj_track_times(),
                    dcpl.fill_value_defined(),
                    dcpl.get_alloc_time(),
                    dcpl.get_fill_time(),
                    dcpl.get_nfilters(),
                    repr(dataset.fillvalue),
                    _attributes(dataset, file),
                    data.tolist() if data.dtype.kind == "O" else data.tobytes(),
                )
            )
    return objects


def _as_characters(dataset: xr.Dataset) -> dict[str, dict[str, str]]:
    """xarray's encoding of text data variables as character arrays, as the writer does."""
    return {
        str(name): {"dtype": "S1"}
        for name, variable in dataset.data_vars.items()
        if variable.dtype.kind == "U"
    }


def _both(dataset: xr.Dataset, folder: Path) -> tuple[Path, Path]:
    """Write ``dataset`` by xarray and by `write_netcdf`; return both paths."""
    by_xarray, by_us = folder / "xarray.nc", folder / "dosezoo.nc"
    dataset.to_netcdf(by_xarray, engine="h5netcdf", encoding=_as_characters(dataset))
    write_netcdf(dataset, by_us)
    return by_xarray, by_us


def _check_same_file(dataset: xr.Dataset, folder: Path) -> None:
    by_xarray, by_us = _both(dataset, folder)
    assert _objects(by_us) == _objects(by_xarray)
    theirs, ours = (xr.load_dataset(p, engine="h5netcdf") for p in (by_xarray, by_us))
    xr.testing.assert_identical(ours, theirs)
    assert list(ours.variables) == list(theirs.variables)
    assert list(ours.attrs) == list(theirs.attrs) == list(dataset.attrs)
    for name, variable in theirs.variables.items():
        assert ours[name].dtype == variable.dtype, name
        # repr: a NaN _FillValue is not equal to itself
        assert repr({**ours[name].encoding, "source": None}) == repr(
            {**variable.encoding, "source": None}
        )
    xr.testing.assert_identical(xr.open_datatree(by_us), xr.open_datatree(by_xarray))
    # Read back by load_netcdf, the text is numpy text again: the dataset as it was.
    loaded = load_netcdf(by_us)
    xr.testing.assert_identical(loaded, dataset)
    for name, variable in dataset.variables.items():
        assert loaded[name].dtype == variable.dtype, name


def _combination() -> xr.Dataset:
    """Every kind of variable the writer takes: drug combinations, strata, non-ASCII text."""
    rng = np.random.default_rng(3)
    trials, patients, decisions = 4, 3, 2
    text = np.array([["next", "recommend"], ["", "next"], ["ü ≥ 0.3", ""], ["a", "b"]])
    return xr.Dataset(
        {
            "dose": (("trial", "patient", "dose_column"), rng.random((trials, patients, 2))),
            "cohort": (("trial", "patient"), np.arange(12).reshape(trials, patients)),
            "site": (("trial", "patient"), np.array([["x", "yy", ""]] * trials)),
            "decision_kind": (("trial", "decision"), text),
            "decision_empty": (("trial", "decision"), np.full((trials, decisions), "")),
            "score32": (("trial", "decision"), rng.random((trials, decisions)).astype(np.float32)),
            "count32": (("trial",), np.arange(trials, dtype=np.int32)),
            "recommended_dose_stratum": (
                ("trial", "stratum", "dose_column"),
                np.where(rng.random((trials, 2, 2)) < 0.3, np.nan, 1.0),
            ),
            "metric": (("trial",), np.array([1.0, np.nan, 2.5, -0.0]), {"units": "patients"}),
        },
        coords={
            "trial": np.arange(trials),
            "dose_column": np.array(["drug_a", "drug_b"]),
            "stratum": np.array(["z1=0", "z1=1"]),
        },
        attrs={"design_name": "test", "n_trials": trials, "target": 0.3, "nan": np.nan, "e": ""},
    )


def test_a_simulations_file_is_xarrays_object_by_object(tmp_path):
    result = simulate(DESIGN, SCENARIO, 30, random_seed=2, progress=False)
    _check_same_file(result, tmp_path)


def test_every_kind_of_variable_is_written_as_xarray_writes_it(tmp_path):
    _check_same_file(_combination(), tmp_path)


def test_the_store_writes_the_file_the_report_reads(tmp_path):
    path = tmp_path / "sim.nc"
    result = simulate(DESIGN, SCENARIO, 40, random_seed=5, path=path, progress=False)
    by_xarray = tmp_path / "xarray.nc"
    result.to_netcdf(by_xarray, engine="h5netcdf", encoding=_as_characters(result))
    # the same file, with the checksums of its values as one more root attribute
    stored = _objects(path)
    name, links, attrs, order, attributes = stored[0]
    assert order[-1] == CHECKSUMS and CHECKSUMS in attributes
    stored[0] = (name, links, attrs, order[:-1], attributes | {CHECKSUMS: None})
    del stored[0][4][CHECKSUMS]
    assert stored == _objects(by_xarray)
    runner = CliRunner()
    reports = []
    for file in (path, by_xarray):
        outcome = runner.invoke(
            app, ["report", str(file), "--figure", str(tmp_path / "r.png"), "--json"]
        )
        assert outcome.exit_code == 0, outcome.output
        reports.append(json.loads(outcome.output))
    assert reports[0] == reports[1]


def test_a_run_creates_each_dataset_once_and_looks_none_up(tmp_path, monkeypatch):
    """h5netcdf (to_netcdf) creates a placeholder per dimension, then a coordinate's dataset
    again, and looks every variable up by path several times: the slow path of the final file.
    """
    created: list[bytes] = []
    opened: list[object] = []
    create, open_object = h5py.h5d.create, h5py.h5o.open

    def counted_create(parent, name, *args, **kwargs):
        created.append(name)
        return create(parent, name, *args, **kwargs)

    def counted_open(*args, **kwargs):
        opened.append(args)
        return open_object(*args, **kwargs)

    monkeypatch.setattr(h5py.h5d, "create", counted_create)
    monkeypatch.setattr(h5py.h5o, "open", counted_open)
    monkeypatch.setattr(xr.Dataset, "to_netcdf", lambda *a, **k: pytest.fail("to_netcdf used"))
    result = simulate(
        DESIGN, SCENARIO, 20, random_seed=1, path=tmp_path / "sim.nc", batch_size=4, progress=False
    )
    without_coordinate = [dim for dim in result.dims if dim not in result.variables]
    # and one dimension per length of the text's character arrays
    widths = {
        f"string{variable.str.len().max().item() or 1}"
        for name, variable in result.data_vars.items()
        if variable.dtype.kind == "U"
    }
    assert sorted(created) == sorted(
        name.encode() for name in [*result.variables, *without_coordinate, *widths]
    )
    assert opened == []


def test_ascii_text_is_handed_over_as_c_strings():
    values = np.array([["next", ""], ["recommend", "next"]])
    strings, addresses = _c_strings(values)
    assert addresses.shape == values.shape and addresses.dtype == np.uintp
    # each distinct non-empty element once, then one empty string for every empty element
    assert [bytes(row).rstrip(b"\0") for row in strings] == [b"next", b"recommend", b"next", b""]
    assert addresses[0, 1] == strings.ctypes.data + 3 * strings.shape[1]
    for text in (["ü"], ["\0a"], ["a\0b"]):  # not ASCII, or a NUL inside: left to h5py
        assert _c_strings(np.array(text)) is None


def test_text_is_written_as_its_utf8_bytes():
    ascii_text = np.array([["next", ""], ["recommend", "a"]], dtype="U20")
    characters = _characters(ascii_text)
    assert characters.dtype == np.dtype("S1") and characters.shape == (2, 2, len("recommend"))
    assert [b"".join(row) for row in characters.reshape(4, -1)] == [
        b"next",
        b"",
        b"recommend",
        b"a",
    ]
    assert _characters(np.array(["", ""])).shape == (2, 1)
    beyond = _characters(np.array(["≥ 0.3", "ü"]))
    assert beyond.shape == (2, len("≥ 0.3".encode()))
    assert b"".join(beyond[0]).decode() == "≥ 0.3"


def test_checksums_cover_every_kind_of_variable(tmp_path):
    # numbers, character arrays and variable-length text coordinates, beyond ASCII too
    dataset = _combination()
    plain, checked = tmp_path / "plain.nc", tmp_path / "checked.nc"
    write_netcdf(dataset, plain)
    write_netcdf(dataset, checked, checksums=True)
    xr.testing.assert_identical(load_netcdf(checked), load_netcdf(plain))
    with h5py.File(checked, "r") as file:
        recorded = json.loads(file.attrs[CHECKSUMS])
    assert sorted(recorded) == sorted(map(str, dataset.variables))
    assert recorded["dose"][1] == list(dataset["dose"].shape)


def test_text_with_nul_or_beyond_ascii_round_trips(tmp_path):
    dataset = xr.Dataset({"text": (("trial",), np.array(["≥ 0.3", "", "plain"]))})
    path = tmp_path / "text.nc"
    write_netcdf(dataset, path)
    loaded = load_netcdf(path)
    assert loaded["text"].dtype == dataset["text"].dtype
    assert loaded["text"].values.tolist() == ["≥ 0.3", "", "plain"]


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        (xr.Dataset({"flag": (("trial",), np.array([True, False]))}), "'flag' has dtype bool"),
        (xr.Dataset({"obj": (("trial",), np.array(["a", None], dtype=object))}), "'obj' has dtype"),
        (xr.Dataset({"scalar": ((), 1.0)}), "'scalar' has no dimension"),
        (
            xr.Dataset({"x": (("trial",), [1.0])}, coords={"label": (("trial",), ["a"])}),
            "coordinate 'label' has dims",
        ),
        (xr.Dataset({"x": (("trial",), [1.0])}, attrs={"flags": [1, 2]}), "attribute 'flags'"),
    ],
)
def test_what_the_writer_does_not_take_is_refused_by_name(tmp_path, dataset, message):
    with pytest.raises(ValueError, match=message):
        write_netcdf(dataset, tmp_path / "refused.nc")


def test_an_encoding_is_refused_by_name(tmp_path):
    dataset = xr.Dataset({"x": (("trial",), [1.0, 2.0])})
    dataset["x"].encoding = {"zlib": True}
    with pytest.raises(ValueError, match=r"'x' carries an encoding \(\['zlib'\]\)"):
        write_netcdf(dataset, tmp_path / "refused.nc")
