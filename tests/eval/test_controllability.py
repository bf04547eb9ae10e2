"""Controllability against the simulator: the sequences are what they claim, the scores and margins
on known frames, and both worlds start from the episode's recorded first frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from roboscape.data.frames import to_model_range, to_uint8
from roboscape.eval.controllability import (
    RECORDED,
    ControllabilityConfig,
    action_sequences,
    imagine,
    keep_probability,
    measure,
    opposite_extremes,
    pick_start_episodes,
    summarise,
    token_dynamics,
    tokenize_frames,
    versus_floor,
)
from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.rollout import Rollout
from roboscape.models.world_model import token_bits
from roboscape.sim.policy_io import GRIPPER

from fakes import FakeSim, env_world, episode, frames, models

LOW = np.array([-0.4, -0.5, -0.6, -0.1, -0.2, -0.3, -1.0], np.float32)
HIGH = np.array([0.3, 0.7, 0.5, 0.1, 0.2, 0.3, 1.0], np.float32)


def test_the_sequences_are_what_they_claim():
    seqs = action_sequences(LOW, HIGH, horizon=6, seed=0)
    assert all(a.shape == (6, 7) for a in seqs.values())
    np.testing.assert_array_equal(seqs["no motion"][:, :GRIPPER], 0)
    np.testing.assert_array_equal(seqs["no motion"][:, GRIPPER], 1)  # held open, as every recording starts
    for axis, name in enumerate("xyz"):
        for sign, bound in (("+", HIGH), ("-", LOW)):
            a = seqs[f"{sign}{name} at trained extreme"]
            np.testing.assert_array_equal(a[:, axis], bound[axis])  # at the recorded range's bound
            np.testing.assert_array_equal(np.delete(a[:, :GRIPPER], axis, axis=1), 0)
    np.testing.assert_array_equal(seqs["gripper closed"][:, GRIPPER], -1)
    np.testing.assert_array_equal(seqs["gripper closed, then opened"][:, GRIPPER], [-1, -1, -1, 1, 1, 1])
    inside = seqs["uniform random in range"]
    assert (inside >= LOW).all() and (inside <= HIGH).all()
    twice = seqs["uniform random, twice the range"]
    centre, half = (LOW + HIGH) / 2, (HIGH - LOW) / 2
    assert (np.abs(twice - centre) <= 2 * half + 1e-6).all() and ((twice < LOW) | (twice > HIGH)).any()
    assert np.array_equal(action_sequences(LOW, HIGH, 6, 0)["uniform random in range"], inside)  # seeded


def test_start_states_are_spread_over_the_suboptimal_recordings():
    frame = np.zeros((8, 8, 3), np.uint8)
    eps = [episode("heldout", "optimal" if i % 2 else "suboptimal", i, frame) for i in range(10)]
    eps += [episode("ood", "optimal", 20 + i, frame) for i in range(3)]
    picked = pick_start_episodes(eps, "heldout", 3)
    assert [e.episode_seed for e in picked] == [0, 4, 8]
    assert [e.episode_seed for e in pick_start_episodes(eps, "ood", 5)] == [20, 21, 22]  # no suboptimal: any
    with pytest.raises(ValueError, match="no heldout"):
        pick_start_episodes(eps[:0], "heldout", 1)


def test_margins_and_their_clustered_errors_on_known_scores():
    floor = {"psnr": np.full((4, 3), 20.0), "ssim": np.full((4, 3), 0.5), "perceptual": np.full((4, 3), 0.4)}
    model = {"psnr": np.full((4, 3), 22.0), "ssim": np.full((4, 3), 0.4), "perceptual": np.full((4, 3), 0.3)}
    model["perceptual"][0] = 0.5  # one start state worse than copying
    # the tokenized first frame: a worse copy than the first frame itself, so a lower floor
    tokenized = {"psnr": np.full((4, 3), 21.0), "ssim": np.full((4, 3), 0.3), "perceptual": np.full((4, 3), 0.45)}
    scores = {"model": model, "copy_first_frame": floor, "copy_first_frame_tokenized": tokenized}
    out = summarise(scores, ["a", "a", "b", "c"])
    pixel, token = out["margin_over_floor"]["copy_first_frame"], out["margin_over_floor"]["copy_first_frame_tokenized"]
    assert pixel["psnr"] == pytest.approx(2.0) and token["psnr"] == pytest.approx(1.0)
    assert pixel["ssim"] == pytest.approx(-0.1) and token["ssim"] == pytest.approx(0.1)  # higher is better
    assert pixel["perceptual"] == pytest.approx((-0.1 + 3 * 0.1) / 4)  # lower is better
    assert token["perceptual"] == pytest.approx((-0.05 + 3 * 0.15) / 4)
    assert out["beats_floor"]["copy_first_frame"] == {"psnr": True, "ssim": False, "perceptual": True}
    assert out["beats_floor"]["copy_first_frame_tokenized"] == {"psnr": True, "ssim": True, "perceptual": True}
    # PSNR and SSIM differ alike at every start state (no error); one start state worse than copying
    # leaves the perceptual margin's interval (scenes a, b, c) across zero
    assert out["versus_floor_95"]["copy_first_frame"] == {"psnr": "above", "ssim": "below", "perceptual": "level"}
    assert out["margin_standard_error"]["copy_first_frame"]["psnr"] == pytest.approx(0.0)
    assert out["margin_standard_error"]["copy_first_frame"]["perceptual"] > 0
    assert out["per_step"]["model"]["psnr"] == [22.0] * 3
    per_state = out["margin_per_start_state"]["copy_first_frame"]["perceptual"]
    assert per_state == pytest.approx([-0.1, 0.1, 0.1, 0.1])
    assert np.mean(per_state) == pytest.approx(pixel["perceptual"])


def test_the_verdict_against_a_floor_is_its_95_percent_interval():
    assert versus_floor(0.05, 0.02) == "above" and versus_floor(0.05, 0.03) == "level"
    assert versus_floor(-0.05, 0.02) == "below" and versus_floor(0.0, 0.0) == "level"
    assert versus_floor(0.01, None) == "above"  # a single scene: the point estimate decides


@pytest.mark.parametrize("token_target", ["codes", "bits"])
def test_a_steps_logits_give_the_models_probability_of_the_previous_token(token_target):
    wm, tok = models(token_target=token_target)
    roll = Rollout(wm, tok)
    first = roll.reset(frames()).flatten(1)
    action = torch.rand(3, 7, generator=torch.Generator().manual_seed(3)) * 2 - 1
    step = roll.step(action)
    with torch.no_grad():
        logits = wm(first[:, None], action[None].transpose(0, 1)).logits[:, 0]  # (3, 16, K)
    if token_target == "codes":
        expected = torch.softmax(logits, -1).gather(-1, first[..., None])[..., 0]
    else:  # the product of the bits' probabilities, as the loss factorises a token
        p_one = torch.sigmoid(logits)
        expected = torch.where(token_bits(first, logits.shape[-1]), p_one, 1 - p_one).prod(-1)
    keep = keep_probability(step.logits, first, token_target)
    assert keep.shape == (3, 16)
    assert torch.allclose(keep, expected, atol=1e-5)


def test_token_motion_on_known_tokens():
    # one start state, 2 steps, a 1 x 2 token grid
    model = torch.tensor([[[[5, 6]], [[5, 6]], [[5, 7]]]])  # keeps both, then changes the second
    sim = torch.tensor([[[[5, 6]], [[9, 6]], [[9, 6]]]])  # changes the first, then nothing
    keep = torch.tensor([[[[0.2, 0.9]], [[0.6, 0.1]]]])
    out = token_dynamics(model, keep, sim)
    steps = out["per_step"]
    assert steps["model_changed"] == [0.0, 0.5] and steps["simulator_changed"] == [0.5, 0.0]
    # the first position was kept against odds of 0.2: hidden motion; the second step kept the first at 0.6
    assert steps["hidden_motion"] == [0.5, 0.0]
    assert steps["keep_probability"] == pytest.approx([0.55, 0.35])
    assert steps["keep_probability_where_simulator_changes"] == [pytest.approx(0.2), None]
    assert out["mean"]["keep_probability_where_simulator_changes"] == pytest.approx(0.2)
    assert out["mean"]["hidden_motion"] == 0.25 and out["mean"]["simulator_changed"] == 0.25
    still = token_dynamics(model, keep, sim[:, :1].expand_as(sim))
    assert still["mean"]["keep_probability_where_simulator_changes"] is None


def test_opposite_extremes_are_measured_in_pixel_units():
    black, white = np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 255, np.uint8)
    finals = {f"{s}{a} at trained extreme": black for a in "xyz" for s in "+-"}
    finals["+y at trained extreme"] = white
    assert opposite_extremes(finals) == {"x": 0.0, "y": 1.0, "z": 0.0}


def test_both_worlds_start_from_the_recorded_first_frame_and_every_sequence_is_scored():
    wm, tok, _ = env_world(frame_skip=1)
    rng = np.random.default_rng(0)
    firsts = {s: rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for s in (1, 2, 3)}
    starts = {
        "heldout": [episode("heldout", "suboptimal", s, firsts[s], steps=2 + s) for s in (1, 2)],
        "ood": [episode("ood", "suboptimal", 3, firsts[3])],
    }
    sim = FakeSim(firsts)
    cfg = ControllabilityConfig(start_states=2, horizon=4)
    result, media = measure(wm, tok, sim, starts, cfg, PerceptualDistance("stlpips"))
    assert result["sequences"][-1] == RECORDED and len(result["sequences"]) == 12
    held = result["subsets"]["heldout"]
    assert held["first_frame_max_abs_difference"] == 0
    assert held["sequences"][RECORDED]["steps"] == 3  # the shorter recording's length
    assert held["sequences"]["no motion"]["steps"] == 4
    # the recorded sequence sends the episodes' own actions
    recorded = sim.received[-4:]  # the last start state of the last subset: the OOD episode, 4 steps
    np.testing.assert_allclose(np.stack(recorded), starts["ood"][0].actions.astype(np.float32))
    sim_frames, model_frames = media["heldout"]["+x at trained extreme"]
    assert sim_frames.shape == model_frames.shape == (2, 5, 32, 32, 3)
    np.testing.assert_array_equal(sim_frames[:, 0], model_frames[:, 0])  # one first frame for both
    assert result["subsets"]["ood"]["opposite_extremes"]["simulator"]["x"] > 0
    # token motion: the fake simulator holds still without motion and shifts its frame under +x
    motion = {k: held["sequences"][k]["tokens"] for k in ("no motion", "+x at trained extreme")}
    assert motion["no motion"]["mean"]["simulator_changed"] == 0
    assert motion["no motion"]["mean"]["keep_probability_where_simulator_changes"] is None
    sim_tokens = tokenize_frames(tok, sim_frames)
    shifted = (sim_tokens[:, 1:] != sim_tokens[:, :-1]).float().mean((0, 2, 3)).tolist()
    assert motion["+x at trained extreme"]["per_step"]["simulator_changed"] == pytest.approx(shifted)
    assert max(shifted) > 0
    assert len(motion["+x at trained extreme"]["per_step"]["hidden_motion"]) == 4
    for floor in ("copy_first_frame", "copy_first_frame_tokenized"):
        assert isinstance(held["beats_floor_on_every_sequence"][floor], bool)
        assert len(held["sequences"]["no motion"]["per_step"][floor]["psnr"]) == 4


def test_a_temperature_samples_the_world_models_frames_reproducibly_and_is_recorded():
    wm, tok, _ = env_world(frame_skip=1)
    first = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    starts = {"heldout": [episode("heldout", "suboptimal", 1, first)], "ood": [episode("ood", "suboptimal", 2, first)]}

    def frames(**cfg):
        result, media = measure(
            wm,
            tok,
            FakeSim({1: first, 2: first}),
            starts,
            ControllabilityConfig(1, 3, **cfg),
            PerceptualDistance("stlpips"),
        )
        return result, np.stack([m for sequences in media.values() for _, m in sequences.values()])

    greedy, sampled = frames(), frames(temperature=1.0)
    assert greedy[0]["config"]["temperature"] == 0.0 and sampled[0]["config"]["temperature"] == 1.0
    assert not np.array_equal(greedy[1], sampled[1])  # random weights: sampling departs from the mode
    np.testing.assert_array_equal(sampled[1], frames(temperature=1.0)[1])  # the seed fixes the samples
    with pytest.raises(ValueError, match="temperature"):
        ControllabilityConfig(temperature=-0.5)


def test_the_tokenized_floor_is_the_first_frame_through_the_tokenizer():
    wm, tok, _ = env_world(frame_skip=1)
    first = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    imagined = imagine(Rollout(wm, tok), first, np.zeros((2, 3, 7), np.float32))
    x = to_model_range(torch.from_numpy(first))
    expected = to_uint8(tok.decode_tokens(tok.encode(x), tok.decoder_context(x))).numpy()
    np.testing.assert_array_equal(imagined.tokenized, expected)
    assert imagined.frames.shape == (2, 3, 32, 32, 3)
    assert torch.equal(imagined.tokens[:, 0], tok.encode(x))  # the rollout's tokens start from the first frame's
    hw = tok.cfg.tokens_hw
    assert imagined.tokens.shape == (2, 4, hw, hw) and imagined.keep_probability.shape == (2, 3, hw, hw)
