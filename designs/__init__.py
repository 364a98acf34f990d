"""Dose-finding rules (functions of a posterior that return a :class:`Decision`) and designs."""

from dosezoo.designs.blrm import BLRMDesign
from dosezoo.designs.boin import BOINDesign, boin_boundaries
from dosezoo.designs.crm import CRMDesign
from dosezoo.decision import Decision
from dosezoo.designs.design import MTDQuantileDesign, ToxicityStopping
from dosezoo.designs.ewoc import EWOCDesign
from dosezoo.designs.lse import (
    AdmissibleSet,
    BORule,
    LSERule,
    TwoStageGPDesign,
    bo_design,
    lse_design,
)
from dosezoo.designs.mtd_quantile import MTDPosterior, MTDQuantileRule, SampledMTD
from dosezoo.designs.optimus import OptimusDesign, OptimusRule
from dosezoo.designs.three_plus_three import ThreePlusThreeDesign

__all__ = [
    "AdmissibleSet",
    "BLRMDesign",
    "BOINDesign",
    "BORule",
    "CRMDesign",
    "Decision",
    "EWOCDesign",
    "LSERule",
    "MTDPosterior",
    "MTDQuantileDesign",
    "MTDQuantileRule",
    "OptimusDesign",
    "OptimusRule",
    "SampledMTD",
    "ThreePlusThreeDesign",
    "ToxicityStopping",
    "TwoStageGPDesign",
    "bo_design",
    "boin_boundaries",
    "lse_design",
]
