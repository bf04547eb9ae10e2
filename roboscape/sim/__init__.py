"""Simulation stage: scene catalogue, ManiSkill3 tasks, MPLib trajectory generation."""
