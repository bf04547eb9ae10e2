"""A Prismatic-style vision-language-action model with OpenVLA-7B's architecture, owned by the
project (no ``trust_remote_code``: OpenVLA's hub code does not run under transformers 5).

- **Vision:** DINOv2 (``vit_large_patch14_reg4_dinov2.lvd142m``) and SigLIP
  (``vit_so400m_patch14_siglip_224``) built by name through timm; each backbone's patch features
  come from its second-to-last block, and the two are concatenated per patch.
- **Projector:** the fused 3-layer GELU MLP (vision width -> 4 x vision width -> LLM width -> LLM width).
- **Language model:** transformers' ``LlamaForCausalLM``; the projected patches are inserted after
  the prompt's first (BOS) token, as Prismatic does.

Parameter names are the ``openvla/openvla-7b`` checkpoint's (``vision_backbone.featurizer.*``,
``vision_backbone.fused_featurizer.*``, ``projector.fc1..3``, ``language_model.*``), except that
timm's LayerScale keeps its own ``gamma`` where the checkpoint says ``scale_factor`` (OpenVLA renamed
it because transformers 4 rewrote parameters named ``gamma``): :func:`load_reference_weights` maps
the one to the other, so the real weights load with one call from a local directory.

Every size comes from :class:`VLAConfig`, so the tests build a tiny random model of the same
architecture (same backbones, same key layout) in well under a second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

DINO = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP = "vit_so400m_patch14_siglip_224"
# per-backbone pixel normalisation (timm's data configs of the two backbones)
PIXEL_STATS = {
    DINO: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    SIGLIP: ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
# openvla/openvla-7b's Llama-2 7B (its config.json's text_config)
LLAMA_7B = {
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-5,
    "vocab_size": 32064,
}

# A reduced model of the same architecture (the same backbones, projector and Llama; 56 px images,
# 32-wide backbones, a 2-layer 64-wide LLM, the byte tokenizer's 257 ids before the 256 action
# tokens): what the tests and quick checks build in well under a second.
REDUCED = {
    "vision_overrides": {"embed_dim": 32, "depth": 3, "num_heads": 2},
    "image_size": 56,
    "llm": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 256,
        "vocab_size": 576,
    },
    "text_vocab_size": 513,
}


@dataclass
class VLAConfig:
    """The VLA's architecture. The defaults are OpenVLA-7B's."""

    backbones: tuple[str, str] = (DINO, SIGLIP)
    """timm names of the two vision backbones (DINOv2, then SigLIP)"""
    image_size: int = 224
    """both backbones' input resolution; frames are resized to it"""
    vision_overrides: dict[str, int | float] = field(default_factory=dict)
    """timm arguments that shrink both backbones (``embed_dim``, ``depth``, ``num_heads``, ...); empty:
    the named sizes"""
    llm: dict[str, int | float] = field(default_factory=lambda: dict(LLAMA_7B))
    """``LlamaConfig`` fields of the language model (its ``vocab_size`` is the padded embedding size)"""
    text_vocab_size: int = 32000
    """the tokenizer's vocabulary; OpenVLA's action tokens are its last ``n_action_bins`` ids"""
    n_action_bins: int = 256
    """bins per action dimension"""

    def __post_init__(self):
        self.backbones = tuple(self.backbones)
        if len(self.backbones) != 2:
            raise ValueError(f"backbones: OpenVLA fuses two vision backbones, got {self.backbones}")
        if self.text_vocab_size > self.llm["vocab_size"]:
            raise ValueError(
                f"text_vocab_size {self.text_vocab_size} exceeds the embedding's {self.llm['vocab_size']} rows"
            )
        if self.n_action_bins > self.text_vocab_size:
            raise ValueError("n_action_bins exceeds the tokenizer's vocabulary")

    @property
    def action_token_ids(self) -> range:
        """The ids of the action tokens, lowest first (bin k of ``n_action_bins`` is id ``text_vocab_size - 1 - k``)."""
        return range(self.text_vocab_size - self.n_action_bins, self.text_vocab_size)


class VisionBackbone(nn.Module):
    """The fused DINOv2 + SigLIP featurizer: (N, 6, S, S) pixels, each backbone's three channels
    normalised its own way, to (N, patches, DINO width + SigLIP width)."""

    def __init__(self, cfg: VLAConfig):
        super().__init__()
        import timm

        def build(name: str) -> nn.Module:
            return timm.create_model(
                name, pretrained=False, num_classes=0, img_size=cfg.image_size, **cfg.vision_overrides
            )

        self.featurizer = build(cfg.backbones[0])
        self.fused_featurizer = build(cfg.backbones[1])
        self.embed_dim = self.featurizer.embed_dim + self.fused_featurizer.embed_dim
        for vit in (self.featurizer, self.fused_featurizer):
            self._freeze_unread(vit)

    @staticmethod
    def _freeze_unread(vit: nn.Module) -> None:
        """Freeze what reading the second-to-last block never reaches -- the last block, the final
        norm and timm's pooling head -- as it never gets a gradient (the checkpoint holds them all;
        DistributedDataParallel waits for a gradient of every trainable parameter)."""
        unread = [vit.blocks[-1], *(getattr(vit, name, None) for name in ("norm", "fc_norm", "attn_pool", "head"))]
        for module in unread:
            if isinstance(module, nn.Module):
                module.requires_grad_(False)

    @staticmethod
    def _second_to_last(vit: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        (patches,) = vit.get_intermediate_layers(pixels, n={len(vit.blocks) - 2})
        return patches

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        dino, siglip = torch.split(pixels, [3, 3], dim=1)
        return torch.cat(
            [self._second_to_last(self.featurizer, dino), self._second_to_last(self.fused_featurizer, siglip)], dim=2
        )


class Projector(nn.Module):
    """The fused projector: vision width -> 4 x vision width -> LLM width -> LLM width, GELU between."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)
        self.act_fn1, self.act_fn2 = nn.GELU(), nn.GELU()

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act_fn2(self.fc2(self.act_fn1(self.fc1(patches)))))


class PrismaticVLA(nn.Module):
    """Vision backbone, projector and Llama, with the checkpoint's module names."""

    def __init__(self, cfg: VLAConfig):
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.cfg = cfg
        self.vision_backbone = VisionBackbone(cfg)
        llm_cfg = LlamaConfig(**cfg.llm, tie_word_embeddings=False)
        self.projector = Projector(self.vision_backbone.embed_dim, llm_cfg.hidden_size)
        self.language_model = LlamaForCausalLM(llm_cfg)
        means, stds = zip(*(PIXEL_STATS.get(name, PIXEL_STATS[DINO]) for name in cfg.backbones), strict=True)
        self.register_buffer("pixel_mean", torch.tensor(means).reshape(1, 6, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(stds).reshape(1, 6, 1, 1), persistent=False)

    @property
    def patches(self) -> int:
        """Image tokens per frame."""
        return self.vision_backbone.featurizer.patch_embed.num_patches

    def pixels(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) frames -> the backbones' (N, 6, S, S) input: resized to ``image_size``,
        then normalised per backbone."""
        x = frames.to(self.pixel_mean.device).permute(0, 3, 1, 2).float() / 255.0
        size = self.cfg.image_size
        if x.shape[-2:] != (size, size):
            x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return (x.repeat(1, 2, 1, 1) - self.pixel_mean) / self.pixel_std

    def image_embeddings(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, patches, LLM width): the projected patch features of uint8 frames."""
        pixels = self.pixels(frames).to(self.projector.fc1.weight.dtype)
        return self.projector(self.vision_backbone(pixels))


def reference_key(name: str) -> str:
    """Our parameter name -> the ``openvla/openvla-7b`` checkpoint's."""
    return name.replace(".gamma", ".scale_factor") if name.startswith("vision_backbone.") else name


def read_reference_state(weights_dir: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint directory in OpenVLA's layout (``model.safetensors`` or shards
    named by ``model.safetensors.index.json``), under its own names."""
    from safetensors.torch import load_file

    weights_dir = Path(weights_dir)
    index = weights_dir / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (weights_dir / "model.safetensors").exists():
        files = ["model.safetensors"]
    else:
        raise FileNotFoundError(
            f"{weights_dir} holds no model.safetensors(.index.json): download openvla/openvla-7b there "
            "(huggingface-cli download openvla/openvla-7b --local-dir DIR) or set policy.openvla.weights"
        )
    state: dict[str, torch.Tensor] = {}
    for name in files:
        state.update(load_file(str(weights_dir / name)))
    return state


def load_reference_weights(model: PrismaticVLA, state: dict[str, torch.Tensor]) -> None:
    """Load a state dict under the checkpoint's names into ``model``; every key must match, both ways."""
    ours = {reference_key(k): k for k in model.state_dict()}
    missing, unexpected = sorted(set(ours) - set(state)), sorted(set(state) - set(ours))
    if missing or unexpected:
        raise ValueError(
            f"the checkpoint does not fit this architecture: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); check policy.openvla's sizes"
        )
    model.load_state_dict({ours[k]: v for k, v in state.items()}, strict=True)
