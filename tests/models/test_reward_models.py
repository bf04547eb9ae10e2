"""The learned-reward baselines' models: the transform, the inputs each reads, files, and that one learns."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.reward_models import RewardModel, RewardModelConfig, symexp, symlog


def test_symexp_inverts_symlog():
    x = torch.tensor([-50.0, -1.0, -0.01, 0.0, 0.3, 1.0, 200.0])
    torch.testing.assert_close(symexp(symlog(x)), x)
    assert symlog(torch.tensor(-3.0)) == -symlog(torch.tensor(3.0))


def test_each_kind_refuses_the_other_kinds_input():
    embedding = RewardModel(RewardModelConfig(kind="embedding", feature_dim=16, hidden_dim=8))
    proxy = RewardModel(RewardModelConfig(kind="proxy", image_size=40, channels=(4, 8, 8), hidden_dim=8))
    assert embedding(torch.zeros(3, 16)).shape == (3,) and proxy(torch.zeros(3, 3, 40, 40)).shape == (3,)
    with pytest.raises(ValueError, match="hidden states"):
        embedding(torch.zeros(3, 3, 40, 40))
    with pytest.raises(ValueError, match="frames"):
        proxy(torch.zeros(3, 16))
    with pytest.raises(ValueError, match="unknown reward model"):
        RewardModelConfig(kind="oracle")


def test_a_saved_reward_model_loads_with_one_call(tmp_path):
    torch.manual_seed(0)
    model = RewardModel(RewardModelConfig(kind="embedding", feature_dim=16, hidden_dim=8))
    model.save_pretrained(tmp_path / "model")
    loaded = RewardModel.from_pretrained(tmp_path / "model")
    x = torch.randn(4, 16)
    assert loaded.cfg == model.cfg and torch.equal(loaded.reward(x), model.reward(x))


def test_the_proxy_learns_a_reward_that_the_frames_show():
    """Reward = how far right a bright square sits: a CNN must read it from the frame."""
    torch.manual_seed(0)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        frames = -torch.ones(n, 3, 40, 40)
        x = torch.randint(0, 32, (n,))
        for i, xi in enumerate(x.tolist()):
            frames[i, :, 16:24, xi : xi + 8] = 1.0
        return frames, x.float() / 31

    model = RewardModel(RewardModelConfig(kind="proxy", image_size=40, channels=(8, 16, 16), hidden_dim=32))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        frames, reward = batch(16)
        loss = torch.nn.functional.mse_loss(model(frames), symlog(reward))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    frames, reward = batch(256)
    error = ((model.reward(frames) - reward) ** 2).mean()
    assert error < 0.1 * reward.var()  # explains over 90% of the variance
