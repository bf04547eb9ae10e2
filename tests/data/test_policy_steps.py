"""The planner's trajectories at the policy's rate, as SFT reads them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roboscape.data.policy_steps import PolicySteps
from roboscape.sim.policy_io import group_actions, split_action
from roboscape.sim.trajectory_io import TrajectoryShard

from fakes import write_fake_shard

INSTRUCTION = "push the obj forward by 10 cm"


def test_items_are_the_frames_and_grouped_actions_of_each_policy_step(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9, 6], size=16)
    steps = PolicySteps(
        [shard],
        ["push/obj0-plate-wood", "push/obj1-plate-wood"],
        ["optimal"],
        frame_skip=4,
        instructions={INSTRUCTION: np.arange(5, dtype=np.float32)},
    )
    assert len(steps) == 3 + 2  # ceil(9 / 4) + ceil(6 / 4)
    with TrajectoryShard(shard) as traj:
        ep = traj.read(0)
    for j in range(3):
        item = steps[j]
        assert torch.equal(item["obs"]["rgb"], torch.from_numpy(ep.rgb["third_view"][4 * j]))
        assert torch.equal(item["obs"]["prev_rgb"], torch.from_numpy(ep.rgb["third_view"][4 * max(j - 1, 0)]))
        assert item["obs"]["instruction"].tolist() == list(range(5))
    torch.testing.assert_close(steps[0]["action"][:6], torch.from_numpy(ep.actions[:4, :6].sum(0)))
    assert steps[0]["action"][6] == ep.actions[3, 6]
    torch.testing.assert_close(
        steps[2]["action"][:6], torch.from_numpy(ep.actions[8:, :6].sum(0))
    )  # the short last group
    stats = steps.action_statistics()
    assert len(stats["action_mean"]) == 7 and min(stats["action_std"]) > 0
    assert len(PolicySteps([shard], ["push/obj1-plate-wood"], ["optimal"], 4, {INSTRUCTION: np.zeros(5)})) == 2


def test_grouping_then_splitting_keeps_each_groups_displacement():
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (10, 7)).astype(np.float32)
    grouped = group_actions(actions, 4)
    assert grouped.shape == (3, 7)
    split = split_action(grouped[0], 4)
    np.testing.assert_allclose(4 * split[:6], actions[:4, :6].sum(0), rtol=1e-6)
    assert split[6] == actions[3, 6]


def test_missing_episodes_and_instructions_are_clear_errors(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9], size=16)
    with pytest.raises(ValueError, match="no \\['suboptimal'\\] episodes"):
        PolicySteps([shard], ["push/obj0-plate-wood"], ["suboptimal"], 4, {INSTRUCTION: np.zeros(5)})
    with pytest.raises(KeyError, match="no instruction embedding"):
        PolicySteps([shard], ["push/obj0-plate-wood"], ["optimal"], 4, {"another instruction": np.zeros(5)})
