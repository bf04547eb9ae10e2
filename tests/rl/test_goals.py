"""Goals imagined by the text world model (Eq. 6) from recorded initial states, and their fidelity."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from roboscape.data.frames import to_model_range, to_uint8
from roboscape.models.control import TextControl
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig
from roboscape.models.world_model import WorldModel, WorldModelConfig
from roboscape.rl.goals import (
    GoalConfig,
    decoded,
    goal_fidelity,
    imagine_goals,
    initial_states,
    read_goals,
    write_goals,
)
from roboscape.sim.trajectory_io import TrajectoryShard

from fakes import random_null_control, write_fake_shard

INSTRUCTION = "push the obj forward by 10 cm"


def text_world(text_dropout: float = 0.0):
    torch.manual_seed(0)
    tok = Tokenizer(TokenizerConfig(image_size=32, downsample_factor=8, base_channels=16, codebook_bits=6)).eval()
    cfg = WorldModelConfig(
        codebook_size=64,
        tokens_hw=4,
        window=3,
        dim=32,
        depth=1,
        heads=4,
        control="text",
        text_dim=8,
        text_dropout=text_dropout,
    )
    wm = random_null_control(WorldModel(cfg).eval())  # a null instruction of its own: guidance changes something
    return wm, tok, TextControl(torch.randn(1, 3, 8), torch.ones(1, 3, dtype=torch.bool))


def test_goals_are_the_first_done_frames_of_every_recorded_initial_state(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9, 7, 8], size=32)
    states = initial_states([shard], ["push/obj0-plate-wood", "push/obj1-plate-wood"])
    with TrajectoryShard(shard) as traj:
        first = traj.read(0)
    assert states["initial"].shape == (2, 32, 32, 3) and np.array_equal(
        states["initial"][0], first.rgb["third_view"][0]
    )
    assert np.array_equal(states["final"][0], first.rgb["third_view"][-1])
    # the frame after the step the simulator first counted success (the fake succeeds from its third-last step)
    assert np.array_equal(states["success"][0], first.rgb["third_view"][int(np.argmax(first.success)) + 1])
    assert not np.array_equal(states["success"][0], states["final"][0])
    assert states["split"] == ["ood", "ind"] and states["solved"].tolist() == [True, True]
    wm, tok, text = text_world()
    # threshold 0: the first generated frame is done; threshold above 1: never done, the last frame after max_steps
    for threshold, steps, reached in ((0.0, 1, True), (1.01, 3, False)):
        goals = imagine_goals(wm, tok, text, {INSTRUCTION: 0}, states, GoalConfig(threshold=threshold, max_steps=3))
        assert goals["goal"].shape == (2, 32, 32, 3) and goals["goal"].dtype == np.uint8
        assert goals["steps"].tolist() == [steps] * 2 and goals["reached"].tolist() == [reached] * 2
    write_goals(goals, tmp_path / "goals.h5", GoalConfig())
    back = read_goals(tmp_path / "goals.h5")
    assert np.array_equal(back["goal"], goals["goal"]) and back["scene_id"] == goals["scene_id"]
    assert np.array_equal(back["success_decoded"], goals["success_decoded"])
    with h5py.File(tmp_path / "goals.h5", "a") as f:  # a file from before the decoded references
        del f["initial_decoded"], f["success_decoded"]
    with pytest.raises(ValueError, match="no initial_decoded, success_decoded: a goals file of an older version"):
        read_goals(tmp_path / "goals.h5")
    with pytest.raises(ValueError, match="text world model"):
        imagine_goals(
            WorldModel(WorldModelConfig(codebook_size=64, tokens_hw=4, dim=32, heads=4)),
            tok,
            text,
            {},
            states,
            GoalConfig(),
        )


def test_sampled_goals_are_seeded(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9, 7, 8], size=32)
    states = initial_states([shard], ["push/obj0-plate-wood", "push/obj1-plate-wood"])
    wm, tok, text = text_world()

    def goals(**kw):
        return imagine_goals(wm, tok, text, {INSTRUCTION: 0}, states, GoalConfig(threshold=1.01, max_steps=2, **kw))[
            "goal"
        ]

    greedy, sampled = goals(), goals(temperature=1.0, seed=3)
    assert np.array_equal(goals(), greedy) and np.array_equal(goals(temperature=1.0, seed=3), sampled)
    assert not np.array_equal(sampled, greedy) and not np.array_equal(goals(temperature=1.0, seed=4), sampled)


def test_guided_goals_are_the_rollout_s_guided_by_the_instruction(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9, 7, 8], size=32)
    states = initial_states([shard], ["push/obj0-plate-wood", "push/obj1-plate-wood"])
    wm, tok, text = text_world(text_dropout=0.1)

    def goals(**kw):
        cfg = GoalConfig(threshold=1.01, max_steps=3, **kw)
        return imagine_goals(wm, tok, text, {INSTRUCTION: 0}, states, cfg)["goal"]

    guided = goals(guidance=3.0)
    frames = to_model_range(torch.from_numpy(states["initial"]))
    rows = torch.zeros(len(frames), dtype=torch.long)
    expected = Rollout(wm, tok, guidance=3.0).imagine_goal(frames, *text(rows), threshold=1.01, max_steps=3)[0]
    assert np.array_equal(guided, to_uint8(expected).numpy())
    assert not np.array_equal(guided, goals())
    with pytest.raises(ValueError, match="trained with text dropout"):
        imagine_goals(*text_world(), {INSTRUCTION: 0}, states, GoalConfig(guidance=3.0))


def test_the_decoded_references_are_the_frames_through_the_tokenizer_with_the_first_frame_as_context(tmp_path):
    shard = write_fake_shard(tmp_path / "t.h5", [9, 7, 8], size=32)
    states = initial_states([shard], ["push/obj0-plate-wood", "push/obj1-plate-wood"])
    wm, tok, text = text_world()
    goals = imagine_goals(wm, tok, text, {INSTRUCTION: 0}, states, GoalConfig(threshold=0.0, max_steps=1))
    with torch.no_grad():
        per_frame = tok(to_model_range(torch.from_numpy(states["success"]))).reconstruction.clamp(-1, 1)
    assert np.array_equal(goals["success_decoded"], to_uint8(per_frame).numpy())
    assert goals["initial_decoded"].shape == states["initial"].shape
    assert not np.array_equal(goals["initial_decoded"], goals["success_decoded"])
    # a decoder with a context frame decodes a later frame's tokens with the first frame's help
    torch.manual_seed(1)
    ctx = Tokenizer(
        TokenizerConfig(image_size=32, downsample_factor=8, base_channels=16, codebook_bits=6, decoder_context=True)
    ).eval()
    first, last = (to_model_range(torch.from_numpy(states[k])) for k in ("initial", "final"))
    with torch.no_grad():
        expected = to_uint8(ctx(last, context_frames=first).reconstruction.clamp(-1, 1)).numpy()
        swapped = to_uint8(ctx(last, context_frames=last).reconstruction.clamp(-1, 1)).numpy()
    assert np.array_equal(decoded(ctx, states["final"], ctx.decoder_context(first)).numpy(), expected)
    assert not np.array_equal(expected, swapped)


def test_fidelity_compares_the_goal_with_the_initial_frame_on_solved_states():
    rng = np.random.default_rng(0)
    final = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    initial = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    goals = {
        "final": final,
        "goal": final.copy(),
        "initial": initial,
        "initial_decoded": initial.copy(),
        "success_decoded": initial.copy(),  # decoding loses everything the task changes
        "solved": np.array([True, True, True, False]),
        "split": ["ind", "ind", "ood", "ood"],
        "scene_id": ["a", "b", "c", "c"],
        "reached": np.array([True, False, True, True]),
        "steps": np.array([2, 5, 1, 3]),
    }
    result = goal_fidelity(goals, PerceptualDistance("stlpips"))
    ind, ood = result["ind"], result["ood"]
    assert ind["solved_states"] == 2 and ood["solved_states"] == 1 and ood["states"] == 2
    assert ind["goal_to_final"] == pytest.approx(0.0, abs=1e-5) and ind["margin"] > 0 and ind["beats_floor"]
    assert ind["fraction_goal_closer"] == 1.0 and ind["reached"] == 0.5 and ind["mean_steps"] == 3.5
    assert (
        ind["margin_standard_error"] is not None and ood["margin_standard_error"] is None
    )  # one scene: no clustered SE
    assert ind["margin_over_decoded_initial"] == pytest.approx(ind["margin"])
    assert ind["success_decoded_to_final"] == pytest.approx(ind["initial_to_final"])
    assert ind["perfect_goal_margin"] == pytest.approx(0.0, abs=1e-6) and ind["perfect_goal_margin_standard_error"] >= 0
