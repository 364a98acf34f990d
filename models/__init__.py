"""Dose-response models, each a PyMC model with fast engines that return the same schema.

The names below are imported from their modules on first access (:mod:`dosezoo.lazy`), so
``import dosezoo.models.base`` (or any one model) loads no other model (but the one an
extension builds on: the 3PND extensions load the 3PND model).
"""

from typing import TYPE_CHECKING

from dosezoo.lazy import attach

if TYPE_CHECKING:
    from dosezoo.models.blrm import (
        BLRM,
        BLRMPrior,
        blrm_minimal_informative_prior,
        blrm_prior_from_quantiles,
    )
    from dosezoo.models.boin import BOIN
    from dosezoo.models.crm import CRM, crm_prior_from_statements, crm_skeleton
    from dosezoo.models.ewoc import EWOC, ewoc_prior_from_statements
    from dosezoo.models.gp_surface import GPSurface, GPSurfacePosterior
    from dosezoo.models.joint_probit import JointProbit, JointProbitPrior
    from dosezoo.models.latent_gp import (
        LatentGP,
        latent_gp_prior_from_statements,
        quantile_prior_mean,
        sigma_f_lognormal,
    )
    from dosezoo.models.three_pnd import ThreePND
    from dosezoo.models.three_pnd_groups import ThreePNDGroups
    from dosezoo.models.three_pnd_plateau import ThreePNDPlateau
    from dosezoo.models.three_pnd_repeated import ThreePNDRepeated
    from dosezoo.models.weibull_aft import MLENotFound, WeibullAFT, WeibullMLE, WeibullPosterior
    from dosezoo.models.workflow import StatementFit, plot_ppc


__all__ = [
    "BLRM",
    "BOIN",
    "CRM",
    "EWOC",
    "BLRMPrior",
    "GPSurface",
    "GPSurfacePosterior",
    "JointProbit",
    "JointProbitPrior",
    "LatentGP",
    "MLENotFound",
    "StatementFit",
    "ThreePND",
    "ThreePNDGroups",
    "ThreePNDPlateau",
    "ThreePNDRepeated",
    "WeibullAFT",
    "WeibullMLE",
    "WeibullPosterior",
    "blrm_minimal_informative_prior",
    "blrm_prior_from_quantiles",
    "crm_prior_from_statements",
    "crm_skeleton",
    "ewoc_prior_from_statements",
    "latent_gp_prior_from_statements",
    "plot_ppc",
    "quantile_prior_mean",
    "sigma_f_lognormal",
]

#: Each name is imported from its module on first access (:mod:`dosezoo.lazy`).
__getattr__, __dir__ = attach(__name__, __file__)
