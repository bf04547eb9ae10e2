"""The batched rollout engine: one pass per frame for the batch, validation, goal imagination."""

from __future__ import annotations

import pytest
import torch

from roboscape.eval.controllability import ControllabilityConfig
from roboscape.eval.policy_drift import DriftConfig
from roboscape.models import precision as precision_module
from roboscape.models.precision import resolve_precision
from roboscape.models.rollout import Rollout
from roboscape.models.world_model import hidden_motion, predict_tokens
from roboscape.rl.world_model_env import WMEnvConfig
from roboscape.train.decoder_finetuning import with_context_decoder

from fakes import frames, models


@pytest.mark.parametrize("token_target", ["codes", "bits"])
def test_greedy_rollout_matches_the_uncached_model_beyond_the_window(token_target):
    wm, tok = models(token_target=token_target)
    roll = Rollout(wm, tok)
    first = roll.reset(frames())
    actions = torch.rand(9, 3, 7, generator=torch.Generator().manual_seed(2)) * 2 - 1
    seq, dones = [first.flatten(1)], []
    for a in actions:
        s = roll.step(a)
        assert s.tokens.shape == (3, 4, 4) and s.frames.shape == (3, 3, 16, 16) and s.done.shape == (3,)
        assert s.frames.min() >= -1 and s.frames.max() <= 1
        seq.append(s.tokens.flatten(1))
        dones.append(s.done)
    tokens = torch.stack(seq, 1)  # (3, 10, 16)
    with torch.no_grad():
        ref = wm(tokens[:, :-1], actions.transpose(0, 1))
    assert torch.equal(predict_tokens(ref.logits, token_target), tokens[:, 1:])
    assert torch.allclose(ref.done, torch.stack(dones, 1), atol=1e-5)


def test_a_rollout_tells_an_episode_clock_model_each_frame_s_step_and_restarts_it_on_reset():
    wm, tok = models("text", token_target="bits", episode_clock=8)
    text = torch.randn(3, 5, 24)
    roll = Rollout(wm, tok)
    seq = [roll.reset(frames(), text, clock=torch.tensor([0, 3, 5])).flatten(1)]
    dones = []
    for _ in range(wm.cfg.window + 3):  # past the window
        s = roll.step()
        seq.append(s.tokens.flatten(1))
        dones.append(s.done)
    tokens = torch.stack(seq, 1)
    clock = torch.arange(tokens.shape[1] - 1) + torch.tensor([[0], [3], [5]])
    with torch.no_grad():
        ref = wm(tokens[:, :-1], text, clock=clock)
    assert torch.equal(predict_tokens(ref.logits, "bits"), tokens[:, 1:])
    assert torch.allclose(ref.done, torch.stack(dones, 1), atol=1e-5)
    # a rollout started afresh by reset_envs is at its episode's first step again
    roll.reset(frames(), text)
    roll.step()
    roll.reset_envs(torch.tensor([1]), frames(1))
    after = roll.step()
    alone = Rollout(wm, tok)
    alone.reset(frames(1), text[1:2])
    assert (alone.step().tokens[0] == after.tokens[1]).float().mean() > 0.9
    with pytest.raises(ValueError, match="clock must be 3 episode steps"):
        roll.reset(frames(), text, clock=torch.tensor([0, -1, 2]))


def test_a_context_decoder_decodes_every_step_with_the_frames_the_rollout_started_from():
    from roboscape.train.decoder_finetuning import with_context_decoder

    wm, tok = models()
    tok = with_context_decoder(tok).eval()
    with torch.no_grad():
        tok.decoder.keep_context_out.bias.fill_(30.0)  # the gate wide open: the decoder returns its context
    roll = Rollout(wm, tok)
    start = frames()
    roll.reset(start)
    for _ in range(3):
        assert torch.allclose(roll.step(torch.zeros(3, 7)).frames, start, atol=1e-6)
    roll.reset(start.flip(0))
    assert torch.allclose(roll.step(torch.zeros(3, 7)).frames, start.flip(0), atol=1e-6)


def test_actions_are_validated_and_out_of_range_ones_clipped_and_counted():
    wm, tok = models()
    a, b = Rollout(wm, tok), Rollout(wm, tok)
    a.reset(frames())
    b.reset(frames())
    wild = torch.tensor([[2.0, 0, 0, 0, 0, 0, 1], [0.5, 0, 0, 0, 0, 0, -1], [0, -3.0, 0, 0, 0, 9.0, 1]])
    assert torch.equal(a.step(wild).tokens, b.step(wild.clamp(-1, 1)).tokens)
    assert a.clipped_actions == 2 and b.clipped_actions == 0
    with pytest.raises(ValueError, match=r"actions must be \(3, 7\)"):
        a.step(torch.zeros(3, 6))
    with pytest.raises(ValueError, match="NaN"):
        a.step(torch.full((3, 7), float("nan")))
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        a.reset(torch.zeros(3, 16, 16, 3))
    with pytest.raises(ValueError, match="NaN"):
        a.reset(torch.full((1, 3, 16, 16), float("inf")))
    with pytest.raises(RuntimeError, match="reset"):
        Rollout(wm, tok).step(torch.zeros(3, 7))


def test_keep_or_change_decoding_moves_only_where_greedy_kept_a_token_against_the_odds():
    wm, tok = models(token_target="bits")
    greedy, koc = Rollout(wm, tok), Rollout(wm, tok, keep_threshold=0.5)
    first = greedy.reset(frames())
    koc.reset(frames())
    actions = torch.zeros(3, 7)
    a, b = greedy.step(actions), koc.step(actions)
    expected = predict_tokens(a.logits, "bits", previous=first.flatten(1), keep_threshold=0.5)
    assert torch.equal(b.tokens, expected.view(3, 4, 4))
    changed = b.tokens != a.tokens
    assert (a.tokens == first)[changed].all()  # it differs from greedy only where greedy kept the token
    with pytest.raises(ValueError, match="keep_threshold"):
        Rollout(wm, tok, keep_threshold=1.0)


def test_sampling_is_seeded():
    wm, tok = models()
    runs = []
    for _ in range(2):
        roll = Rollout(wm, tok, temperature=1.0, seed=5)
        roll.reset(frames())
        runs.append(torch.stack([roll.step(torch.zeros(3, 7)).tokens for _ in range(3)]))
    assert torch.equal(runs[0], runs[1])


def test_every_stage_config_builds_its_rollout_with_all_its_settings():
    """The eval, drift and controllability configs and the RL environment's build their rollouts one
    way: a setting a config carries reaches the rollout, one it lacks takes the constructor's default."""
    wm, tok = models()
    drift = DriftConfig(temperature=0.5, seed=5, precision="bf16", decoder="fused-fp32-by2")
    roll = Rollout.from_settings(wm, tok, drift)
    assert (roll.temperature, roll.generator.initial_seed(), roll.keep_threshold) == (0.5, 5, 0.0)
    assert roll.precision == resolve_precision("bf16", "cpu")
    assert roll.decode.options.fuse_upsampling and roll.decode.options.frames_per_call == 2
    roll = Rollout.from_settings(wm, tok, ControllabilityConfig(keep_threshold=0.3, guidance_positions="hidden"))
    assert (roll.keep_threshold, roll.guidance_positions) == (0.3, "hidden")
    assert not roll.decode.options.fuse_upsampling  # no decoder setting: exact
    roll = Rollout.from_settings(wm, tok, WMEnvConfig(decoder="exact"), seed=9)  # no seed of its own
    assert roll.generator.initial_seed() == 9 and not roll.decode.options.fuse_upsampling


def test_imagine_goal_stops_at_the_first_done_frame():
    wm, tok = models("text")
    text = torch.randn(2, 5, 24)
    roll = Rollout(wm, tok)
    goal, steps, reached = roll.imagine_goal(frames(2), text, threshold=0.0, max_steps=6)
    assert steps.tolist() == [1, 1] and goal.shape == (2, 3, 16, 16)
    roll2 = Rollout(wm, tok)
    roll2.reset(frames(2), text)
    first = roll2.step().frames
    assert torch.allclose(goal, first)
    goal, steps, reached = Rollout(wm, tok).imagine_goal(frames(2), text, threshold=1.01, max_steps=4)  # never done
    assert steps.tolist() == [4, 4]
    with pytest.raises(ValueError, match="needs text"):
        Rollout(wm, tok).reset(frames(2))


def guided_steps(wm, guided: Rollout, actions: torch.Tensor):
    """Steps ``guided`` under ``actions`` and, beside it, the world model's conditional and
    unconditional passes, each with its own cached frames, both fed the guided rollout's tokens.
    Yields (the rollout's step, the conditional pass, the unconditional pass, the tokens both read)."""
    tokens = guided.reset(frames()).flatten(1)
    caches = {True: None, False: None}
    unconditional = {u: torch.full((3,), u) for u in caches}
    with torch.no_grad():
        for a in actions:
            step = guided.step(a)
            outs = {}
            for u in caches:
                outs[u], caches[u] = wm.step(tokens, a, caches[u], unconditional=unconditional[u])
            yield step, outs[False], outs[True], tokens
            tokens = step.tokens.flatten(1)


def test_guidance_decodes_the_unconditional_logits_moved_by_the_action_s_difference():
    """Classifier-free guidance: u + s (c - u), with c and u from two rollouts of their own cached
    frames that both take the guided tokens."""
    wm, tok = models(token_target="bits", action_dropout=0.2)
    actions = torch.rand(wm.cfg.window + 2, 3, 7, generator=torch.Generator().manual_seed(2)) * 2 - 1
    guided = Rollout(wm, tok, guidance=3.0)
    for step, cond, uncond, _ in guided_steps(wm, guided, actions):
        c, u = cond.logits[:, 0], uncond.logits[:, 0]
        assert not torch.allclose(c, u, atol=1e-3)  # the action matters
        assert torch.allclose(step.logits, u + 3.0 * (c - u), atol=1e-4)
        assert torch.allclose(step.done, cond.done[:, 0], atol=1e-5)  # the conditional pass's
    # guidance 1 is the conditional model alone, one pass: the cache holds the batch's rows once, not twice
    one = Rollout(wm, tok, guidance=1.0)
    one.reset(frames())
    one.step(actions[0])
    rows = 3 * wm.cfg.tokens_per_frame
    assert one._cache[0].k.shape[0] == rows and guided._cache[0].k.shape[0] == 2 * rows


def test_guidance_at_hidden_positions_guides_only_where_the_conditional_model_hides_motion():
    wm, tok = models(token_target="bits", action_dropout=0.2)
    actions = torch.rand(4, 3, 7, generator=torch.Generator().manual_seed(3)) * 2 - 1
    guided = Rollout(wm, tok, guidance=3.0, guidance_positions="hidden")
    counts = torch.zeros(2)
    for step, cond, uncond, tokens in guided_steps(wm, guided, actions):
        c, u = cond.logits[:, 0], uncond.logits[:, 0]
        hidden = hidden_motion(c, tokens, "bits")
        assert torch.allclose(step.logits, torch.where(hidden[..., None], u + 3.0 * (c - u), c), atol=1e-4)
        counts += torch.stack([hidden.sum(), (~hidden).sum()])
    assert (counts > 0).all(), counts  # some positions guided, others left to the conditional model
    with pytest.raises(ValueError, match="guidance_positions"):
        Rollout(wm, tok, guidance=2.0, guidance_positions="moving")


def test_guidance_by_the_instruction_moves_the_unconditional_logits_by_the_text_s_difference():
    """A text world model trained with text dropout: the guided step is u + s (c - u) of the passes
    with the instruction (its padding masked) and with the null instruction."""
    wm, tok = models("text", token_target="bits", text_dropout=0.2)
    text = torch.randn(3, 5, 24, generator=torch.Generator().manual_seed(5))
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2, [True] * 4 + [False]])
    guided = Rollout(wm, tok, guidance=2.5)
    tokens = guided.reset(frames(), text, mask).flatten(1)
    caches = {True: None, False: None}
    with torch.no_grad():
        for _ in range(wm.cfg.window + 2):
            step = guided.step()
            outs = {}
            for u in caches:
                outs[u], caches[u] = wm.step(tokens, text, caches[u], mask, unconditional=torch.full((3,), u))
            c, u = outs[False].logits[:, 0], outs[True].logits[:, 0]
            assert not torch.allclose(c, u, atol=1e-3)  # the instruction matters
            assert torch.allclose(step.logits, u + 2.5 * (c - u), atol=1e-4)
            assert torch.allclose(step.done, outs[False].done[:, 0], atol=1e-5)
            tokens = step.tokens.flatten(1)
    with pytest.raises(ValueError, match="trained with text dropout"):
        Rollout(*models("text"), guidance=2.0)


def test_guidance_needs_a_model_trained_with_action_dropout():
    wm, tok = models()
    with pytest.raises(ValueError, match="trained with action dropout"):
        Rollout(wm, tok, guidance=2.0)
    with pytest.raises(ValueError, match="guidance must be >= 0"):
        Rollout(*models(action_dropout=0.1), guidance=-1.0)
    Rollout(wm, tok, guidance=1.0)  # no guidance: any model


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_a_bf16_rollout_computes_the_world_model_in_bf16_and_hands_back_fp32(guidance):
    wm, tok = models(action_dropout=0.1)
    actions = torch.rand(3, 7, generator=torch.Generator().manual_seed(4)) * 2 - 1
    first = {}
    for precision in ("fp32", "bf16"):
        roll = Rollout(wm, tok, precision=precision, guidance=guidance)
        roll.reset(frames())
        first[precision] = roll.step(actions)  # the same tokens in: the first step compares like with like
    exact, bf16 = first["fp32"], first["bf16"]
    for name in ("logits", "done", "features", "frames"):
        assert getattr(bf16, name).dtype == torch.float32, name
    assert not torch.equal(exact.logits, bf16.logits)  # it did compute in bf16
    scale = exact.logits.abs().max()
    assert (exact.logits - bf16.logits).abs().max() < 0.05 * scale
    assert torch.allclose(exact.done, bf16.done, atol=0.02)
    with pytest.raises(ValueError, match="precision must be one of"):
        Rollout(wm, tok, precision="fp16")
    assert Rollout(wm, tok, precision="auto").precision == resolve_precision("auto", "cpu")


def test_a_bf16_rollout_warns_where_bf16_would_be_emulated(monkeypatch):
    monkeypatch.setattr(precision_module, "has_fast_bf16", lambda device_type: False)
    wm, tok = models()
    with pytest.warns(UserWarning, match="a bf16 world model is emulated"):
        Rollout(wm, tok, precision="bf16")
    assert Rollout(wm, tok, precision="auto").precision == "fp32"


@pytest.mark.parametrize(("decoder_context", "guidance"), [(False, 1.0), (True, 1.0), (True, 2.0)])
def test_resetting_one_environment_leaves_the_others_bit_identical(decoder_context, guidance):
    """Auto-reset in the world-model environment: one rollout starts afresh while the others go on."""
    wm, tok = models(token_target="bits", action_dropout=0.1 if guidance != 1 else 0.0)
    if decoder_context:
        tok = with_context_decoder(tok).eval()
    start, fresh = frames(3), frames(1)
    actions = [torch.randn(3, 7) * 0.5 for _ in range(wm.cfg.window + 3)]

    def run(reset_at: int | None):
        rollout = Rollout(wm, tok, temperature=0.0, guidance=guidance)
        rollout.reset(start)
        steps = []
        for t, a in enumerate(actions):
            if t == reset_at:
                rollout.reset_envs(torch.tensor([1]), fresh)
            steps.append(rollout.step(a))
        return steps

    plain, reset = run(None), run(2)
    for t in range(len(actions)):
        for env in (0, 2):
            assert torch.equal(plain[t].frames[env], reset[t].frames[env]), (t, env)
            assert torch.equal(plain[t].tokens[env], reset[t].tokens[env])
    # the reset environment continues as a rollout started from the fresh frame would (up to rounding)
    alone = Rollout(wm, tok, temperature=0.0, guidance=guidance)
    alone.reset(torch.cat([start[:1], fresh, start[2:]]))
    for t, a in enumerate(actions[2:]):
        step = alone.step(a)
        assert (step.tokens[1] == reset[t + 2].tokens[1]).float().mean() > 0.9
    with pytest.raises(ValueError, match="distinct indices"):
        alone.reset_envs(torch.tensor([1, 1]), torch.cat([fresh, fresh]))
    with pytest.raises(ValueError, match="2 environments but 1 frames"):
        alone.reset_envs(torch.tensor([0, 1]), fresh)
