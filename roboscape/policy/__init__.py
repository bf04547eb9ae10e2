"""Policies: what acts in ManiSkill and in the world model, trained by SFT and PPO."""
