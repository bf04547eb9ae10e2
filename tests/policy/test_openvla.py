"""The OpenVLA policy on a tiny random model of OpenVLA-7B's architecture: shapes, the 7-token
decode, action tokens, PPO's log-probabilities, LoRA, files, reference weights, PPO in both
environments."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from roboscape.policy.openvla import OpenVLAPolicy, OpenVLAPolicyConfig
from roboscape.policy.openvla.actions import ActionTokenizer
from roboscape.policy.openvla.model import LLAMA_7B, PrismaticVLA, VLAConfig, reference_key
from roboscape.rl.ppo import PPO, PPOArgs
from roboscape.rl.world_model_env import WMEnvConfig, WorldModelEnv

from fakes import TINY_VLA, env_world

INSTRUCTIONS = ["push the peach forward by 10 cm", "pick up the green bell pepper and place it on the plate"]
Q01, Q99 = [-0.02, -0.03, -0.01, -0.1, -0.1, -0.1, -1.0], [0.02, 0.03, 0.04, 0.1, 0.1, 0.1, 1.0]


def unit_rows(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=1)


def tiny_policy(lora_rank: int = 4, instruction_dim: int = 8, seed: int = 0, **kw) -> OpenVLAPolicy:
    torch.manual_seed(seed)
    cfg = OpenVLAPolicyConfig(
        vla=TINY_VLA,
        instructions=kw.pop("instructions", INSTRUCTIONS),
        instruction_dim=instruction_dim,
        action_q01=Q01,
        action_q99=Q99,
        lora_rank=lora_rank,
        value_hidden=32,
        **kw,
    )
    policy = OpenVLAPolicy(cfg).eval()
    policy.set_instructions(unit_rows(len(cfg.instructions), instruction_dim))
    return policy


def observations(policy: OpenVLAPolicy, n: int = 3, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=g)
    which = torch.arange(n) % len(policy.cfg.instructions)
    return {"rgb": frames, "prev_rgb": frames, "instruction": policy.instruction_table[which]}


def test_forward_shapes_and_a_seven_token_greedy_decode():
    policy = tiny_policy()
    vla_cfg = policy.cfg.vla_config
    obs = observations(policy)
    images = policy.vla.image_embeddings(obs["rgb"])
    assert images.shape == (3, (56 // 14) ** 2, 64) and policy.vla.patches == 16
    bins = policy.decode(obs, deterministic=True)
    assert bins.shape == (3, 7) and bins.dtype == torch.int64
    assert ((bins >= 0) & (bins < 255)).all()
    tokens = policy.actions.token_ids(bins)
    assert set(tokens.flatten().tolist()) <= set(vla_cfg.action_token_ids)
    # the cached one-token-at-a-time decode picks what the teacher-forced pass ranks first
    with torch.no_grad():
        log_probs, _, _ = policy.score(obs, bins)
        inputs, mask, positions = policy._sequence(obs, tokens)
        hidden = policy.vla.language_model.model(
            inputs_embeds=inputs, attention_mask=mask, position_ids=positions
        ).last_hidden_state
    assert torch.equal(policy._bin_log_probs(hidden[:, -8:-1]).argmax(-1), bins)
    assert (log_probs <= 0).all()


def test_rows_of_different_prompt_lengths_do_not_change_each_other():
    """Left padding: an observation scores the same alone and in a batch with a longer prompt."""
    policy = tiny_policy()
    obs = observations(policy, n=2)
    bins = torch.randint(0, 255, (2, 7), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        together, _, value = policy.score(obs, bins)
        alone, _, value_alone = policy.score({k: v[:1] for k, v in obs.items()}, bins[:1])
    torch.testing.assert_close(together[:1], alone, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(value[:1], value_alone, rtol=1e-4, atol=1e-5)


def test_action_tokens_round_trip():
    tokenizer = ActionTokenizer(Q01, Q99, text_vocab_size=32000)
    bins = torch.arange(255).repeat(7, 1).T  # every decodable bin in every dimension
    actions = tokenizer.actions(bins)
    assert torch.equal(tokenizer.bins(actions), bins)
    assert tokenizer.token_ids(bins).min() == 32000 - 255 and tokenizer.token_ids(bins).max() == 31999
    # OpenVLA's bins: q01 is the low edge of bin 0, q99 the high edge of the top bin, out-of-range clips
    low, high = torch.tensor(Q01), torch.tensor(Q99)
    assert tokenizer.bins(low[None]).tolist() == [[0] * 7]
    assert tokenizer.bins((high + 1)[None]).tolist() == [[254] * 7]
    assert torch.allclose(tokenizer.actions(torch.tensor([[127] * 7])), (low + high) / 2, atol=1e-6)


def test_the_first_ppo_ratio_is_exactly_one():
    policy = tiny_policy()
    obs = observations(policy, n=4)
    with torch.no_grad():
        out = policy.act(obs, generator=torch.Generator().manual_seed(0))
        log_prob, entropy, value = policy.evaluate(obs, out.action)
    assert torch.equal(log_prob, out.log_prob) and torch.equal(value, out.value)
    assert torch.equal((log_prob - out.log_prob).exp(), torch.ones(4))
    assert (entropy > 0).all()


def test_lora_weights_get_gradients_and_the_base_weights_stay_frozen():
    policy = tiny_policy(lora_rank=4).train()
    obs = observations(policy)
    bins = torch.randint(0, 255, (3, 7), generator=torch.Generator().manual_seed(2))
    log_prob, _, value = policy.evaluate(obs, policy.actions.actions(bins))
    (value.sum() - log_prob.sum()).backward()
    trainable = {n for n, p in policy.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("critic.") for n in trainable)
    assert any("q_proj.lora_B" in n for n in trainable) and any("projector.fc1.lora_A" in n for n in trainable)
    for name, param in policy.named_parameters():
        if name not in trainable:
            assert param.grad is None, name
        elif "lora_A" in name:  # LoRA's B starts at zero, so A's first gradient is zero too
            assert param.grad is not None, name
        else:
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_files_round_trip_and_an_unknown_instruction_is_refused(tmp_path):
    policy = tiny_policy()
    obs = observations(policy)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    policy.save_pretrained(tmp_path / "policy")
    loaded = OpenVLAPolicy.from_pretrained(tmp_path / "policy")
    assert loaded.cfg == policy.cfg
    with torch.no_grad():
        a = policy.act(obs, deterministic=True)
        b = loaded.act(obs, deterministic=True)
    assert torch.equal(a.action, b.action) and torch.equal(a.log_prob, b.log_prob)
    with pytest.raises(ValueError, match="none of the policy's instructions"):
        policy.act({**obs, "instruction": unit_rows(3, 8, seed=5)})
    meta = json.loads((tmp_path / "policy" / "config.json").read_text())
    meta["config"]["lora_rank"] = 8
    (tmp_path / "policy" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not fit"):
        OpenVLAPolicy.from_pretrained(tmp_path / "policy")


REFERENCE_KEYS = [  # names in openvla/openvla-7b's model.safetensors.index.json
    "language_model.lm_head.weight",
    "language_model.model.embed_tokens.weight",
    "language_model.model.layers.0.self_attn.q_proj.weight",
    "language_model.model.layers.0.mlp.down_proj.weight",
    "language_model.model.layers.1.post_attention_layernorm.weight",
    "language_model.model.norm.weight",
    "projector.fc1.weight",
    "projector.fc2.bias",
    "projector.fc3.weight",
    "vision_backbone.featurizer.cls_token",
    "vision_backbone.featurizer.reg_token",
    "vision_backbone.featurizer.pos_embed",
    "vision_backbone.featurizer.patch_embed.proj.weight",
    "vision_backbone.featurizer.blocks.0.ls1.scale_factor",
    "vision_backbone.featurizer.blocks.2.attn.qkv.weight",
    "vision_backbone.fused_featurizer.attn_pool.latent",
    "vision_backbone.fused_featurizer.blocks.0.mlp.fc1.weight",
]


def test_a_checkpoint_in_openvlas_layout_loads(tmp_path):
    """A tiny checkpoint under the reference names, in two shards with an index, as the hub has it."""
    torch.manual_seed(7)
    source = PrismaticVLA(VLAConfig(**TINY_VLA))
    state = {reference_key(k): v.clone() for k, v in source.state_dict().items()}
    assert set(REFERENCE_KEYS) <= set(state)
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(tmp_path / file))
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    from roboscape.policy.openvla.model import load_reference_weights, read_reference_state

    target = PrismaticVLA(VLAConfig(**TINY_VLA))
    load_reference_weights(target, read_reference_state(tmp_path))
    for k, v in source.state_dict().items():
        assert torch.equal(target.state_dict()[k], v), k
    del state["projector.fc3.weight"]
    with pytest.raises(ValueError, match="1 missing"):
        load_reference_weights(target, state)
    with pytest.raises(FileNotFoundError, match="openvla/openvla-7b"):
        read_reference_state(tmp_path / "nowhere")


def test_the_full_size_architecture_is_openvla_7b():
    """Built on the meta device (no memory): OpenVLA-7B's 7.54 billion parameters and its shapes."""
    with torch.device("meta"):
        vla = PrismaticVLA(VLAConfig())
    state = {reference_key(k): v for k, v in vla.state_dict().items()}
    assert set(REFERENCE_KEYS) <= set(state)
    assert 7.5e9 < sum(p.numel() for p in vla.parameters()) < 7.6e9
    assert state["language_model.model.embed_tokens.weight"].shape == (LLAMA_7B["vocab_size"], 4096)
    assert state["projector.fc1.weight"].shape == (4 * 2176, 2176)  # DINOv2-L 1024 + SigLIP-so400m 1152
    assert state["vision_backbone.featurizer.pos_embed"].shape == (1, 256, 1024)
    assert vla.patches == 256


def test_one_ppo_update_in_the_world_model(tmp_path):
    wm, tok, states = env_world()
    texts = [f"instruction {i}" for i in range(len(states.instructions))]
    policy = tiny_policy(instructions=texts, lora_rank=4)
    policy.set_instructions(torch.as_tensor(states.instructions))
    env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2, episode_steps=3), _StepReward())
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if p.requires_grad}
    args = PPOArgs(total_steps=8, num_steps=4, update_epochs=1, num_minibatches=2, checkpoint_every=1)
    result = PPO(policy, env, args, tmp_path).train(progress=False)
    assert result["updates"] == 1
    changed = [n for n, p in policy.named_parameters() if p.requires_grad and not torch.equal(p, before[n])]
    assert any("lora_" in n for n in changed) and any(n.startswith("critic.") for n in changed)


class _StepReward:
    def reset(self, envs, goals):
        pass

    def __call__(self, frames, done, tokens):
        return torch.ones(frames.shape[0])


@pytest.mark.slow
def test_one_ppo_update_in_maniskill(tmp_path):
    from roboscape.rl.maniskill import SimEnvConfig, make_envs
    from roboscape.sim.catalogue import TASKS, build_catalogue, instruction

    scenes = [s for s in build_catalogue(0, list(TASKS), 1, 1).scenes if s.task == "push" and s.split == "ind"]
    text = instruction(scenes[0])
    embedding = unit_rows(1, 8, seed=4)
    policy = tiny_policy(instructions=[text], lora_rank=4)
    policy.set_instructions(embedding)
    cfg = SimEnvConfig(num_envs=1, asynchronous=False, frame_skip=4, episode_steps=3, image_size=32)
    envs = make_envs(scenes[:1], {text: embedding[0].numpy().astype(np.float32)}, cfg)
    try:
        args = PPOArgs(total_steps=4, num_steps=4, update_epochs=1, num_minibatches=1, checkpoint_every=1)
        result = PPO(policy, envs, args, tmp_path).train(progress=False)
    finally:
        envs.close()
    assert result["updates"] == 1 and (tmp_path / "metrics.csv").exists()


def test_openvla_7b_without_its_weights_or_a_gpu_stops_saying_what_it_needs(tmp_path):
    with pytest.raises(RuntimeError, match="needs its pretrained weights.*policy.openvla.weights"):
        OpenVLAPolicy(OpenVLAPolicyConfig())
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="needs a GPU"):
            OpenVLAPolicy(OpenVLAPolicyConfig(weights=str(tmp_path)))


def test_ppo_checkpoints_keep_what_training_changes_and_resume_from_it(tmp_path):
    """Over downloaded weights (here: a random base standing in for them) a checkpoint holds the LoRA
    weights and the value head, not the frozen base, and a resumed run picks them up."""
    wm, tok, states = env_world()
    texts = [f"instruction {i}" for i in range(len(states.instructions))]

    def agent():
        policy = tiny_policy(instructions=texts, lora_rank=4)
        policy.set_instructions(torch.as_tensor(states.instructions))
        policy.cfg.weights = "downloaded"  # what trained_state() keys on; the base stays the seeded random one
        return policy

    def ppo(policy, out):
        env = WorldModelEnv(wm, tok, states, WMEnvConfig(num_envs=2, episode_steps=3), _StepReward())
        args = PPOArgs(total_steps=16, num_steps=4, update_epochs=1, num_minibatches=2, checkpoint_every=1)
        return PPO(policy, env, args, out)

    trained = agent()
    ppo(trained, tmp_path).train(stop_after=1, progress=False)
    (checkpoint,) = (tmp_path / "checkpoints").glob("update_*.pt")
    saved = torch.load(checkpoint, weights_only=False)["agent"]
    assert set(saved) == set(trained.trained_state()) and len(saved) < len(trained.state_dict())
    assert all("lora_" in k or k.startswith("critic.") or k == "instruction_table" for k in saved)
    resumed = agent()
    run = ppo(resumed, tmp_path)
    assert run.resume() and run.update == 1
    for k, v in trained.trained_state().items():
        assert torch.equal(resumed.state_dict()[k], v), k
