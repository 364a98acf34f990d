"""One base for the package's PyMC step methods: decode the block, one compiled move, encode.

As PyMC's ``ArrayStep`` does for its samplers, :class:`LayoutStep` owns what every step of
the zoo's samplers repeats: finding its value variables in the model, checking them, keeping
the point's key order, and returning the statistics. A family of samplers writes its
:class:`Layout` (where its free variables and data live in the PyMC model, and how to map a
point to the state its numba kernels move and back), and each sampler is then its ``move``:

>>> class SigmaSlice(MyFamilyStep):          # doctest: +SKIP
...     name = "my_sigma_slice"
...     updates = ("sigma",)
...     stats_dtypes_shapes = {"sigma_evals": (np.int64, [])}
...     def move(self, state, data):
...         state, evals = kernels.slice_sigma(self.rng, state, data)
...         return state, {"sigma_evals": evals}

The state and the data a layout hands to the moves are whatever its kernels take: a tuple
``(beta, sigma, nu)``, an array ``theta``, per-dose counts.
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import pymc as pm
from pymc.step_methods.compound import BlockedStep, Competence, StepMethodState
from pymc.util import get_random_generator, get_value_vars_from_user_vars

__all__ = ["Layout", "LayoutStep"]


class Layout(ABC):
    """Where a sampler family's free variables and data live in its PyMC model.

    Subclasses read the hyper-parameters once in ``__init__`` and the data at every call of
    :meth:`observations` (so ``pm.set_data`` and ``pm.observe`` are seen), and define how a
    value-scale point maps to the kernels' state and back.

    Attributes
    ----------
    value_names : dict of str to str
        The value variable of each free variable the family's steps update.
    """

    value_names: dict[str, str]

    @abstractmethod
    def __init__(self, model: pm.Model) -> None:
        """Read the family's hyper-parameters and variables from ``model``, a PyMC model."""

    @abstractmethod
    def decode(self, point: dict) -> Any:
        """Return the kernels' state of a value-scale point (constrained values)."""

    @abstractmethod
    def observations(self) -> Any:
        """Return the model's current data in the form the kernels take."""

    @abstractmethod
    def encode(self, point: dict, state: Any, names: tuple[str, ...]) -> dict:
        """Return a copy of ``point`` with the variables ``names`` of ``state`` on the value scale.

        The copy keeps the point's key order: the trace reads the values positionally.
        """


class LayoutStep(BlockedStep):
    """Base of the package's step methods: decode, one numba move, encode.

    Subclasses set ``layout_class``, ``updates`` (the free variables they change), ``name``,
    ``stats_dtypes_shapes`` and :meth:`move`; a family's base step declares ``layout`` as an
    instance of its own layout class, whose attributes its moves read. Keyword-only options
    follow PyMC's step-method conventions; a family passes options of its own through
    ``**options`` to :meth:`configure`. The steps are never assigned automatically (their
    competence is ``INCOMPATIBLE``): they need their model's structure.
    """

    layout_class: ClassVar[type[Layout]]
    updates: ClassVar[tuple[str, ...]] = ()
    _state_class = StepMethodState

    def __init__(
        self,
        vars=None,
        *,
        model=None,
        rng=None,
        initial_point=None,
        compile_kwargs=None,
        blocked=True,
        **options: Any,
    ) -> None:
        model = pm.modelcontext(model)
        self.layout = self.layout_class(model)
        if vars is None:
            vars = [model[name] for name in self.updates]
        self.vars = get_value_vars_from_user_vars(vars, model)
        expected = {self.layout.value_names[name] for name in self.updates}
        if {v.name for v in self.vars} != expected:
            raise ValueError(
                f"{type(self).__name__} updates {sorted(self.updates)}; "
                f"got {[v.name for v in self.vars]}"
            )
        self.rng = get_random_generator(rng)
        self.configure(**options)

    def configure(self, **options: Any) -> None:
        """Take the family's own options (none by default)."""
        if options:
            raise TypeError(f"{type(self).__name__} got unknown options {sorted(options)}")

    def step(self, point: dict) -> tuple[dict, list[dict]]:
        """Advance the chain by one move of this step's variables."""
        state, stats = self.move(self.layout.decode(point), self.layout.observations())
        return self.layout.encode(point, state, self.updates), [stats]

    @abstractmethod
    def move(self, state: Any, data: Any) -> tuple[Any, dict]:
        """Return the new state and this step's statistics."""

    @staticmethod
    def competence(var, has_grad):
        """Never assigned automatically: the steps need their model's structure."""
        return Competence.INCOMPATIBLE
