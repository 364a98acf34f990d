"""Dose-finding rules (functions of a posterior that return a :class:`Decision`) and designs."""

from dosezoo.designs.decision import Decision
from dosezoo.designs.design import MTDQuantileDesign, ToxicityStopping
from dosezoo.designs.mtd_quantile import MTDPosterior, MTDQuantileRule, SampledMTD

__all__ = [
    "Decision",
    "MTDPosterior",
    "MTDQuantileDesign",
    "MTDQuantileRule",
    "SampledMTD",
    "ToxicityStopping",
]
