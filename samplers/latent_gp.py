"""PyMC step methods for the latent-logit GP posterior (Seno et al. 2025, eqs 15-18 and 21).

Two step methods, thin wrappers around the numba moves of
:mod:`dosezoo.samplers.latent_gp_kernels` (where the moves are derived):

* :class:`WhitenedEllipticalSlice`: elliptical slice on the whitened latent ``z``
  (``f = m + sigma_f L z``), whose prior is exactly N(0, I);
* :class:`LogSigmaCentredSlice`: slice move on ``log sigma_f`` given ``f`` (``z`` rescaled so
  that ``f`` is unchanged), the centred move;
* :class:`LogSigmaSlice`: slice move with stepping out on ``log sigma_f`` given ``z``, the
  non-centred move.

PyMC samples ``z`` (no transform) and ``sigma_f_log__``: the log-normal prior with its
Jacobian is the normal density of ``log sigma_f``, so the value variable is the kernels'
``t``. Use :func:`latent_gp_steps` to get the sweep of ``LatentGP.fit(engine="pymc")``.
"""

from typing import ClassVar

import numpy as np
import pymc as pm
from pymc.pytensorf import extract_obs_data

from dosezoo.samplers import latent_gp_kernels as kernels
from dosezoo.samplers.base import Layout, LayoutStep


class LatentGPLayout(Layout):
    """Where ``z``, ``sigma_f``, the hyper-parameters and the data live in a LatentGP model.

    Hyper-parameters (prior mean, Cholesky factor, log-normal parameters) are read once from
    the model's ``pm.Data``; the data are read at every call of :meth:`counts`, so
    ``pm.set_data`` and ``pm.observe`` are seen. The attributes may be overwritten (a
    negative control in the tests gives the sampler a wrong prior).

    Parameters
    ----------
    model : pymc.Model
        A model built by :meth:`dosezoo.models.latent_gp.LatentGP.build` (or
        ``pm.observe`` of one).
    """

    def __init__(self, model: pm.Model) -> None:
        required = ("z", "sigma_f", "dlt", "dose_index", "prior_mean", "chol")
        missing = [
            name for name in (*required, "log_sigma_mu", "log_sigma_sd") if name not in model
        ]
        if missing:
            raise ValueError(f"not a LatentGP model: it lacks {missing}")
        self.value_names = {
            "z": model.rvs_to_values[model["z"]].name,
            "sigma_f": model.rvs_to_values[model["sigma_f"]].name,
        }
        self.mean = np.ascontiguousarray(extract_obs_data(model["prior_mean"]), dtype=float)
        self.chol = np.ascontiguousarray(extract_obs_data(model["chol"]), dtype=float)
        self.log_sigma_mu = float(extract_obs_data(model["log_sigma_mu"]))
        self.log_sigma_sd = float(extract_obs_data(model["log_sigma_sd"]))
        self.slice_width = self.log_sigma_sd
        self._index = model["dose_index"]
        self._dlt = model.rvs_to_values[model["dlt"]]

    def decode(self, point: dict) -> tuple[np.ndarray, float]:
        """Return ``(z, t)``, ``t = log sigma_f`` (the value variable of ``sigma_f``)."""
        z = np.ascontiguousarray(point[self.value_names["z"]], dtype=float)
        return z, float(point[self.value_names["sigma_f"]])

    def encode(self, point: dict, state: tuple, names: tuple[str, ...]) -> dict:
        """Copy ``point`` with ``(z, t)`` written back, keys in order."""
        z, t = state
        new = point.copy()
        new[self.value_names["z"]] = np.asarray(z)
        new[self.value_names["sigma_f"]] = np.asarray(t)
        return new

    def observations(self) -> tuple[np.ndarray, np.ndarray]:
        """Patients and DLTs per dose from the model's current data."""
        index = np.asarray(extract_obs_data(self._index), dtype=np.int64)
        dlt = np.asarray(extract_obs_data(self._dlt), dtype=float)
        size = self.mean.size
        n = np.bincount(index, minlength=size).astype(float)
        y = np.bincount(index, weights=dlt, minlength=size).astype(float)
        return n, y


class LatentGPStep(LayoutStep):
    """Base of the LatentGP step methods: the state is ``(z, log sigma_f)``."""

    layout_class = LatentGPLayout
    layout: LatentGPLayout


class WhitenedEllipticalSlice(LatentGPStep):
    """Elliptical slice move of the whitened latent ``z`` given ``sigma_f``."""

    name = "latent_gp_ess"
    updates = ("z",)
    stats_dtypes_shapes: ClassVar[dict] = {"ess_shrinks": (np.int64, [])}

    def move(self, state, counts):
        """Draw ``z`` given ``log sigma_f``."""
        (z, t), (n, y), layout = state, counts, self.layout
        z, shrinks = kernels.elliptical_slice(self.rng, z, t, layout.chol, layout.mean, n, y)
        return (z, t), {"ess_shrinks": int(shrinks)}


class LogSigmaCentredSlice(LatentGPStep):
    """Slice move of ``log sigma_f`` given ``f``; ``z`` is rescaled so ``f`` stays put."""

    name = "latent_gp_sigma_centred_slice"
    updates = ("z", "sigma_f")
    stats_dtypes_shapes: ClassVar[dict] = {"centred_evaluations": (np.int64, [])}

    def move(self, state, counts):
        """Draw ``log sigma_f`` given ``f``."""
        (z, t), layout = state, self.layout
        z, t, evaluations = kernels.slice_log_sigma_centred(
            self.rng, z, t, layout.log_sigma_mu, layout.log_sigma_sd, layout.slice_width
        )
        return (z, t), {"centred_evaluations": int(evaluations)}


class LogSigmaSlice(LatentGPStep):
    """Slice move (stepping out, shrinkage) of ``log sigma_f`` given ``z``."""

    name = "latent_gp_sigma_slice"
    updates = ("sigma_f",)
    stats_dtypes_shapes: ClassVar[dict] = {"slice_evaluations": (np.int64, [])}

    def move(self, state, counts):
        """Draw ``log sigma_f`` given ``z``."""
        (z, t), (n, y), layout = state, counts, self.layout
        t, evaluations = kernels.slice_log_sigma(
            self.rng,
            z,
            t,
            layout.chol,
            layout.mean,
            n,
            y,
            layout.log_sigma_mu,
            layout.log_sigma_sd,
            layout.slice_width,
        )
        return (z, t), {"slice_evaluations": int(evaluations)}


def latent_gp_steps(model: pm.Model | None = None) -> list[LatentGPStep]:
    """Return the sweep of ``LatentGP.fit(engine="pymc")``, in the kernel's order.

    Elliptical slice on ``z``, centred slice on ``log sigma_f``, non-centred slice on it.

    Parameters
    ----------
    model : pymc.Model, optional
        A LatentGP model; the model on the context stack by default.

    Returns
    -------
    list of LatentGPStep
    """
    model = pm.modelcontext(model)
    return [
        WhitenedEllipticalSlice(model=model),
        LogSigmaCentredSlice(model=model),
        LogSigmaSlice(model=model),
    ]
