"""InferenceData (``xarray.DataTree``) from arrays of draws, in ``pm.sample``'s exact schema.

Kernel engines compute draws with numba; :class:`IdataBuilder` turns them into the groups,
variables, dims, coords and attribute keys that ``pm.sample`` produces for the same PyMC
model, so every rule, plot and diagnostic works on any engine's output. Model-dependent
work (coords, dims, the deterministics' compiled function) is done once per model.
"""

import copy
import inspect
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib.metadata import version
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pymc as pm
    import xarray as xr


_LIBRARY_ATTRS = {
    "creation_library": "ArviZ",
    "creation_library_version": version("arviz-base"),
    "creation_library_language": "Python",
    "inference_library": "dosezoo",
    "inference_library_version": version("dosezoo"),
}


def _attrs(sample_dims: tuple[str, ...], **extra: object) -> dict:
    return {
        "created_at": datetime.now(UTC).isoformat(),
        **_LIBRARY_ATTRS,
        "sample_dims": list(sample_dims),
        **extra,
    }


class IdataBuilder:
    """Build ``pm.sample``-shaped DataTrees for one PyMC model from constrained draws.

    Parameters
    ----------
    model : pymc.Model
        The model the draws target. Call :meth:`refresh_data` after ``pm.set_data``.
    """

    def __init__(self, model: "pm.Model") -> None:
        import pytensor
        import pytensor.tensor as pt
        from pytensor.graph.replace import vectorize_graph

        self.model = model
        transforms = model.rvs_to_transforms
        free = model.free_RVs
        self.free_names = [rv.name for rv in free]
        self.posterior_names = [rv.name for rv in free if transforms[rv] is None] + [
            rv.name for rv in free if transforms[rv] is not None
        ]
        self.deterministic_names = [d.name for d in model.deterministics]
        batched = {
            rv: pt.tensor(name=rv.name, dtype=rv.dtype, shape=(None, *rv.type.shape)) for rv in free
        }
        self._deterministics = None
        if self.deterministic_names:
            outputs = vectorize_graph(model.deterministics, replace=batched)
            self._deterministics = pytensor.function(list(batched.values()), outputs)
        self.refresh_data()

    def refresh_data(self) -> None:
        """Re-read coords, observed and constant data from the model."""
        from pymc.backends.arviz import (
            coords_and_dims_for_inferencedata,
            find_constants,
            find_observations,
        )

        self.coords, self.dims = coords_and_dims_for_inferencedata(self.model)
        self.static = {
            group: self._dataset(values, ())
            for group, values in (
                ("observed_data", find_observations(self.model)),
                ("constant_data", find_constants(self.model)),
            )
            if values
        }

    def _dataset(self, values: dict, sample_dims: tuple[str, ...], **attrs: object) -> "xr.Dataset":
        import xarray as xr  # loaded on use: xarray slows every start-up

        data_vars: dict[str, xr.Variable] = {}
        coords: dict[str, np.ndarray] = {}
        for name, array in values.items():
            array = np.asarray(array)
            dims = list(self.dims.get(name, []))
            dims += [f"{name}_dim_{i}" for i in range(len(dims), array.ndim - len(sample_dims))]
            var_dims = (*sample_dims, *dims)
            for dim, size in zip(var_dims, array.shape, strict=True):
                known = self.coords.get(dim)
                coords.setdefault(
                    dim,
                    np.asarray(known)
                    if known is not None and len(known) == size
                    else np.arange(size),
                )
            data_vars[name] = xr.Variable(var_dims, array)
        return xr.Dataset(data_vars, coords=coords, attrs=_attrs(sample_dims, **attrs))

    def __call__(
        self,
        draws: dict[str, np.ndarray],
        stats: dict[str, np.ndarray],
        *,
        sampling_time: float,
        tuning_steps: int,
        root_attrs: dict | None = None,
    ) -> "xr.DataTree":
        """Assemble the DataTree.

        Parameters
        ----------
        draws : dict
            Constrained values of every free variable, shaped ``(chain, draw, *shape)``.
        stats : dict
            Sampler statistics shaped ``(chain, draw, ...)``.
        sampling_time : float
            Seconds spent sampling, stored as ``pm.sample`` does.
        tuning_steps : int
            Burn-in iterations per chain.
        root_attrs : dict, optional
            Attributes of the root node (e.g. the model's identity).

        Returns
        -------
        xarray.DataTree
        """
        import xarray as xr  # loaded on use: xarray slows every start-up

        n_chains, n_draws = next(iter(draws.values())).shape[:2]
        posterior = {name: draws[name] for name in self.posterior_names}
        if self._deterministics is not None:
            flat = [
                np.reshape(draws[name], (n_chains * n_draws, *np.shape(draws[name])[2:]))
                for name in self.free_names
            ]
            outputs = self._deterministics(*flat)
            posterior |= {
                name: value.reshape(n_chains, n_draws, *value.shape[1:])
                for name, value in zip(self.deterministic_names, outputs, strict=True)
            }
        run = {"sampling_time": sampling_time, "tuning_steps": tuning_steps}
        groups = {
            "posterior": self._dataset(posterior, ("chain", "draw"), **run),
            "sample_stats": self._dataset(stats, ("chain", "draw"), **run),
            **self.static,
        }
        tree = xr.DataTree(children={group: xr.DataTree(ds) for group, ds in groups.items()})
        tree.attrs.update(root_attrs or {})
        return tree


def check_fit_settings(
    owner: str,
    engine: str,
    engines: tuple[str, ...],
    draws: object,
    tune: object,
    chains: object,
    random_seed: object = None,
) -> None:
    """Validate a ``fit``'s engine, MCMC sizes and seed, naming the argument and value at fault.

    Raises
    ------
    ValueError
        Unless ``engine`` is one of ``engines``, ``draws`` and ``chains`` are integers >= 1,
        ``tune`` an integer >= 0, and ``random_seed`` None, an integer >= 0 or a
        ``numpy.random.Generator``.
    """
    if engine not in engines:
        raise ValueError(f"{owner}: engine must be one of {engines}, got {engine!r}")
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{owner}: {name} must be an integer >= {least}, got {value!r}")
    check_random_seed(owner, random_seed)


def check_random_seed(owner: str, random_seed: object) -> None:
    """Refuse a ``random_seed`` other than None, an integer >= 0 or a ``numpy.random.Generator``.

    Raises
    ------
    ValueError
        Naming ``owner`` and the value.
    """
    if random_seed is not None and not isinstance(random_seed, np.random.Generator):
        if (
            isinstance(random_seed, bool)
            or not isinstance(random_seed, int | np.integer)
            or random_seed < 0
        ):
            raise ValueError(
                f"{owner}: random_seed must be an integer >= 0, a numpy Generator or None, "
                f"got {random_seed!r}"
            )


#: The settings every engine of ``fit`` receives; other keywords are an engine's own options.
FIT_SETTINGS = ("draws", "tune", "chains", "random_seed", "progressbar")


def check_engine_options(owner: str, engine: str, method: Callable, options: Mapping) -> None:
    """Raise a ValueError naming the options ``engine`` does not take (e.g. ``drawz=10``).

    An engine's options are the keywords its method names, besides the data and
    :data:`FIT_SETTINGS`: a catch-all ``**`` of the method takes the settings it does not
    read, not options.
    """
    named = [
        name
        for name, parameter in inspect.signature(method).parameters.items()
        if parameter.kind in (parameter.KEYWORD_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        and name not in ("self", "data", *FIT_SETTINGS)
    ]
    unknown = sorted(set(options) - set(named))
    if unknown:
        takes = f"its options are {named}" if named else "it takes no options"
        raise ValueError(
            f"{owner}: engine {engine!r} has no option {', '.join(map(repr, unknown))} ({takes}; "
            f"every engine takes {', '.join(FIT_SETTINGS)})"
        )


def sample_pymc(
    model: "pm.Model",
    *,
    engine: str,
    steps: "Callable[[pm.Model], object] | None",
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | np.random.Generator | None,
    progressbar: bool,
) -> "xr.DataTree":
    """Run ``pm.sample`` on one core with the package's step methods, or NUTS as the reference.

    ``steps(model)`` builds the step methods inside the model's context; with
    ``engine="nuts"`` (``steps`` None) NUTS runs with ``target_accept=0.95``.
    """
    import pymc as pm

    with model:
        step = None if steps is None or engine == "nuts" else steps(model)
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            step=step,
            random_seed=random_seed,
            progressbar=progressbar,
            nuts_sampler="pymc",
            quiet=not progressbar,
            **({"target_accept": 0.95} if engine == "nuts" else {}),
        )


def fit_identity(model_name: str, parameters: dict, engine: str) -> dict:
    """Return the root attributes of a fit: the model, its options (JSON) and the engine."""
    return {
        "model": model_name,
        "model_parameters": json.dumps(parameters),
        "engine": engine,
        "dosezoo_version": version("dosezoo"),
    }


def random_generator(
    seed: int | np.random.SeedSequence | np.random.BitGenerator | np.random.Generator | None,
) -> np.random.Generator:
    """Return a generator made from ``seed`` exactly as PyMC's ``get_random_generator`` does.

    An integer, a ``SeedSequence`` (copied) or None go through ``numpy.random.default_rng``;
    a ``Generator`` or ``BitGenerator`` is copied with its seed sequence and state, so the
    caller's generator does not advance and spawned children match PyMC's: every entry point
    that takes a ``random_seed`` reads it so (an integer and a ``Generator`` made from it give
    the same draws, and the same ``Generator`` gives the same draws twice). Written here so the
    kernel and exact engines and the posteriors seed their draws without importing PyMC.

    Raises
    ------
    TypeError
        For a legacy ``numpy.random.RandomState``, which cannot spawn streams.
    """
    if isinstance(seed, np.random.RandomState):
        raise TypeError(
            "random_seed: a numpy.random.RandomState cannot spawn independent streams; "
            "give an integer, a SeedSequence, a BitGenerator or a Generator"
        )
    if isinstance(seed, np.random.Generator | np.random.BitGenerator):
        bits = seed.bit_generator if isinstance(seed, np.random.Generator) else seed
        copied = type(bits)(np.random.SeedSequence(**bits.seed_seq.state))  # type: ignore[attr-defined]
        copied.state = bits.state
        return np.random.Generator(copied)
    return np.random.default_rng(copy.deepcopy(seed))
