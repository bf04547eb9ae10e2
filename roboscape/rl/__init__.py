"""Reinforcement learning: PPO, and the environments it trains in (ManiSkill; the world model)."""
