"""Small synthetic data and models for unit tests: trajectory shards, clip indices (no simulator),
a tiny world model and tokenizer, a policy environment and a policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from roboscape.data.clips import ClipConfig, cut_clips, merge_indices
from roboscape.data.heldout_episodes import Trajectory
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.models.world_model import WorldModel, WorldModelConfig
from roboscape.policy.mlp import ActOutput
from roboscape.policy.openvla.model import REDUCED
from roboscape.rl.world_model_env import InitialStates
from roboscape.sim.trajectory_io import FORMAT_VERSION, Episode, write_episode
from roboscape.utils.h5 import open_h5


def fake_episode(T: int, size: int, rng: np.random.Generator, success_from: int | None) -> Episode:
    success = np.zeros(T, dtype=bool)
    if success_from is not None:
        success[success_from:] = True
    return Episode(
        actions=rng.uniform(-1, 1, (T, 7)).astype(np.float32),
        rewards=rng.uniform(0, 1, T).astype(np.float32),
        success=success,
        rgb={v: rng.integers(0, 255, (T + 1, size, size, 3), dtype=np.uint8) for v in ("third_view", "wrist")},
        qpos=np.zeros((T + 1, 9)),
        qvel=np.zeros((T + 1, 9)),
        tcp_pose=np.zeros((T + 1, 7)),
        tcp_pose_base=np.zeros((T + 1, 7)),
        obj_pose=np.zeros((T + 1, 7)),
        env_states={"actors": {"object": np.zeros((T + 1, 13))}},
        meta={},
    )


def write_fake_shard(path, lengths, size=16, seed=0):
    rng = np.random.default_rng(seed)
    episodes = []
    with open_h5(path, "w") as f:
        for i, T in enumerate(lengths):
            ep = fake_episode(T, size, rng, success_from=T - 3)
            write_episode(f, i, ep)
            episodes.append(
                dict(
                    episode_id=i,
                    episode_seed=100 + i,
                    scene_id=f"push/obj{i}-plate-wood",
                    split="ind" if i % 2 else "ood",
                    label="optimal",
                    instruction="push the obj forward by 10 cm",
                    success=True,
                    initial_success=False,
                    elapsed_steps=T,
                )
            )
    meta = {
        "env_info": {},
        "roboscape": {"format_version": FORMAT_VERSION, "task": "push", "image_size": size},
        "episodes": episodes,
    }
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def fake_clip_index(tmp_path: Path, size: int = 32) -> Path:
    """A clip index over two fake shards, each with one in-domain and one out-of-domain episode."""
    parts = []
    for k in range(2):
        traj = write_fake_shard(tmp_path / f"t{k}.h5", [9, 9], size=size, seed=k)
        idx, _ = cut_clips(traj, tmp_path / f"c{k}.h5", ClipConfig(clip_length=5, stride=5))
        idx.to_csv(tmp_path / f"p{k}.csv", index=False)
        parts.append((tmp_path / f"p{k}.csv", tmp_path / f"c{k}.h5"))
    merge_indices(parts, tmp_path / "index.csv")
    return tmp_path / "index.csv"


def random_null_control(wm: WorldModel) -> WorldModel:
    """``wm`` with its null action or instruction (if it has one) drawn at random instead of zero, so that guidance
    and dropout change what a test model predicts."""
    if wm.null_control is not None:
        with torch.no_grad():
            torch.nn.init.normal_(wm.null_control)
    return wm


def models(
    control: str = "action",
    token_target: str = "codes",
    action_dropout: float = 0.0,
    episode_clock: int = 0,
    text_dropout: float = 0.0,
) -> tuple[WorldModel, Tokenizer]:
    """A tiny world model and tokenizer of 16 px frames (random weights, seeded); with
    ``action_dropout`` (``text_dropout``), its null action (instruction) is random too, so that
    guidance changes something; with an ``episode_clock``, so is its embedding."""
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(image_size=16, downsample_factor=4, base_channels=16, codebook_bits=6)).eval()
    wm = WorldModel(
        WorldModelConfig(
            codebook_size=64,
            tokens_hw=4,
            window=4,
            dim=32,
            depth=2,
            heads=4,
            control=control,
            text_dim=24,
            token_target=token_target,
            action_dropout=action_dropout,
            text_dropout=text_dropout,
            episode_clock=episode_clock,
        )
    ).eval()
    if episode_clock:
        with_random_clock(wm)
    return random_null_control(wm), tok


def with_random_clock(wm: WorldModel) -> WorldModel:
    """``wm`` with its episode clock's embedding drawn at random, seeded (it starts at zero)."""
    with torch.no_grad():
        wm.clock_emb.weight.normal_(generator=torch.Generator().manual_seed(3))
    return wm


def frames(n: int = 3) -> torch.Tensor:
    """``n`` seeded random 16 px frames in [-1, 1], what :func:`models` takes."""
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def env_world(frame_skip: int = 2, action_dropout: float = 0.0) -> tuple[WorldModel, Tokenizer, InitialStates]:
    """A tiny action world model (32 px frames, seeded random weights; with ``action_dropout``, a
    random null action), its tokenizer and a pool of 5 random initial states: what the world-model
    environment needs."""
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(image_size=32, downsample_factor=8, base_channels=16, codebook_bits=6)).eval()
    wm = WorldModel(
        WorldModelConfig(
            codebook_size=64,
            tokens_hw=4,
            window=3,
            dim=32,
            depth=1,
            heads=4,
            frame_skip=frame_skip,
            action_low=[-1.0] * 7,
            action_high=[1.0] * 7,
            action_dropout=action_dropout,
        )
    ).eval()
    random_null_control(wm)
    rng = np.random.default_rng(0)
    states = InitialStates(
        frames=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        goals=rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
        instructions=unit(rng.standard_normal((5, 8))),
        scene_ids=[f"push/s{i}" for i in range(5)],
    )
    return wm, tok, states


class FakeEnv:
    """Succeeds once the actions' sum passes 1; a NaN action fails the episode (as PolicyEnv does)."""

    episode_steps = 4

    def reset(self, options):
        self.total = 0.0
        return self._obs(), {"success": False}

    def _obs(self):
        return {
            "rgb": np.zeros((2, 2, 3), np.uint8),
            "prev_rgb": np.zeros((2, 2, 3), np.uint8),
            "instruction": np.zeros(2, np.float32),
        }

    def step(self, action):
        self.steps = getattr(self, "steps", 0) + 1
        if not np.all(np.isfinite(action)):
            return (
                self._obs(),
                0.0,
                True,
                False,
                {"success": False, "action_clipped": False, "failure": "nonfinite_action"},
            )
        self.total += float(action[0])
        return self._obs(), 1.0, False, False, {"success": self.total > 1, "action_clipped": False, "failure": None}


class ConstantPolicy:
    def __init__(self, value: float):
        self.value = value

    def act(self, obs, deterministic=False):
        return ActOutput(torch.full((1, 7), self.value), torch.zeros(1), torch.zeros(1))


TINY_VLA = REDUCED  # a tiny random OpenVLA of OpenVLA-7B's architecture


def episode(subset: str, label: str, seed: int, frame: np.ndarray, steps: int = 4) -> Trajectory:
    """A recorded episode of a push scene (two scenes by the seed's parity) starting from ``frame``,
    with seeded random actions."""
    rng = np.random.default_rng(seed)
    return Trajectory(
        subset, f"push/s{seed % 2}", seed, label, True, frame[None], rng.uniform(-1, 1, (steps, 7)), np.zeros(steps)
    )


class FakeSim:
    """The simulator's contract for :func:`roboscape.eval.controllability.simulate`: resets to a
    recorded first frame by scene and
    seed, and shifts the frame by each action's first dimension (a world that answers its actions)."""

    def __init__(self, frames: dict[int, np.ndarray]):
        self.frames, self.received = frames, []

    def reset(self, options):
        self.frame = self.frames[options["episode_seed"]].copy()
        return {"rgb": self.frame}, {}

    def step(self, action):
        self.received.append(np.asarray(action))
        self.frame = np.roll(self.frame, int(np.sign(action[0])), axis=1)
        return {"rgb": self.frame}, 0.0, False, False, {"success": False}
