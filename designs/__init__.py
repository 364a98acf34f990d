"""Dose-finding designs: ``Design(model, rule, conduct)`` and the rules of every family.

A rule is a function of a posterior (:class:`dosezoo.posterior.DosePosterior`) and the data that
returns a :class:`~dosezoo.decision.Decision`; a design composes a model, a rule and the conduct
(:mod:`dosezoo.designs.base`). Each family has a factory that builds its design from one set of
options (``crm_design``, ``boin_design``, ...), and registers itself in
:mod:`dosezoo.designs.registry` (``FAMILIES``), through which a design and its configuration
tables are inverse (``design_config``, ``design_from_config``).

The names below are imported from their modules on first access (:mod:`dosezoo.lazy`):
``import dosezoo.designs`` loads no family, and ``dosezoo.designs.crm_design`` loads the CRM's
modules only. A family's registration is read from its module's source until the family is
used (:mod:`dosezoo.registry`).
"""

from typing import TYPE_CHECKING

from dosezoo.lazy import attach

if TYPE_CHECKING:
    from dosezoo.decision import Decision
    from dosezoo.designs.backfill import Backfill
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
    from dosezoo.designs.boin12 import (
        BOIN12Design,
        BOIN12Rule,
        BOIN12TableRow,
        boin12_design,
        boin12_utility,
    )
    from dosezoo.designs.combination_bo import (
        CombinationBORule,
        augmented_expected_improvement,
        combination_bo_design,
        expected_improvement,
        sobol_start,
    )
    from dosezoo.designs.crm import CRMRule, crm_design
    from dosezoo.designs.d_optimal import (
        DOptimalRule,
        PrecisionStopping,
        adaptive_d_optimal_design,
        run_staged_trial,
        weibull_reference_scenario,
    )
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
    from dosezoo.designs.optimal import (
        ApproximateDesign,
        OptimalDesign,
        bayesian_d_optimal,
        d_efficiency,
        efficient_rounding,
        equivalence_check,
        information_matrix,
        locally_d_optimal,
        optimal_design,
        sensitivity,
        uniform_design,
        with_reference,
    )
    from dosezoo.designs.optimus import OptimusRule, optimus_design
    from dosezoo.designs.pick_the_winner_stage import (
        PTW_MATRIX,
        ArmCriteria,
        DoseRange,
        PickTheWinnerScenario,
        PickTheWinnerStage,
        pick_the_winner,
        pick_the_winner_cell,
        pick_the_winner_scenarios,
        prob_a_better,
        simulate_pick_the_winner,
        therapeutic_dose_range,
    )
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
    "PTW_MATRIX",
    "AdmissibleSet",
    "ApproximateDesign",
    "ArmCriteria",
    "BLRMRule",
    "BOIN12Design",
    "BOIN12Rule",
    "BOIN12TableRow",
    "BOINRule",
    "BORule",
    "Backfill",
    "CRMRule",
    "CombinationBORule",
    "Conduct",
    "CountDesign",
    "CountRule",
    "DOptimalRule",
    "Decision",
    "DecisionTableRow",
    "Design",
    "DoseRange",
    "EWOCRule",
    "Family",
    "LSERule",
    "MTDQuantileRule",
    "ModelRule",
    "OptimalDesign",
    "OptimusRule",
    "PickTheWinnerScenario",
    "PickTheWinnerStage",
    "PrecisionStopping",
    "Rule",
    "ThreePlusThreeRule",
    "ToxicityStopping",
    "TwoStageGPRule",
    "adaptive_d_optimal_design",
    "augmented_expected_improvement",
    "bayesian_d_optimal",
    "blrm_design",
    "bo_design",
    "boin12_design",
    "boin12_utility",
    "boin_boundaries",
    "boin_design",
    "combination_bo_design",
    "crm_design",
    "d_efficiency",
    "design_config",
    "design_from_config",
    "efficient_rounding",
    "equivalence_check",
    "ewoc_design",
    "expected_improvement",
    "family_of",
    "information_matrix",
    "locally_d_optimal",
    "lse_design",
    "mtd_quantile_design",
    "optimal_design",
    "optimus_design",
    "pick_the_winner",
    "pick_the_winner_cell",
    "pick_the_winner_scenarios",
    "prob_a_better",
    "register",
    "register_stopping",
    "run_staged_trial",
    "sensitivity",
    "simulate_pick_the_winner",
    "sobol_start",
    "therapeutic_dose_range",
    "three_plus_three_design",
    "uniform_design",
    "weibull_reference_scenario",
    "with_reference",
]

#: Each name is imported from its module on first access (:mod:`dosezoo.lazy`).
__getattr__, __dir__ = attach(__name__, __file__)
