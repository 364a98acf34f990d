"""Dose-response models, each a PyMC model with fast engines that return the same schema."""

from dosezoo.models.binary import DLTPosterior
from dosezoo.models.crm import CRM, crm_skeleton
from dosezoo.models.three_pnd import ThreePND

__all__ = ["CRM", "DLTPosterior", "ThreePND", "crm_skeleton"]
