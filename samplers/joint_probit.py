"""PyMC step methods of the data-augmentation Gibbs sampler for the joint latent-probit model.

Three step methods, each a thin PyMC wrapper around numba moves of
:mod:`dosezoo.samplers.joint_probit_kernels` (where the full conditionals are derived):

* :class:`LatentCorrelationThresholdStep` (``rho``, ``threshold``): ``Z_T | Z_E`` exactly,
  slice steps on rho and on log(threshold) with ``Z_E`` integrated out, then ``Z_E | Z_T``
  exactly;
* :class:`ToxicityCoefficientsGibbs` (``alpha_tox``, ``beta_tox``): slice steps with ``Z_T``
  integrated out, ``Z_T | Z_E`` exactly, then the exact block draw from the normal conditional
  truncated to ``beta_tox > 0``;
* :class:`EfficacyCoefficientsGibbs` (``alpha_eff``, ``beta_eff``, ``gamma_eff``): slice steps
  with ``Z_E`` integrated out, ``Z_E | Z_T`` exactly, then the exact draw from the normal
  conditional.

The latent pairs ``(Z_T, Z_E)`` are not variables of the PyMC model (its likelihood integrates
them out); they live in a :class:`LatentState` shared by the three steps, which together are a
Markov chain on the augmented posterior ``p(theta, Z | data)`` whose ``theta``-marginal is the
model's posterior. The steps are therefore valid only as a complete sweep, with no other step
method changing these variables: use :func:`joint_probit_steps`. The latent state is reset at the
start of every chain (``setup_chain``) and whenever the data change (``pm.set_data``).

PyMC samples on the value scale: ``beta_tox_interval__`` (log), ``threshold_log__`` and
``rho_interval__`` (``rho = tanh(v / 2)``); the steps decode the point, move on the constrained
scale and encode back, keeping the point's key order.
"""

from typing import Any, ClassVar

import numpy as np
import pymc as pm
from pymc.pytensorf import extract_obs_data

from dosezoo.samplers import joint_probit_kernels as kernels
from dosezoo.samplers.base import Layout, LayoutStep

_PARAMETERS = kernels.PARAMETERS


class JointProbitLayout(Layout):
    """Where the parameters, the prior and the data live in a joint-probit PyMC model.

    Parameters
    ----------
    model : pymc.Model
        A model built by :meth:`dosezoo.models.joint_probit.JointProbit.build` (or
        ``pm.observe`` of one).
    """

    def __init__(self, model: pm.Model) -> None:
        missing = [
            name for name in (*_PARAMETERS, "outcome", "x", "prior_hyper") if name not in model
        ]
        if missing:
            raise ValueError(f"not a JointProbit model: it lacks {missing}")
        self.value_names = {name: model.rvs_to_values[model[name]].name for name in _PARAMETERS}
        self.prior = np.asarray(extract_obs_data(model["prior_hyper"]), dtype=float)
        self._x = model["x"]
        self._cell = model.rvs_to_values[model["outcome"]]

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the current ``(x, dlt, efficacy)`` per patient (sees ``pm.set_data``)."""
        x = np.asarray(extract_obs_data(self._x), dtype=float)
        cell = np.asarray(extract_obs_data(self._cell), dtype=np.int64)
        return x, cell // 3, cell % 3

    def decode(self, point: dict) -> np.ndarray:
        """Constrained parameters (kernel layout) of a value-scale point."""
        theta = np.empty(len(_PARAMETERS))
        for index, name in enumerate(_PARAMETERS):
            value = float(point[self.value_names[name]])
            if name in ("beta_tox", "threshold"):
                value = np.exp(value)
            elif name == "rho":
                value = np.tanh(0.5 * value)
            theta[index] = value
        return theta

    def encode(self, point: dict, theta: np.ndarray, names: tuple[str, ...]) -> dict:
        """Copy ``point`` with the parameters ``names`` of ``theta`` on the value scale."""
        new = point.copy()
        for name in names:
            value = float(theta[_PARAMETERS.index(name)])
            if name in ("beta_tox", "threshold"):
                value = np.log(value)
            elif name == "rho":
                value = 2.0 * np.arctanh(value)
            new[self.value_names[name]] = np.asarray(value)
        return new


class LatentState:
    """The latent pairs ``(Z_T, Z_E)`` of one chain, shared by the three step methods."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the latent pairs (a new chain starts from a fresh draw)."""
        self.z_tox: np.ndarray | None = None
        self.z_eff: np.ndarray | None = None
        self._data: tuple | None = None

    def ensure(self, rng, theta, x, tox, eff) -> None:
        """Draw a starting state inside the observed rectangles if there is none for this data."""
        data = (x.tobytes(), tox.tobytes(), eff.tobytes())
        if self.z_tox is None or data != self._data:
            self.z_tox, self.z_eff = kernels.initial_latents(rng, theta, x, tox, eff)
            self._data = data


class JointProbitStep(LayoutStep):
    """Base of the joint-probit step methods: the state is ``theta`` (the kernels' layout).

    Subclasses set ``updates``, ``stats_dtypes_shapes`` and :meth:`update`, which changes
    ``theta`` (and the latent state) in place.

    Parameters
    ----------
    latent : LatentState, optional
        The latent pairs shared with the other steps of the sweep; a new one by default.
    """

    layout_class = JointProbitLayout
    layout: JointProbitLayout

    def configure(self, *, latent: LatentState | None = None, **options: Any) -> None:
        """Share the sweep's latent state; other options are unknown (TypeError)."""
        super().configure(**options)
        self.latent = LatentState() if latent is None else latent

    def setup_chain(self, rng, tune: int, draws: int) -> None:
        """Start a chain: own generator, and a fresh latent state."""
        super().setup_chain(rng, tune, draws)
        self.latent.reset()

    def move(self, state: np.ndarray, data: tuple) -> tuple[np.ndarray, dict]:
        """Draw the latent pairs if this data has none yet, then run this step's block."""
        x, tox, eff = data
        self.latent.ensure(self.rng, state, x, tox, eff)
        return state, self.update(state, x, tox, eff)

    def update(self, theta: np.ndarray, x, tox, eff) -> dict:
        """Update ``theta`` (and the latent state) in place; return this step's statistics."""
        raise NotImplementedError


class LatentCorrelationThresholdStep(JointProbitStep):
    """``Z_T | Z_E``; rho and log(threshold) by slice with ``Z_E`` integrated out; ``Z_E``."""

    name = "joint_probit_latent"
    updates = ("threshold", "rho")
    stats_dtypes_shapes: ClassVar[dict] = {
        name: (kernels.SWEEP_STATS[name], [])
        for name in ("rho_slice_evals", "threshold_slice_evals")
    }

    def update(self, theta, x, tox, eff):
        """Run the latent block."""
        rho_evals, threshold_evals = kernels.latent_block(
            self.rng,
            theta,
            x,
            tox,
            eff,
            self.latent.z_tox,
            self.latent.z_eff,
            self.layout.prior,
        )
        return {"rho_slice_evals": int(rho_evals), "threshold_slice_evals": int(threshold_evals)}


class ToxicityCoefficientsGibbs(JointProbitStep):
    """Toxicity block: slice with ``Z_T`` integrated out, ``Z_T | Z_E``, then the normal draw.

    ``(alpha_tox, beta_tox)`` take slice steps with ``Z_T`` integrated out, ``Z_T`` is redrawn
    given ``Z_E``, then they are drawn from their normal conditional truncated to
    ``beta_tox > 0``.
    """

    name = "joint_probit_toxicity"
    updates = ("alpha_tox", "beta_tox")
    stats_dtypes_shapes: ClassVar[dict] = {
        "toxicity_slice_evals": (kernels.SWEEP_STATS["toxicity_slice_evals"], [])
    }

    def update(self, theta, x, tox, eff):
        """Run the toxicity block."""
        evals = kernels.toxicity_block(
            self.rng,
            theta,
            x,
            tox,
            eff,
            self.latent.z_tox,
            self.latent.z_eff,
            self.layout.prior,
        )
        return {"toxicity_slice_evals": int(evals)}


class EfficacyCoefficientsGibbs(JointProbitStep):
    """Efficacy block: slice with ``Z_E`` integrated out, ``Z_E | Z_T``, then the normal draw."""

    name = "joint_probit_efficacy"
    updates = ("alpha_eff", "beta_eff", "gamma_eff")
    stats_dtypes_shapes: ClassVar[dict] = {
        "efficacy_slice_evals": (kernels.SWEEP_STATS["efficacy_slice_evals"], [])
    }

    def update(self, theta, x, tox, eff):
        """Run the efficacy block."""
        evals = kernels.efficacy_block(
            self.rng,
            theta,
            x,
            tox,
            eff,
            self.latent.z_tox,
            self.latent.z_eff,
            self.layout.prior,
        )
        return {"efficacy_slice_evals": int(evals)}


def joint_probit_steps(model: pm.Model | None = None) -> list[JointProbitStep]:
    """Return the sweep of ``JointProbit.fit(engine="pymc")``, in the kernel's order.

    Parameters
    ----------
    model : pymc.Model, optional
        A joint-probit model; the model on the context stack by default.

    Returns
    -------
    list of JointProbitStep
        The latent block, then the toxicity and the efficacy coefficients, sharing one
        :class:`LatentState`.
    """
    model = pm.modelcontext(model)
    latent = LatentState()
    return [
        cls(model=model, latent=latent)
        for cls in (
            LatentCorrelationThresholdStep,
            ToxicityCoefficientsGibbs,
            EfficacyCoefficientsGibbs,
        )
    ]
