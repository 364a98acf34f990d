"""Dose-response models, each a PyMC model with fast engines that return the same schema."""

from dosezoo.models.three_pnd import ThreePND

__all__ = ["ThreePND"]
