"""The OpenVLA policy: the Prismatic VLA of :mod:`.model` behind the MLP policy's interface
(``act`` / ``evaluate`` / ``value`` / ``critic`` / ``save_pretrained``), so SFT, PPO, both
environments and ``eval_policy`` run it unchanged.

- **Observations** are the policy environments' (:mod:`roboscape.sim.policy_env`): the current
  third-view frame (OpenVLA reads one image; ``prev_rgb`` is not used), resized to the backbones'
  resolution, and the instruction's sentence embedding, which the policy maps back to the text it
  was made from (the policy keeps its instructions and their embeddings).
- **Prompt:** OpenVLA's, ``In: What action should the robot take to {instruction}?\\nOut:``.
- **Actions:** 7 tokens decoded one at a time with the key-value cache, sampled (or, with
  ``deterministic``, the most likely) among the action tokens only
  (:class:`~roboscape.policy.openvla.actions.ActionTokenizer`).
- **Log-probabilities** (RL4VLA's): the sum over the 7 tokens of the log-softmax over the action
  logits. ``act`` scores the tokens it sampled with the same teacher-forced pass ``evaluate`` uses,
  so PPO's first ratio is exactly 1.
- **Value head:** an MLP on the last hidden state before the first action token (RL4VLA's).
- **LoRA** (peft) on the language model's and the projector's linear layers; the base weights are
  frozen. ``lora_rank: 0`` trains every weight instead (the tiny random models of the tests).
- **Weights:** with ``weights`` set, the base model loads from a local copy of
  ``openvla/openvla-7b`` and the policy's own files hold only what training changes (LoRA and the
  value head); without, the model is random (tests) and its files hold every weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from roboscape.models.pretrained import Pretrained
from roboscape.policy.mlp import ACTION_DIM, ActOutput
from roboscape.policy.openvla.actions import ActionTokenizer
from roboscape.policy.openvla.model import (
    PrismaticVLA,
    VLAConfig,
    load_reference_weights,
    read_reference_state,
)
from roboscape.utils.config import JsonConfig

PROMPT = "In: What action should the robot take to {}?\nOut:"
LORA_TARGETS = r".*(language_model\..*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)|projector\.fc[123])"
BYTE_TOKENS = 256  # the byte tokenizer's ids: 0-255 bytes, then BOS


class ByteTokenizer:
    """UTF-8 bytes with a BOS first: the tokenizer of random test models, which have no Llama vocabulary."""

    bos = BYTE_TOKENS
    vocab_size = BYTE_TOKENS + 1

    def encode(self, text: str) -> list[int]:
        return [self.bos, *text.encode("utf-8")]


class LlamaPromptTokenizer:
    """The checkpoint's own Llama tokenizer; like OpenVLA's ``predict_action``, a prompt ends with
    the empty-piece token 29871."""

    END = 29871

    def __init__(self, weights_dir: str):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(weights_dir)
        self.vocab_size = self.tokenizer.vocab_size

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        return ids if ids[-1] == self.END else [*ids, self.END]


@dataclass
class OpenVLAPolicyConfig(JsonConfig):
    """The OpenVLA policy (see the module docstring)."""

    vla: dict = field(default_factory=dict)
    """:class:`~roboscape.policy.openvla.model.VLAConfig` fields (empty: OpenVLA-7B's sizes)"""
    weights: str | None = None
    """a local copy of ``openvla/openvla-7b`` (its safetensors shards and tokenizer); null: random
    weights and the byte tokenizer"""
    instructions: list[str] = field(default_factory=list)
    """the instructions the policy may be given, in the order of their embeddings"""
    instruction_dim: int = 384
    """width of the observations' instruction embeddings"""
    action_q01: list[float] = field(default_factory=lambda: [-1.0] * ACTION_DIM)
    """per-dimension 1st percentile of the training actions: action bin -1"""
    action_q99: list[float] = field(default_factory=lambda: [1.0] * ACTION_DIM)
    """per-dimension 99th percentile of the training actions: action bin +1"""
    lora_rank: int = 32
    """LoRA's rank (RL4VLA's 32); 0: no LoRA, every weight trains"""
    lora_alpha: int = 32
    """LoRA's scaling numerator"""
    value_hidden: int = 512
    """width of the value head's hidden layers"""
    dtype: str = "float32"
    """the VLA's weights: float32 or bfloat16 (the value head stays float32)"""

    def __post_init__(self):
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {self.dtype!r}")
        if len(self.action_q01) != ACTION_DIM or len(self.action_q99) != ACTION_DIM:
            raise ValueError(f"action_q01 and action_q99 need {ACTION_DIM} entries")
        if self.lora_rank < 0:
            raise ValueError("lora_rank must be >= 0")

    @property
    def vla_config(self) -> VLAConfig:
        return VLAConfig(**self.vla)


def check_resources(cfg: OpenVLAPolicyConfig) -> None:
    """OpenVLA-7B's sizes need the pretrained weights and a GPU: stop with what is missing. (Random
    weights are for reduced sizes, ``vla``, as the tests build.)"""
    if cfg.vla_config != VLAConfig():
        return
    if not cfg.weights:
        raise RuntimeError(
            "OpenVLA-7B needs its pretrained weights: download openvla/openvla-7b (about 15 GB; "
            "huggingface-cli download openvla/openvla-7b --local-dir DIR) and set policy.openvla.weights to DIR"
        )
    if not torch.cuda.is_available():
        raise RuntimeError(
            "OpenVLA-7B needs a GPU (bf16; 40-80 GB of GPU memory for LoRA-PPO) and none is visible here "
            "(torch.cuda.is_available() is False): run config/openvla.yaml on a GPU node"
        )


class OpenVLAPolicy(nn.Module, Pretrained):
    KIND = "openvla_policy"
    CONFIG = OpenVLAPolicyConfig

    def __init__(self, cfg: OpenVLAPolicyConfig, random_full_size: bool = False):
        """``random_full_size``: allow OpenVLA-7B's sizes with random weights and no GPU (benchmarks
        of memory and speed, which do not depend on the weights)."""
        super().__init__()
        self.cfg = cfg
        vla_cfg = cfg.vla_config
        if not random_full_size:
            check_resources(cfg)
        self.prompt_tokenizer = LlamaPromptTokenizer(cfg.weights) if cfg.weights else ByteTokenizer()
        if self.prompt_tokenizer.vocab_size > vla_cfg.text_vocab_size - vla_cfg.n_action_bins and not cfg.weights:
            raise ValueError(
                f"the byte tokenizer's {self.prompt_tokenizer.vocab_size} ids overlap the action tokens: "
                f"text_vocab_size must be at least {self.prompt_tokenizer.vocab_size + vla_cfg.n_action_bins}"
            )
        dtype, previous = getattr(torch, cfg.dtype), torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # a 7B model is built in its training precision, not float32
        try:
            self.vla = PrismaticVLA(vla_cfg)
        finally:
            torch.set_default_dtype(previous)
        if cfg.weights:
            load_reference_weights(self.vla, read_reference_state(cfg.weights))
        if cfg.lora_rank:
            from peft import LoraConfig, inject_adapter_in_model

            lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, target_modules=LORA_TARGETS)
            inject_adapter_in_model(lora, self.vla)
            for name, param in self.vla.named_parameters():
                param.requires_grad = "lora_" in name
        self.vla.to(dtype)
        width = self.vla.language_model.config.hidden_size
        self.critic = nn.Sequential(
            nn.Linear(width, cfg.value_hidden),
            nn.GELU(),
            nn.Linear(cfg.value_hidden, cfg.value_hidden),
            nn.GELU(),
            nn.Linear(cfg.value_hidden, 1),
        )
        self.actions = ActionTokenizer(cfg.action_q01, cfg.action_q99, vla_cfg.text_vocab_size, vla_cfg.n_action_bins)
        # the instructions' embeddings, to read an observation's instruction back as text
        self.register_buffer("instruction_table", torch.zeros(len(cfg.instructions), cfg.instruction_dim))
        self._prompts = [self.prompt_tokenizer.encode(PROMPT.format(text.lower())) for text in cfg.instructions]
        ids = torch.tensor(list(vla_cfg.action_token_ids))
        # the decodable bins' token ids, bin 0 first
        self.register_buffer("bin_token_ids", ids.flip(0)[: self.actions.decodable_bins], persistent=False)

    def check_space(self, space) -> None:
        """A clear error when an environment's observations are not what the policy takes (any frame
        size: frames are resized to the backbones')."""
        frame, text = space["rgb"].shape, space["instruction"].shape
        if len(frame) != 3 or frame[-1] != 3 or text != (self.cfg.instruction_dim,):
            raise ValueError(
                f"the policy takes RGB frames and {self.cfg.instruction_dim}-d instructions; the environment gives "
                f"{frame} frames and {text} instructions"
            )

    def set_instructions(self, embeddings: torch.Tensor) -> None:
        """The embeddings of ``cfg.instructions``, in order (K, instruction_dim)."""
        self.instruction_table.copy_(torch.as_tensor(embeddings, dtype=torch.float32))

    # ------------------------------------------------------------------ inputs
    def instruction_index(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Which of the policy's instructions each row of ``embeddings`` is (they are unit vectors)."""
        if not len(self.cfg.instructions):
            raise ValueError("the policy knows no instructions (cfg.instructions is empty)")
        if embeddings.dim() != 2 or embeddings.shape[1] != self.cfg.instruction_dim:
            raise ValueError(
                f"obs['instruction'] must be (N, {self.cfg.instruction_dim}), got {tuple(embeddings.shape)}"
            )
        similarity = embeddings.float().to(self.instruction_table.device) @ self.instruction_table.T
        best, index = similarity.max(dim=1)
        if (best < 0.999).any():
            raise ValueError("an observation's instruction is none of the policy's instructions")
        return index

    def _sequence(
        self, obs: dict[str, torch.Tensor], action_ids: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input embeddings, attention mask and positions of ``[BOS, image patches, prompt, action
        tokens]`` per observation, left-padded so every row's prefix ends at the same position."""
        frames = obs["rgb"]
        if frames.dim() != 4 or frames.shape[-1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"obs['rgb'] must be uint8 (N, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
        images = self.vla.image_embeddings(frames)
        embed = self.vla.language_model.get_input_embeddings()
        device = images.device
        rows = []
        for i, k in enumerate(self.instruction_index(obs["instruction"]).tolist()):
            ids = torch.tensor(self._prompts[k], device=device)
            if action_ids is not None:
                ids = torch.cat([ids, action_ids[i].to(device)])
            text = embed(ids)
            rows.append(torch.cat([text[:1], images[i], text[1:]]))
        length = max(len(r) for r in rows)
        width = rows[0].shape[1]
        inputs = torch.zeros(len(rows), length, width, dtype=images.dtype, device=device)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        for i, row in enumerate(rows):
            inputs[i, length - len(row) :] = row
            mask[i, length - len(row) :] = 1
        positions = (mask.cumsum(1) - 1).clamp_min(0)
        return inputs, mask, positions

    def _bin_log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """Log-softmax over the decodable action bins of the LM head's logits at ``hidden``."""
        logits = self.vla.language_model.lm_head(hidden)[..., self.bin_token_ids]
        return torch.log_softmax(logits.float(), dim=-1)

    # ------------------------------------------------------------------ the interface
    def score(
        self, obs: dict[str, torch.Tensor], bins: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher-forced: per-token log-probabilities (N, 7) and entropies (N, 7) of the action
        ``bins``, and the value (N,)."""
        token_ids = self.actions.token_ids(bins)
        inputs, mask, positions = self._sequence(obs, token_ids)
        hidden = self.vla.language_model.model(
            inputs_embeds=inputs, attention_mask=mask, position_ids=positions
        ).last_hidden_state
        before = hidden[:, -ACTION_DIM - 1 : -1]  # the positions that predict the 7 action tokens
        log_probs = self._bin_log_probs(before)
        chosen = log_probs.gather(-1, bins.to(log_probs.device).unsqueeze(-1)).squeeze(-1)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        value = self.critic(before[:, 0].float()).squeeze(-1)
        return chosen, entropy, value

    def forward(
        self, obs: dict[str, torch.Tensor], bins: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`score` (what SFT trains through, so that DistributedDataParallel sees the call)."""
        return self.score(obs, bins)

    @torch.no_grad()
    def decode(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(N, 7) action bins, decoded one token at a time with the key-value cache."""
        inputs, mask, positions = self._sequence(obs, None)
        lm = self.vla.language_model
        out = lm.model(inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=True)
        bins = []
        for _ in range(ACTION_DIM):
            log_probs = self._bin_log_probs(out.last_hidden_state[:, -1])
            if deterministic:
                chosen = log_probs.argmax(-1)
            else:
                chosen = torch.multinomial(log_probs.exp().cpu(), 1, generator=generator).squeeze(-1)
            bins.append(chosen.cpu())
            if len(bins) == ACTION_DIM:
                break
            token = lm.get_input_embeddings()(self.actions.token_ids(chosen.to(inputs.device)))[:, None]
            mask = torch.cat([mask, mask.new_ones(len(mask), 1)], dim=1)
            positions = positions[:, -1:] + 1
            out = lm.model(
                inputs_embeds=token,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=out.past_key_values,
                use_cache=True,
            )
        return torch.stack(bins, dim=1)

    def act(
        self, obs: dict[str, torch.Tensor], deterministic: bool = False, generator: torch.Generator | None = None
    ) -> ActOutput:
        bins = self.decode(obs, deterministic, generator)
        log_probs, _, value = self.score(obs, bins)
        return ActOutput(self.actions.actions(bins), log_probs.sum(-1).cpu(), value.cpu())

    def evaluate(
        self, obs: dict[str, torch.Tensor], action: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        log_probs, entropy, value = self.score(obs, self.actions.bins(action))
        return log_probs.sum(-1), entropy.sum(-1), value

    def value(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The value of each observation (the state before any action token)."""
        inputs, mask, positions = self._sequence(obs, None)
        hidden = self.vla.language_model.model(
            inputs_embeds=inputs, attention_mask=mask, position_ids=positions
        ).last_hidden_state
        return self.critic(hidden[:, -1].float()).squeeze(-1)

    # ------------------------------------------------------------------ files
    def trained_state(self) -> dict[str, torch.Tensor]:
        """What the policy's files hold: everything, or, over downloaded base weights with LoRA, only
        what training changes: the adapters, the value head and the instruction table. Decided by
        name, not by what a trainer happens to have frozen, so that every stage reads what another
        wrote."""
        state = self.state_dict()
        if self.cfg.weights and self.cfg.lora_rank:
            state = {
                k: v for k, v in state.items() if "lora_" in k or k.startswith("critic.") or k == "instruction_table"
            }
        return {k: v.contiguous() for k, v in state.items()}

    def write_weights(self, path: Path) -> None:
        from safetensors.torch import save_file

        save_file(self.trained_state(), str(path))

    def read_weights(self, path: Path, device: str) -> None:
        from safetensors.torch import load_file

        saved, expected = load_file(str(path)), set(self.trained_state())
        if set(saved) != expected:
            raise RuntimeError(f"{len(expected - set(saved))} tensors missing, {len(set(saved) - expected)} unexpected")
        self.load_state_dict(saved, strict=not self.cfg.weights)
