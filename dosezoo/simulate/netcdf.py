"""The netCDF-4 file of a simulation's results, written in one pass with h5py.

``xarray.Dataset.to_netcdf(engine="h5netcdf")`` creates every variable through h5netcdf, whose
bookkeeping looks each dimension and variable up again by its HDF5 path several times per
variable; for the 45 variables of a BOIN result that cost more than simulating the trials.
`write_netcdf` writes the same file with h5py's low-level API, each object once: the reader
(`xarray.load_dataset`, `xarray.open_datatree`, h5netcdf, netCDF-C) sees what xarray would have
written, the same variables, values, dtypes, attributes, fill values, dimension scales and
creation order (the tests compare both files object by object).

A netCDF-4 file is an HDF5 file laid out by the netCDF-4 data model (Rew, Hartnett and Caron
2006; Unidata's "NetCDF-4 format" of the netCDF users' guide), on HDF5 dimension scales
(The HDF Group's "HDF5 Dimension Scale Specification", 2005):

- every dimension is a one-dimensional dataset made a dimension scale, with the attribute
  ``_Netcdf4Dimid`` (its number, in order of first use by the variables); a dimension with a
  coordinate variable of its name is that variable, any other one an empty big-endian float32
  dataset whose scale is named ``"This is a netCDF dimension but not a netCDF variable."``
  followed by its length on ten characters;
- every variable with dimensions has its scales attached (``DIMENSION_LIST``, and the scales'
  ``REFERENCE_LIST``), ``_Netcdf4Coordinates`` (the numbers of its dimensions) and, like
  netCDF-C since 4.9.2, ``_Netcdf4Dimid`` (the number of its first dimension);
- a float variable has the fill value NaN, in its creation properties and as ``_FillValue``
  (xarray's default);
- a text data variable is a netCDF character array (``NC_CHAR``): its UTF-8 bytes along a
  last dimension ``string<n>``, ``n`` the longest string's length in bytes, with the attribute
  ``_Encoding = "utf-8"``, as xarray writes text with the encoding ``{"dtype": "S1"}``, and
  reads back as text. A simulation's 26,000 decision records per 2000 trials are copied as one
  block of bytes, where HDF5's variable-length strings cost a heap object each (more than the
  rest of the file); text coordinates, a few labels, stay variable-length UTF-8 strings;
- the file and its datasets track the creation order of their links and attributes, and the
  root carries ``_NCProperties`` (the writing library, as netCDF-C expects).

A file written with checksums starts with an HDF5 user block of :data:`USER_BLOCK` bytes, which
HDF5 (h5py, h5netcdf, netCDF-C) skips to find the file's signature after it: there
:data:`DIGEST_TAG` and the SHA-256 digest of every byte after the block. `load_netcdf` checks it
before any library parses the file: a file damaged later (a flipped byte of its metadata could
send HDF5 into an endless loop) is refused, whatever its bytes hold.
"""

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dosezoo import __version__

if TYPE_CHECKING:
    import xarray as xr

#: Name of the dimension scale of a dimension without a coordinate variable (then its length).
NOT_A_VARIABLE = b"This is a netCDF dimension but not a netCDF variable."
#: HDF5's ``hvl_t`` in memory: the length and the address of a variable-length list.
_HVL = np.dtype([("len", np.uintp), ("p", np.uintp)])
#: An entry of a scale's REFERENCE_LIST in memory (HDF5's ``ds_list_t``): an object reference
#: (``hobj_ref_t``, the object header's address) and the axis attached.
_REFERENCE_LIST = np.dtype([("dataset", np.uint64), ("dimension", np.int32)], align=True)


#: Root attribute of a file written with checksums: per variable, the CRC-32 of its values as
#: stored and their shape (JSON). HDF5 checks no raw data: a file whose values were changed
#: after it was written (bytes flipped or zeroed on a disk or in a copy) would otherwise read as
#: different, normal-looking results. Another program that keeps the attribute while it
#: changes the file (xarray keeps attributes: a subset of trials saved again) changes the
#: shapes or the variables, and such a file is not verified.
CHECKSUMS = "dosezoo_crc32"
#: Bytes of the HDF5 user block of a file written with checksums (HDF5's smallest).
USER_BLOCK = 512
#: How the user block starts; the digest's 64 hexadecimal digits and a newline follow.
DIGEST_TAG = b"dosezoo results, SHA-256 of the bytes after this block of 512: "
#: The first bytes of every HDF5 (netCDF-4) file, at its start or after its user block.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def write_netcdf(
    dataset: "xr.Dataset", path: str | os.PathLike[str], *, checksums: bool = False
) -> None:
    """Write ``dataset`` to the netCDF-4 file ``path``, as ``to_netcdf(engine="h5netcdf")``.

    Parameters
    ----------
    dataset : xarray.Dataset
        Variables of numbers (integers, floats) or of text (numpy ``U``), each with at least
        one dimension; every coordinate a dimension coordinate; no encoding (chunking,
        compression or a custom fill value are xarray's to write). Attributes of the dataset
        and of its variables: text, integers or floats.
    path : str or path-like
        The file to create (an existing one is replaced).
    checksums : bool
        Also write the attribute :data:`CHECKSUMS` and the digest of the whole file in its user
        block, which :func:`load_netcdf` verifies.

    Raises
    ------
    ValueError
        If a variable, coordinate or attribute falls outside what this writer supports; the
        message names it.
    """
    import h5py

    _check(dataset)
    path = Path(path)
    block = USER_BLOCK if checksums else 0
    with h5py.File(path, "w", track_order=True, userblock_size=block) as file:
        writer = _Writer(file.id, checksums=checksums)
        writer.write(dataset)
        if checksums:
            text = json.dumps(writer.checksums)
            writer.attribute(file.id, CHECKSUMS, np.array(text, dtype=h5py.string_dtype()))
    if checksums:
        with path.open("r+b") as stream:
            stream.seek(USER_BLOCK)
            digest = hashlib.file_digest(stream, "sha256").hexdigest()
            stream.seek(0)
            stream.write(DIGEST_TAG + digest.encode() + b"\n")


def load_netcdf(path: str | os.PathLike[str]) -> "xr.Dataset":
    """Load a results file into memory, its text as numpy text (``U``), as it was written.

    xarray reads a character array as an array of Python strings (``object``); the rest of
    the package, and a simulation that was not saved, hold text as ``U``. A file written with
    checksums is verified first, and they are left out of the attributes.

    Raises
    ------
    ValueError
        If the file's bytes, or a variable's values, differ from those written (naming the file,
        and the variable).
    """
    import xarray as xr  # loaded on use: xarray slows every start-up

    path = Path(path)
    _verify_digest(path)
    _verify(path)
    loaded = xr.load_dataset(path, engine="h5netcdf")
    loaded.attrs.pop(CHECKSUMS, None)
    for name, variable in loaded.data_vars.items():
        if variable.dtype.kind == "O" and variable.encoding.get("_Encoding") == "utf-8":
            loaded[name] = variable.astype(str)
    return loaded


def is_netcdf4(path: Path) -> bool:
    """Whether the file starts as a netCDF-4 (HDF5) file, or as one `write_netcdf` made."""
    with path.open("rb") as stream:
        start = stream.read(max(len(DIGEST_TAG), len(HDF5_SIGNATURE)))
    return start.startswith((HDF5_SIGNATURE, DIGEST_TAG))


def _verify_digest(path: Path) -> None:
    """Compare the SHA-256 digest of the bytes after a file's user block with its record there.

    A file without the record (written without checksums, or by another program) passes.
    """
    with path.open("rb") as stream:
        block = stream.read(USER_BLOCK)
        if not block.startswith(DIGEST_TAG):
            return
        recorded = block[len(DIGEST_TAG) : len(DIGEST_TAG) + 64]
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    if digest.encode() != recorded:
        raise ValueError(
            f"{str(path)!r} is damaged: its bytes are not those dosezoo wrote (their SHA-256 "
            "digest differs from the one recorded at its start); run the simulation again"
        )


def _verify(path: Path) -> None:
    """Compare the CRC-32 of every variable's stored values with the file's record of them.

    Only a file whose variables have the shapes recorded: another shape, or a variable gone,
    is a file another program made from the one dosezoo wrote, which its record does not
    describe.
    """
    import h5py

    with h5py.File(path, "r") as file:
        recorded = file.attrs.get(CHECKSUMS)
        if recorded is None:
            return
        expected = json.loads(recorded)
        if any(
            name not in file or list(file[name].shape) != shape
            for name, (_, shape) in expected.items()
        ):
            return
        for name, (crc, _) in expected.items():
            if _crc32(file[name][()]) != crc:
                raise ValueError(
                    f"{str(path)!r} is damaged: the values of variable {name!r} are not those "
                    "dosezoo wrote (their CRC-32 checksum differs); run the simulation again (a "
                    f"file another program changed in place: delete its attribute {CHECKSUMS!r})"
                )


def _crc32(values: np.ndarray) -> int:
    """CRC-32 of values as HDF5 stores them: their bytes; variable-length text NUL-joined."""
    if values.dtype.kind == "O":
        items = [v.encode() if isinstance(v, str) else bytes(v) for v in values.reshape(-1)]
        return zlib.crc32(b"\0".join(items))
    return zlib.crc32(np.ascontiguousarray(values))


def _check(dataset: "xr.Dataset") -> None:
    """Raise ValueError for what `write_netcdf` does not write as xarray would."""
    for key, value in dataset.attrs.items():
        _attribute_value(key, value)
    for name, variable in dataset.variables.items():
        if not isinstance(name, str) or "/" in name:
            raise ValueError(f"variable {name!r}: the name must be a str without '/'")
        kind, size = variable.dtype.kind, variable.dtype.itemsize
        if kind not in "iufU" or (kind == "f" and size not in (4, 8)):
            raise ValueError(
                f"variable {name!r} has dtype {variable.dtype}; only integers, 32- or 64-bit "
                "floats and text (numpy U) are written"
            )
        if not variable.dims:
            raise ValueError(f"variable {name!r} has no dimension; only arrays are written")
        if (name in dataset.coords or name in dataset.dims) and variable.dims != (name,):
            raise ValueError(
                f"coordinate {name!r} has dims {variable.dims}; only dimension coordinates "
                "are written"
            )
        if variable.encoding:
            raise ValueError(
                f"variable {name!r} carries an encoding ({sorted(variable.encoding)}); only "
                "variables without one are written"
            )
        for key, value in variable.attrs.items():
            _attribute_value(key, value)


class _Writer:
    """Writes one Dataset into the root group of an open HDF5 file.

    The HDF5 types, dataspaces and property lists every variable shares are made once per
    file: making them per variable cost as much as creating the variables. So are h5py's
    modules bound, once: importing them in every call cost a millisecond per file.
    """

    def __init__(self, file_id, *, checksums: bool = False) -> None:
        import h5py
        from h5py import h5a, h5d, h5ds, h5o, h5p, h5s, h5t

        self.h5a, self.h5d, self.h5ds, self.h5o, self.h5s, self.h5t = h5a, h5d, h5ds, h5o, h5s, h5t
        self.file_id = file_id
        self.scalar = h5s.create(h5s.SCALAR)
        self.spaces: dict[tuple[int, ...], h5s.SpaceID] = {}
        self.text_type = h5t.py_create(h5py.string_dtype(), logical=True)
        self.types: dict[np.dtype, h5t.TypeID] = {}
        # The types of the attributes H5DSattach_scale writes: a dataset's DIMENSION_LIST
        # (per axis, a variable-length list of object references to its scales) and a
        # scale's REFERENCE_LIST (the datasets attached to it, each with its axis).
        self.dimension_list_type = h5t.vlen_create(h5t.STD_REF_OBJ)
        self.reference_list_type = h5t.create(h5t.COMPOUND, _REFERENCE_LIST.itemsize)
        self.reference_list_type.insert(b"dataset", 0, h5t.STD_REF_OBJ)
        # ds_list_t's int follows the 8-byte reference (as in _REFERENCE_LIST)
        self.reference_list_type.insert(b"dimension", 8, h5t.NATIVE_INT32)
        self.lcpl = h5p.create(h5p.LINK_CREATE)
        self.lcpl.set_create_intermediate_group(True)
        self.dcpl = h5p.create(h5p.DATASET_CREATE)
        self.dcpl.set_obj_track_times(False)
        self.dcpl.set_attr_creation_order(h5p.CRT_ORDER_TRACKED | h5p.CRT_ORDER_INDEXED)
        self.dcpl_nan: dict[np.dtype, h5p.PropDCID] = {}
        self.nan: dict[np.dtype, np.ndarray] = {}
        #: CRC-32 of each variable's values as written (:func:`_crc32`), and their shape; None
        #: when the file records none (the checksums cost a pass over every value).
        self.checksums: dict[str, tuple[int, list[int]]] | None = {} if checksums else None

    def write(self, dataset: "xr.Dataset") -> None:
        """Write the attributes, dimensions and variables of ``dataset``."""
        import h5py

        for key, value in dataset.attrs.items():
            self.attribute(self.file_id, key, _attribute_value(key, value))
        planned = [_planned(dataset, key) for key in dataset.variables]
        dims: dict[str, int] = {}
        for _, variable_dims, values, _ in planned:
            dims.update(
                (dim, size) for dim, size in zip(variable_dims, values.shape) if dim not in dims
            )
        numbers = {dim: np.array(number, np.int32) for number, dim in enumerate(dims)}
        scales = {}
        # Dimensions first, in order of first use (their numbers); a dimension with a
        # coordinate variable becomes that variable, created in the variables' order.
        for dim, size in dims.items():
            if dim not in dataset.variables:
                placeholder = self.dataset(dim, np.dtype(">f4"), (size,))
                self.attribute(placeholder, "_Netcdf4Dimid", numbers[dim])
                self.h5ds.set_scale(placeholder, NOT_A_VARIABLE + f"{size:10}".encode("ascii"))
                scales[dim] = placeholder
        attached = []
        for name, variable_dims, values, attrs in planned:
            dataset_id = self.dataset(name, values.dtype, values.shape, values)
            ids = np.array([numbers[dim] for dim in variable_dims], dtype=np.int32)
            if name in dims:
                self.attribute(dataset_id, "_Netcdf4Dimid", numbers[name])
                self.h5ds.set_scale(dataset_id, name.encode())
                scales[name] = dataset_id
                self.attribute(dataset_id, "_Netcdf4Coordinates", ids)
            else:
                self.attribute(dataset_id, "_Netcdf4Coordinates", ids)
                self.attribute(dataset_id, "_Netcdf4Dimid", ids[0, ...])
                attached.append((dataset_id, variable_dims))
            if values.dtype.kind == "f":
                if values.dtype not in self.nan:
                    self.nan[values.dtype] = np.full(1, np.nan, values.dtype)
                self.attribute(dataset_id, "_FillValue", self.nan[values.dtype])
            for attribute, value in attrs.items():
                self.attribute(dataset_id, attribute, _attribute_value(attribute, value))
        # Scales attached once every variable exists: attaching a coordinate's scale while
        # the coordinate is still to come would need a placeholder, removed again later.
        self.attach(scales, attached)
        properties = (
            f"version=2,dosezoo={__version__},hdf5={h5py.version.hdf5_version},"
            f"h5py={h5py.__version__}"
        )
        text = h5py.string_dtype("ascii", len(properties))
        self.attribute(self.file_id, "_NCProperties", np.array(properties.encode(), dtype=text))

    def attach(self, scales: dict, attached: list[tuple[object, tuple[str, ...]]]) -> None:
        """Attach the scales to the variables' axes: the attributes H5DSattach_scale writes.

        ``H5DSattach_scale`` per axis reads and rewrites the scale's REFERENCE_LIST (one entry
        per axis attached so far) and the dataset's DIMENSION_LIST: quadratic in the number of
        variables. Each attribute is written once here, as the HDF5 Dimension Scale
        Specification lays them out: a variable's ``DIMENSION_LIST`` after its other
        attributes, per axis a list of one object reference (the address of the scale's
        object header) to its scale; a scale's ``REFERENCE_LIST`` after its other attributes,
        an entry (reference to the variable, axis) per axis attached, in order.
        """
        h5a, h5o = self.h5a, self.h5o
        slot = {dim: index for index, dim in enumerate(scales)}
        # The scales' addresses, which every DIMENSION_LIST points into.
        targets = np.array([h5o.get_info(scale).addr for scale in scales.values()], np.uint64)
        references: dict[str, list[tuple[int, int]]] = {dim: [] for dim in scales}
        for dataset_id, variable_dims in attached:
            lists = np.empty(len(variable_dims), dtype=_HVL)  # per axis one reference
            lists["len"] = 1
            lists["p"] = [targets.ctypes.data + 8 * slot[dim] for dim in variable_dims]
            kind = self.dimension_list_type
            h5a.create(dataset_id, b"DIMENSION_LIST", kind, self.space(lists.shape)).write(
                lists, mtype=kind
            )
            here = h5o.get_info(dataset_id).addr
            for axis, along in enumerate(variable_dims):
                references[along].append((here, axis))
        for dim, scale in scales.items():
            if references[dim]:
                entries = np.array(references[dim], dtype=_REFERENCE_LIST)
                kind = self.reference_list_type
                h5a.create(scale, b"REFERENCE_LIST", kind, self.space(entries.shape)).write(
                    entries, mtype=kind
                )

    def space(self, shape: tuple[int, ...]):
        """Return the simple dataspace of ``shape``, made once per file."""
        if shape not in self.spaces:
            self.spaces[shape] = self.h5s.create_simple(shape)
        return self.spaces[shape]

    def type_of(self, dtype: np.dtype):
        """Return the HDF5 type of an array of ``dtype``: variable-length UTF-8 for text."""
        if dtype.kind == "U":
            return self.text_type
        if dtype not in self.types:
            self.types[dtype] = self.h5t.py_create(dtype, logical=True)
        return self.types[dtype]

    def dataset(self, name: str, dtype: np.dtype, shape: tuple[int, ...], values=None):
        """Create a contiguous dataset as h5netcdf does; with ``values``, a variable of them.

        Without ``values`` (a dimension without a coordinate variable) the dataset is never
        written and has HDF5's default fill value; a float variable has the fill value NaN.
        Numbers and characters are written from memory in their file type (h5py would make
        the type again for every write).
        """
        import h5py

        h5s = self.h5s
        dcpl = self.dcpl
        if dtype.kind == "f" and values is not None:
            if dtype not in self.dcpl_nan:
                self.dcpl_nan[dtype] = self.dcpl.copy()
                self.dcpl_nan[dtype].set_fill_value(np.array(np.nan, dtype))
            dcpl = self.dcpl_nan[dtype]
        lcpl = self.lcpl
        if not name.isascii():
            lcpl = self.lcpl.copy()
            lcpl.set_char_encoding(self.h5t.CSET_UTF8)
        file_type = self.type_of(dtype)
        dataset_id = self.h5d.create(
            self.file_id, name.encode(), file_type, self.space(shape), dcpl=dcpl, lcpl=lcpl
        )
        if values is None:
            return dataset_id
        if dtype.kind != "U":
            contiguous = np.ascontiguousarray(values)
            dataset_id.write(h5s.ALL, h5s.ALL, contiguous, mtype=file_type)
            if self.checksums is not None:
                self.checksums[name] = (_crc32(contiguous), list(values.shape))
            return dataset_id
        if self.checksums is not None:
            self.checksums[name] = (_crc32(values.astype(object)), list(values.shape))
        pointers = _c_strings(values)
        if pointers is None:  # text beyond ASCII: h5py encodes each string as xarray has it do
            dataset_id.write(h5s.ALL, h5s.ALL, values.astype(h5py.string_dtype()))
        else:
            dataset_id.write(h5s.ALL, h5s.ALL, pointers[1], mtype=self.text_type)
        del pointers  # the buffer the addresses point into lived until here
        return dataset_id

    def attribute(self, owner, key: str, array: np.ndarray) -> None:
        """Create the attribute ``key`` of an HDF5 object, of ``array``'s type and shape.

        Numbers and fixed-length text are written from memory in their file type; a string
        (a Python object) through h5py's conversion of objects.
        """
        space = self.scalar if array.ndim == 0 else self.space(array.shape)
        if array.dtype.kind == "S":  # fixed-length ASCII text (_NCProperties)
            file_type = memory_type = self.h5t.py_create(array.dtype, logical=True)
        elif array.dtype.kind == "O":  # a variable-length UTF-8 string
            file_type, memory_type = self.text_type, self.h5t.PYTHON_OBJECT
        else:
            file_type = memory_type = self.type_of(array.dtype)
        self.h5a.create(owner, key.encode(), file_type, space).write(array, mtype=memory_type)


def _planned(dataset: "xr.Dataset", key) -> tuple[str, tuple[str, ...], np.ndarray, dict]:
    """Return a variable as written: name, dims, values and attributes.

    A text data variable becomes its character array (`_characters`) along a last dimension
    ``string<n>``, with ``_Encoding``; every other variable is written as it is.
    """
    variable = dataset.variables[key]
    name, dims, values = str(key), tuple(str(dim) for dim in variable.dims), variable.values
    if values.dtype.kind != "U" or key in dataset.coords:
        return name, dims, values, dict(variable.attrs)
    characters = _characters(values)
    dims += (f"string{characters.shape[-1]}",)
    return name, dims, characters, {**variable.attrs, "_Encoding": "utf-8"}


def _characters(values: np.ndarray) -> np.ndarray:
    """Return text as its UTF-8 bytes, one ``S1`` element per byte along a last axis.

    The last axis is as long as the longest string in bytes (at least 1); shorter strings are
    padded with NUL, which the reader strips. ASCII text (every code point of numpy's UTF-32
    below 128) is converted for the whole array at once; other text is encoded by numpy.
    """
    width = values.dtype.itemsize // 4
    if width and values.dtype.isnative:
        codes = values.view(np.uint32).reshape(-1, width)
        if codes.max(initial=0) < 128:
            # The text ends at the last position any string uses: the dtype's width when
            # the longest string fills it (as numpy sizes text), a column-wise maximum
            # otherwise. (A column-wise reduction costs four times the whole array's.)
            length = width
            if not codes[:, -1].any():
                used = np.flatnonzero(codes.max(axis=0, initial=0))
                length = int(used[-1]) + 1 if used.size else 1
            characters = np.ascontiguousarray(codes[:, :length], dtype=np.uint8).view("S1")
            return characters.reshape(*values.shape, length)
    encoded = np.char.encode(values, "utf-8")
    length = encoded.dtype.itemsize
    return encoded.reshape(-1).view("S1").reshape(*values.shape, length)


def _c_strings(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Return ASCII text as NUL-terminated C strings and their addresses, or None.

    HDF5 takes a variable-length string in memory as a ``char *``. For text that is ASCII
    (every code point of numpy's UTF-32 below 128, no NUL inside a string), the code points
    of a string, one byte each and a NUL appended, are that C string. numpy builds them for
    the whole array at once: a row of a buffer per non-empty element and one empty string
    that every empty element shares, returned with the array of their addresses (``uintp``,
    shaped as ``values``), so HDF5 copies the strings without a Python object or a UTF-8
    encoding per element. None for other text (and for UTF-32 not in the machine's byte
    order), which h5py encodes.
    """
    width = values.dtype.itemsize // 4
    if width == 0 or values.size == 0 or not values.dtype.isnative:
        return None
    codes = values.reshape(-1).view(np.uint32).reshape(-1, width)
    used = codes[:, 0] != 0
    chosen = codes[used]
    # A string opening with NUL would pass for empty: every nonzero code point must be in
    # a chosen string.
    if np.count_nonzero(codes) != np.count_nonzero(chosen):
        return None
    if chosen.size and (
        chosen.max() >= 128 or np.any((chosen[:, :-1] == 0) & (chosen[:, 1:] != 0))
    ):
        return None
    strings = np.zeros((chosen.shape[0] + 1, width + 1), dtype=np.uint8)
    strings[:-1, :width] = chosen
    row = np.where(used, np.cumsum(used) - 1, chosen.shape[0]).astype(np.uintp)
    addresses = strings.ctypes.data + row * np.uintp(width + 1)
    return strings, addresses.reshape(values.shape)


def _attribute_value(key: str, value: object) -> np.ndarray:
    """Return an attribute of the data as h5netcdf writes it.

    Text becomes a variable-length UTF-8 string, a number a 1-element array (as netCDF-C
    writes a scalar).
    """
    import h5py

    if isinstance(value, str):
        return np.array(value, dtype=h5py.string_dtype())
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise ValueError(f"attribute {key!r}: {value!r} is not text, an integer or a float")
    return np.atleast_1d(value)
