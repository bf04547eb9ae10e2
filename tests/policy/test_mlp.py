"""The MLP policy: one interface for SFT, PPO and evaluation; files that load with one call."""

from __future__ import annotations

import pytest
import torch

from roboscape.policy.mlp import MLPPolicy, MLPPolicyConfig

CFG = MLPPolicyConfig(
    image_size=40,
    instruction_dim=8,
    channels=(4, 8, 8),
    feature_dim=16,
    instruction_features=4,
    hidden_dim=16,
    action_mean=[0.1] * 7,
    action_std=[2.0] * 7,
)


def observations(n: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    frames = lambda: torch.randint(0, 256, (n, 40, 40, 3), generator=g, dtype=torch.uint8)  # noqa: E731
    return {"rgb": frames(), "prev_rgb": frames(), "instruction": torch.randn(n, 8, generator=g)}


def test_act_and_evaluate_agree():
    torch.manual_seed(0)
    policy = MLPPolicy(CFG)
    obs = observations()
    out = policy.act(obs, generator=torch.Generator().manual_seed(1))
    assert out.action.shape == (3, 7) and out.log_prob.shape == (3,) and out.value.shape == (3,)
    log_prob, entropy, value = policy.evaluate(obs, out.action)
    torch.testing.assert_close(log_prob, out.log_prob)  # the PPO ratio starts at exactly 1
    torch.testing.assert_close(value, out.value)
    assert entropy.shape == (3,)
    again = policy.act(obs, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again.action, out.action)  # seeded sampling
    mean = policy.act(obs, deterministic=True).action
    torch.testing.assert_close(mean, policy.distribution(policy.features(obs)).mean)
    # the actor predicts standardised actions: at initialisation (a near-zero last layer) the mean is near the data's
    assert torch.allclose(mean, torch.full_like(mean, 0.1), atol=0.05)
    std = policy.distribution(policy.features(obs)).stddev
    torch.testing.assert_close(std, torch.full_like(std, 2.0 * torch.exp(torch.tensor(-0.5)).item()))


def test_files_round_trip_and_wrong_ones_are_refused(tmp_path):
    policy = MLPPolicy(CFG)
    policy.save_pretrained(tmp_path / "p")
    loaded = MLPPolicy.from_pretrained(tmp_path / "p")
    assert loaded.cfg == CFG
    obs = observations()
    torch.testing.assert_close(loaded.act(obs, deterministic=True).action, policy.act(obs, deterministic=True).action)
    # a file whose weights do not fit its config (here: another frame size)
    (tmp_path / "p" / "config.json").write_text(
        (tmp_path / "p" / "config.json").read_text().replace('"image_size": 40', '"image_size": 64')
    )
    with pytest.raises(ValueError, match="do not fit"):
        MLPPolicy.from_pretrained(tmp_path / "p")


def test_bad_observations_are_refused():
    policy = MLPPolicy(CFG)
    obs = observations()
    with pytest.raises(ValueError, match="uint8"):
        policy.act({**obs, "rgb": obs["rgb"].float()})
    with pytest.raises(ValueError, match="40, 40, 3"):
        policy.act({**obs, "prev_rgb": obs["prev_rgb"][:, :20]})
    with pytest.raises(ValueError, match="instruction"):
        policy.act({**obs, "instruction": obs["instruction"][:, :4]})
    with pytest.raises(ValueError, match="channels"):
        MLPPolicyConfig(channels=(4, 8))
