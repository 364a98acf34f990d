"""Dose-finding designs: ``Design(model, rule, conduct)`` and the rules of every family.

A rule is a function of a posterior (:class:`dosezoo.posterior.DosePosterior`) and the data that
returns a :class:`~dosezoo.decision.Decision`; a design composes a model, a rule and the conduct
(:mod:`dosezoo.designs.base`). Each family has a factory that builds its design from one set of
options (``crm_design``, ``boin_design``, ...), and registers itself in
:mod:`dosezoo.designs.registry` (``FAMILIES``), through which a design and its configuration
tables are inverse (``design_config``, ``design_from_config``).
"""

from dosezoo.decision import Decision
from dosezoo.designs.base import (
    Conduct,
    CountDesign,
    CountRule,
    DecisionTableRow,
    Design,
    ModelRule,
    Rule,
)
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
from dosezoo.designs.registry import (
    FAMILIES,
    Family,
    design_config,
    design_from_config,
    family_of,
    register,
    register_stopping,
)
from dosezoo.designs.three_plus_three import ThreePlusThreeRule, three_plus_three_design

__all__ = [
    "FAMILIES",
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
    "DecisionTableRow",
    "Design",
    "EWOCRule",
    "Family",
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
    "design_config",
    "design_from_config",
    "ewoc_design",
    "expected_improvement",
    "family_of",
    "lse_design",
    "mtd_quantile_design",
    "optimus_design",
    "register",
    "register_stopping",
    "sobol_start",
    "three_plus_three_design",
]
