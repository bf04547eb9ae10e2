"""The world models' training windows on the tiny run's token shards: held-out episodes, kinds of
trajectory, frame skip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from roboscape.data.token_windows import TokenWindowDataset, select_clips, skip_actions
from roboscape.sim.trajectory_io import LABELS

pytestmark = pytest.mark.slow


def test_held_out_episodes_are_disjoint_from_training(tiny_run):
    index = pd.read_csv(tiny_run.out / "tokens" / "index.csv")
    subsets = {s: select_clips(index, s, heldout_every=4) for s in ("train", "heldout", "ood")}
    assert sum(len(v) for v in subsets.values()) == len(index)
    episodes = {s: set(zip(v["scene_id"], v["episode_seed"], strict=True)) for s, v in subsets.items()}
    assert episodes["heldout"] and not episodes["heldout"] & episodes["train"]
    assert (subsets["ood"]["split"] == "ood").all() and (subsets["heldout"]["split"] == "ind").all()
    with pytest.raises(ValueError, match="unknown subset"):
        select_clips(index, "test", 4)


def test_trajectory_labels_keep_their_kind_after_the_same_split(tiny_run):
    index = pd.read_csv(tiny_run.out / "tokens" / "index.csv")
    for subset in ("train", "heldout", "ood"):
        every_kind = select_clips(index, subset, heldout_every=4)
        parts = {label: select_clips(index, subset, 4, [label]) for label in LABELS}
        assert all((part["label"] == label).all() for label, part in parts.items())
        assert sorted(pd.concat(parts.values())["clip_id"]) == sorted(every_kind["clip_id"])
        every_label = select_clips(index, subset, 4, list(LABELS))
        assert list(every_label["clip_id"]) == list(every_kind["clip_id"])
        # exploratory recordings are split on their own: without them, the planner's split is the same
        planner = list(select_clips(index, subset, 4, ["optimal", "suboptimal"])["clip_id"])
        assert planner == list(select_clips(index[index["label"] != "exploratory"], subset, 4)["clip_id"])
    with pytest.raises(ValueError, match=r"\['golden'\] are not in the index"):
        select_clips(index, "train", 4, ["optimal", "golden"])
    with pytest.raises(ValueError, match="are not in the index"):
        select_clips(index, "train", 4, [])
    optimal = TokenWindowDataset(tiny_run.out / "tokens" / "index.csv", frames=4, labels=["optimal"])
    assert len(optimal.index) == len(select_clips(index, "train", 10, ["optimal"]))
    assert (optimal.index["label"] == "optimal").all()


def test_windows_cover_every_clip_and_pad_the_last_action(tiny_run):
    index_path = tiny_run.out / "tokens" / "index.csv"
    L = tiny_run.config["clips"]["clip_length"]
    ds = TokenWindowDataset(index_path, frames=4, subset="train", heldout_every=4, start_stride=2)
    assert list(ds.starts) == list(range(0, L - 4 + 1, 2)) and len(ds) == len(ds.index) * len(ds.starts)
    clip = ds.clip(0)
    last = ds[len(ds.starts) - 1]  # the clip's last window: its final frame has no action
    s = int(ds.starts[-1])
    assert torch.equal(last["tokens"], clip["tokens"][s : s + 4])
    assert torch.equal(last["actions"][:-1], clip["actions"][s:]) and not last["actions"][-1].any()
    assert last["tokens"].dtype == torch.int64 and last["tokens"].shape == (4, ds.tokens_hw**2)
    stats = ds.action_statistics()
    assert all(
        lo <= m <= hi for lo, m, hi in zip(stats["action_low"], stats["action_mean"], stats["action_high"], strict=True)
    )
    with pytest.raises(ValueError, match="do not fit"):
        TokenWindowDataset(index_path, frames=L + 1)
    with pytest.raises(ValueError, match="missing from the cache"):
        TokenWindowDataset(index_path, frames=4, instructions={"say hello": 0})


def test_frame_skip_windows_take_every_kth_frame_and_sum_the_steps_between(tiny_run):
    index_path = tiny_run.out / "tokens" / "index.csv"
    L = tiny_run.config["clips"]["clip_length"]
    k, T = 2, 3
    ds = TokenWindowDataset(index_path, frames=T, subset="train", heldout_every=4, start_stride=1, frame_skip=k)
    assert list(ds.starts) == list(range(0, L - (T - 1) * k)) and ds.steps_per_clip == (L - 1) // k
    clip = ds.clip(0)
    for i in (0, len(ds.starts) - 1):  # the first window, and the last, whose final frame has no action
        s, item = int(ds.starts[i]), ds[i]
        assert torch.equal(item["tokens"], clip["tokens"][s : s + (T - 1) * k + 1 : k])
        assert torch.equal(item["done"], clip["done"][s : s + (T - 1) * k + 1 : k])
        # the reward on reaching frame j of the window: that of the control step just before it
        assert torch.equal(item["rewards"], torch.stack([clip["rewards"][s + j * k - 1] for j in range(1, T)]))
        for j in range(T):
            raw = clip["actions"][s + j * k : s + (j + 1) * k]
            if len(raw) < k:
                assert not item["actions"][j].any()
                continue
            assert torch.allclose(item["actions"][j, :6], raw[:, :6].sum(0)) and item["actions"][j, 6] == raw[-1, 6]
    steps = ds.clip_steps(0)
    assert torch.equal(steps["tokens"], clip["tokens"][: ds.steps_per_clip * k + 1 : k])
    # the episode clock: each frame's step in its episode, from where its clip starts in it
    later = int(np.flatnonzero(ds.index["start"].to_numpy() > 0)[0])
    e, s = int(ds.index["start"].iloc[later]), int(ds.starts[-1])
    item = ds[later * len(ds.starts) + len(ds.starts) - 1]
    assert torch.equal(item["clock"], torch.arange(T) + (e + s) // k)
    assert torch.equal(ds.clip_steps(later)["clock"], torch.arange(ds.steps_per_clip + 1) + e // k)
    assert steps["actions"].shape == (ds.steps_per_clip, 7)
    assert torch.equal(skip_actions(clip["actions"], 1), clip["actions"])  # one step per frame: unchanged
    with pytest.raises(ValueError, match="do not fit"):
        TokenWindowDataset(index_path, frames=T, frame_skip=L)


def test_tasks_keep_only_their_clips_after_the_same_split(tiny_run):
    index_path = tiny_run.out / "tokens" / "index.csv"
    every = TokenWindowDataset(index_path, frames=2, subset="heldout", heldout_every=4)
    push = TokenWindowDataset(index_path, frames=2, subset="heldout", heldout_every=4, tasks=["push"])
    assert set(push.index["clip_id"]) == set(every.index[every.index["task"] == "push"]["clip_id"])
    with pytest.raises(ValueError, match="of tasks"):
        TokenWindowDataset(index_path, frames=2, tasks=["no_such_task"])
