"""Dose-finding rules: functions of a posterior that return a :class:`Decision`."""

from dosezoo.designs.decision import Decision
from dosezoo.designs.mtd_quantile import MTDQuantileRule

__all__ = ["Decision", "MTDQuantileRule"]
