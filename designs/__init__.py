"""Dose-finding designs: ``Design(model, rule, conduct)`` and the rules of every family.

A rule is a function of a posterior (:class:`dosezoo.posterior.DosePosterior`) and the data that
returns a :class:`~dosezoo.decision.Decision`; a design composes a model, a rule and the conduct
(:mod:`dosezoo.designs.base`). Each family has a factory that builds its design from one set of
options (``crm_design``, ``boin_design``, ...).
"""

from dosezoo.decision import Decision
from dosezoo.designs.base import Conduct, CountDesign, CountRule, Design, ModelRule, Rule
from dosezoo.designs.blrm import BLRMRule, blrm_design
from dosezoo.designs.boin import BOINRule, boin_boundaries, boin_design
from dosezoo.designs.combination_bo import (
    CombinationBORule,
    augmented_expected_improvement,
    combination_bo_design,
    expected_improvement,
    sobol_start,
)
from dosezoo.designs.crm import CRMRule, crm_design
from dosezoo.designs.ewoc import EWOCRule, ewoc_design
from dosezoo.designs.lse import (
    AdmissibleSet,
    BORule,
    LSERule,
    TwoStageGPRule,
    bo_design,
    lse_design,
)
from dosezoo.designs.mtd_quantile import MTDQuantileRule, ToxicityStopping, mtd_quantile_design
from dosezoo.designs.optimus import OptimusRule, optimus_design
from dosezoo.designs.three_plus_three import ThreePlusThreeRule, three_plus_three_design

__all__ = [
    "AdmissibleSet",
    "BLRMRule",
    "BOINRule",
    "BORule",
    "CRMRule",
    "CombinationBORule",
    "Conduct",
    "CountDesign",
    "CountRule",
    "Decision",
    "Design",
    "EWOCRule",
    "LSERule",
    "MTDQuantileRule",
    "ModelRule",
    "OptimusRule",
    "Rule",
    "ThreePlusThreeRule",
    "ToxicityStopping",
    "TwoStageGPRule",
    "augmented_expected_improvement",
    "blrm_design",
    "bo_design",
    "boin_boundaries",
    "boin_design",
    "combination_bo_design",
    "crm_design",
    "ewoc_design",
    "expected_improvement",
    "lse_design",
    "mtd_quantile_design",
    "optimus_design",
    "sobol_start",
    "three_plus_three_design",
]
