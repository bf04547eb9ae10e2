"""Evaluation stage: image metrics, world-model and policy evaluation."""
