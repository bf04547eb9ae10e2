"""The spatial-temporal world model: causality, KV cache, learning, configs and errors."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.world_model import (
    WorldModel,
    WorldModelConfig,
    bits_to_tokens,
    hidden_motion,
    keep_or_change,
    one_query_attention,
    predict_tokens,
    token_bits,
    token_nll,
    world_model_loss,
)

from fakes import with_random_clock


def test_one_query_attention_is_scaled_dot_product_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(50, 4, 1, 8, generator=g),
        torch.randn(50, 4, 6, 8, generator=g),
        torch.randn(50, 4, 6, 8, generator=g),
    )
    mask = torch.rand(50, 1, 1, 6, generator=g) > 0.5
    mask[:, ..., 3] = True  # every query keeps a key
    for m in (None, mask):
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
        assert torch.allclose(one_query_attention(q, k, v, m), expected, atol=1e-6)
    # masked keys are ignored, whatever they hold
    k2 = torch.where(mask.transpose(-1, -2), k, 1e4)
    assert torch.allclose(one_query_attention(q, k2, v, mask), one_query_attention(q, k, v, mask), atol=1e-6)


def small(control: str = "action", **kw) -> WorldModel:
    torch.manual_seed(0)
    kw = {"token_target": "codes", **kw}
    cfg = WorldModelConfig(
        codebook_size=32, tokens_hw=3, window=5, dim=32, depth=2, heads=4, control=control, text_dim=24, **kw
    )
    return WorldModel(cfg).eval()


def inputs(model: WorldModel, B: int = 2, T: int = 5):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, model.cfg.codebook_size, (B, T, model.cfg.tokens_per_frame), generator=g)
    if model.cfg.control == "action":
        control = torch.randn(B, T, model.cfg.action_dim, generator=g)
    else:
        control = torch.randn(B, 7, model.cfg.text_dim, generator=g)
    return tokens, control


@pytest.mark.parametrize(("control", "token_target"), [("action", "codes"), ("text", "codes"), ("action", "bits")])
def test_changing_frame_t_plus_1_never_changes_predictions_up_to_t(control, token_target):
    model = small(control, token_target=token_target)
    tokens, ctrl = inputs(model)
    base = model(tokens, ctrl)
    for t in range(tokens.shape[1] - 1):
        changed = tokens.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 7) % model.cfg.codebook_size
        ctrl2 = ctrl.clone()
        if control == "action":
            ctrl2[:, t + 1 :] += 3.0  # future actions must not leak either
        out = model(changed, ctrl2)
        assert torch.allclose(out.logits[:, : t + 1], base.logits[:, : t + 1], atol=1e-5)
        assert torch.allclose(out.done[:, : t + 1], base.done[:, : t + 1], atol=1e-6)
        assert not torch.allclose(out.logits[:, t + 1 :], base.logits[:, t + 1 :], atol=1e-5)


@pytest.mark.parametrize(
    ("control", "extra"),
    [
        ("action", {}),
        ("text", {}),
        ("action", {"copy_prior": True}),
        ("text", {"token_target": "bits"}),
        ("text", {"episode_clock": 6}),
    ],
)
def test_kv_cached_rollout_equals_uncached(control, extra):
    model = small(control, **extra)
    if model.cfg.episode_clock:
        with_random_clock(model)
    W = model.cfg.window
    tokens, ctrl = inputs(model, T=W + 4)  # past the window: the cache slides
    clock = torch.arange(tokens.shape[1]).expand(tokens.shape[0], -1) + torch.tensor([[0], [2]])
    cache, outs = None, []
    for t in range(tokens.shape[1]):
        c_t = ctrl[:, t] if control == "action" else ctrl
        out, cache = model.step(tokens[:, t], c_t, cache, clock_t=clock[:, t])
        outs.append(out)
        assert all(layer.k.shape[2] == W for layer in cache)  # preallocated for the window, never grows
    ref = model(tokens, ctrl, clock=clock)  # uncached, one pass, sliding-window causal attention
    for t, out in enumerate(outs):
        assert torch.allclose(out.logits[:, 0], ref.logits[:, t], atol=1e-5), t
        assert torch.allclose(out.done[:, 0], ref.done[:, t], atol=1e-6), t


@pytest.mark.parametrize("token_target", ["codes", "bits"])
def test_overfits_one_batch_and_done_head_learns_a_signal(token_target):
    model = small(dropout=0.0, token_target=token_target).train()
    tokens, ctrl = inputs(model, B=4, T=5)
    # a synthetic done signal that depends on the frame: done when its first token is even
    done = (tokens[:, :, 0] % 2 == 0).float()
    assert 0 < done[:, 1:].mean() < 1
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        losses = world_model_loss(model(tokens, ctrl), tokens, done, token_target)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = first or {k: float(v.detach()) for k, v in losses.items()}
    model.eval()
    out = model(tokens, ctrl)
    acc = (predict_tokens(out.logits[:, :-1], token_target) == tokens[:, 1:]).float().mean()
    assert acc > 0.95, f"teacher-forced token accuracy {acc:.2f} after overfitting"
    assert float(losses["token_ce"]) < 0.1 * first["token_ce"]
    assert ((out.done[:, :-1] > 0.5).float() == done[:, 1:]).float().mean() == 1.0  # d_t+1 predicted with x_t+1
    assert float(losses["done_rmse"]) < 0.15


@pytest.mark.parametrize("token_target", ["codes", "bits"])
def test_changed_token_weight_weighs_the_tokens_that_move(token_target):
    model = small(token_target=token_target)
    tokens, ctrl = inputs(model, B=2, T=4)
    tokens[:, 1:, :4] = tokens[:, :1, :4]  # these positions keep their token; the rest change (almost surely)
    out, done = model(tokens, ctrl), torch.zeros(tokens.shape[:2])
    nll = token_nll(out.logits[:, :-1], tokens[:, 1:], token_target)
    changed = tokens[:, 1:] != tokens[:, :-1]
    assert changed.any() and (~changed).any()
    plain = world_model_loss(out, tokens, done, token_target)
    weighted = world_model_loss(out, tokens, done, token_target, changed_token_weight=5.0)
    expected = (5.0 * nll[changed].sum() + nll[~changed].sum()) / (5.0 * changed.sum() + (~changed).sum())
    assert torch.allclose(weighted["loss"] - weighted["done_rmse"], expected, atol=1e-6)
    assert torch.allclose(plain["loss"] - plain["done_rmse"], nll.mean(), atol=1e-6)
    assert torch.equal(weighted["token_ce"], plain["token_ce"])  # reported unweighted, comparable between runs


def test_the_copy_prior_starts_from_nothing_moves_and_is_learned():
    with_prior, without = small(copy_prior=True), small()
    tokens, ctrl = inputs(without)
    kept = (with_prior(tokens, ctrl).logits.argmax(-1) == tokens).float().mean()
    assert kept > 0.9, f"an untrained model with the copy prior keeps only {kept:.2f} of the tokens"
    assert (without(tokens, ctrl).logits.argmax(-1) == tokens).float().mean() < 0.2
    world_model_loss(with_prior(tokens, ctrl), tokens, torch.zeros(tokens.shape[:2]), "codes")["loss"].backward()
    assert with_prior.copy_logit.grad is not None and with_prior.copy_logit.grad != 0


def test_bit_targets_score_codes_by_a_normalised_factorised_distribution():
    tokens = torch.arange(32)
    assert torch.equal(bits_to_tokens(token_bits(tokens, 5)), tokens)
    assert token_bits(torch.tensor(6), 5).tolist() == [False, True, True, False, False]
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(0))  # 3 positions, 5 bits
    nll = token_nll(logits[:, None].expand(-1, 32, -1), tokens.expand(3, -1), "bits")  # every code at every position
    assert torch.allclose(torch.exp(-nll).sum(-1), torch.ones(3), atol=1e-5)  # a distribution over the 32 codes
    assert torch.equal(predict_tokens(logits, "bits"), tokens[torch.exp(-nll).argmax(-1)])  # greedy bits = the mode
    sampled = predict_tokens(logits[:1].expand(20000, -1), "bits", 1.0, torch.Generator().manual_seed(1))
    frequency = torch.bincount(sampled, minlength=32).float() / 20000
    assert torch.allclose(frequency, torch.exp(-nll[0]), atol=0.02)


@pytest.mark.parametrize("token_target", ["codes", "bits"])
@pytest.mark.parametrize("threshold", [0.25, 0.5])
def test_keep_or_change_keeps_what_greedy_keeps_at_odds_of_threshold_else_takes_the_likeliest_other(
    token_target, threshold
):
    g = torch.Generator().manual_seed(0)
    n = 16  # codes
    logits = torch.randn(200, 4 if token_target == "bits" else n, generator=g) * 2
    previous = torch.randint(0, n, (200,), generator=g)
    chosen = keep_or_change(logits, previous, token_target, threshold)
    codes = torch.arange(n)
    log_p = -token_nll(logits[:, None].expand(-1, n, -1), codes.expand(200, -1), token_target)  # (200, n)
    greedy = predict_tokens(logits, token_target)
    keep = (greedy == previous) & (log_p.gather(-1, previous[:, None]).squeeze(-1).exp() >= threshold)
    other = log_p.scatter(-1, previous[:, None], -torch.inf).argmax(-1)
    assert torch.equal(chosen, torch.where(keep, previous, other))
    assert 0 < keep.float().mean() < (greedy == previous).float().mean()  # it moves some of what greedy keeps
    assert torch.equal(predict_tokens(logits, token_target, previous=previous, keep_threshold=threshold), chosen)
    assert torch.equal(predict_tokens(logits, token_target, previous=previous), greedy)  # threshold 0: greedy


def test_keep_or_change_moves_a_token_every_bit_favours_but_their_product_does_not():
    logits = torch.full((1, 4), -0.4).index_fill(1, torch.tensor([2]), -0.1)  # each bit 0.52-0.6 for code 0
    assert predict_tokens(logits, "bits") == 0
    assert keep_or_change(logits, torch.tensor([0]), "bits", 0.5) == 4  # the least certain bit flipped
    assert keep_or_change(logits, torch.tensor([0]), "bits", 0.1) == 0  # 0.6**3 * 0.52 = 0.11 >= 0.1


@pytest.mark.parametrize("token_target", ["codes", "bits"])
def test_hidden_motion_is_where_greedy_keeps_a_token_at_less_than_even_odds(token_target):
    g = torch.Generator().manual_seed(1)
    n = 16  # codes
    logits = torch.randn(300, 4 if token_target == "bits" else n, generator=g) * 2
    previous = torch.randint(0, n, (300,), generator=g)
    p_keep = torch.exp(-token_nll(logits, previous, token_target))
    expected = (predict_tokens(logits, token_target) == previous) & (p_keep < 0.5)
    hidden = hidden_motion(logits, previous, token_target)
    assert torch.equal(hidden, expected)
    assert hidden.any() and not hidden.all()
    # every bit favours code 0, their product does not
    one = torch.full((1, 4), -0.4).index_fill(1, torch.tensor([2]), -0.1)
    assert hidden_motion(one, torch.tensor([0]), "bits").item()
    assert not hidden_motion(torch.full((1, 4), -3.0), torch.tensor([0]), "bits").item()  # a sure keep


@pytest.mark.parametrize("control", ["action", "text"])
def test_control_dropout_gives_training_sequences_the_null_control_and_leaves_evaluation_alone(control):
    model = small(control, **{f"{control}_dropout": 0.5}).train()
    with torch.no_grad():
        model.null_control.normal_()
    tokens, ctrl = inputs(model, B=6)
    other = -ctrl  # every action (instruction) differs (a shift would not: text passes a LayerNorm first)

    def logits(control):
        torch.manual_seed(0)  # the same sequences dropped
        return model(tokens, control).logits

    torch.manual_seed(0)
    dropped = torch.rand(6) < 0.5
    assert dropped.any() and (~dropped).any()
    same = (logits(ctrl) - logits(other)).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert torch.equal(same, dropped)  # a dropped sequence's prediction does not see its control
    with torch.no_grad():  # the null control is the unconditional prediction guidance uses
        unconditional = model.eval().encode_control(ctrl, 5, torch.ones(6, dtype=torch.bool))
        width = model.cfg.control_tokens if control == "action" else ctrl.shape[1]
        assert torch.equal(unconditional, model.null_control.expand(6, 5, width, -1))
        assert not torch.equal(model(tokens, ctrl).logits, model(tokens, other).logits)  # evaluation: no dropout
    with pytest.raises(ValueError, match=f"no null {control}"):
        small(control).encode_control(ctrl, 5, torch.ones(6, dtype=torch.bool))
    with pytest.raises(ValueError, match=f"{control}_dropout must be in"):
        WorldModelConfig(control=control, **{f"{control}_dropout": 1.0})
    other_control = "text" if control == "action" else "action"
    with pytest.raises(ValueError, match=f"for an? {control} world model"):
        WorldModelConfig(control=other_control, **{f"{control}_dropout": 0.1})


def test_the_episode_clock_starts_as_the_model_without_it_then_tells_episode_steps_apart():
    plain, clocked = small("text"), small("text", episode_clock=4)
    tokens, ctrl = inputs(clocked)
    clock = torch.arange(5).expand(2, -1)
    # initialised to zero: a warm start begins as the model it starts from
    assert torch.equal(clocked(tokens, ctrl, clock=clock).logits, plain(tokens, ctrl).logits)
    assert torch.equal(plain(tokens, ctrl, clock=clock).logits, plain(tokens, ctrl).logits)  # ignored without one
    with_random_clock(clocked)
    same_frames = tokens[:, :1].expand(-1, 5, -1)  # one frame repeated: only the clock tells them apart
    out = clocked(same_frames, ctrl, clock=clock).logits
    assert not torch.allclose(out[:, 0], out[:, 1], atol=1e-4)
    # steps from episode_clock - 1 on share its embedding
    late = clocked(same_frames, ctrl, clock=clock.clamp(min=3) + torch.tensor([0, 5, 9, 20, 40])).logits
    assert torch.allclose(late[:, 4], clocked(same_frames, ctrl, clock=torch.full((2, 5), 3)).logits[:, 4], atol=1e-5)
    with pytest.raises(ValueError, match="pass clock"):
        clocked(tokens, ctrl)
    with pytest.raises(ValueError, match="expected clock"):
        clocked(tokens, ctrl, clock=clock[:, :3])
    with pytest.raises(ValueError, match=">= 0"):
        clocked(tokens, ctrl, clock=clock - 1)
    with pytest.raises(ValueError, match="episode_clock must be >= 0"):
        WorldModelConfig(episode_clock=-1)


def test_config_round_trip(tmp_path):
    cfg = WorldModelConfig(
        codebook_size=1000, tokens_hw=8, window=12, control="text", text_dim=384, token_target="codes"
    )
    cfg.save(tmp_path / "wm.json")
    assert WorldModelConfig.load(tmp_path / "wm.json") == cfg
    with pytest.raises(ValueError, match="unknown control"):
        WorldModelConfig(control="joystick")
    with pytest.raises(ValueError, match="heads"):
        WorldModelConfig(dim=30, heads=4, token_target="codes")
    with pytest.raises(ValueError, match="power-of-two"):
        WorldModelConfig(codebook_size=1000, token_target="bits")  # an FSQ codebook has no sign bits
    with pytest.raises(ValueError, match="copy_prior"):
        WorldModelConfig(token_target="bits", copy_prior=True)
    with pytest.raises(ValueError, match="token_target"):
        WorldModelConfig(token_target="pixels")
    assert WorldModelConfig().token_target == "bits"  # the default: needs an LFQ (power-of-two) codebook


def test_bad_inputs_get_clear_errors():
    model = small()
    tokens, ctrl = inputs(model)
    with pytest.raises(ValueError, match=r"tokens \(B, T, 9\)"):
        model(tokens[:, :, :4], ctrl)
    with pytest.raises(ValueError, match="integers"):
        model(tokens.float(), ctrl)
    with pytest.raises(ValueError, match="token ids"):
        model(tokens + 100, ctrl)
    with pytest.raises(ValueError, match="actions"):
        model(tokens, ctrl[..., :6])
    with pytest.raises(ValueError, match="NaN"):
        model(tokens, ctrl * float("nan"))
