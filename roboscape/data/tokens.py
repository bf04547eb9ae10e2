"""Token shards: every clip encoded by the trained tokenizer (rule ``tokenize``).

Contract (``tokens/<task>/shard_<k>.h5``), row for row the clip shard it comes from::

    tokens    (N, L, h, w)  int16/int32  tokenizer codes of every frame
    actions   (N, L-1, 7)   float32      copied from the clip shard
    rewards   (N, L-1)      float32
    done      (N, L)        float32
    attrs: codebook_size, tokens_hw, clip_length, view, source (clip shard), format_version

The token index (``tokens/index.csv``) is the clip index with ``shard`` pointing at token shards.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from roboscape.data.frames import to_model_range
from roboscape.utils.h5 import DataFileError, open_h5
from roboscape.utils.io import atomic_path

TOKEN_FORMAT_VERSION = 1


class FrameEncoder(Protocol):
    """What tokenizing needs of a tokenizer (:class:`roboscape.models.tokenizer.Tokenizer`): its
    config (``image_size``, ``codebook_size``, ``tokens_hw``) and ``encode`` of (N, 3, H, W) frames
    in [-1, 1] to (N, h, w) codes."""

    cfg: Any

    def encode(self, frames: torch.Tensor) -> torch.Tensor: ...

    def eval(self) -> Any: ...

    def parameters(self) -> Any: ...


@torch.no_grad()
def tokenize_clip_shard(
    tokenizer: FrameEncoder,
    clip_h5: str | Path,
    out_h5: str | Path,
    view: str = "third_view",
    batch_frames: int = 256,
    dedupe: bool = True,
) -> dict:
    """Encode every clip of a clip shard into a token shard (the module's contract).

    Clips overlap (a clip starts every ``stride`` frames of an episode and is ``clip_length`` long),
    so with ``dedupe`` each frame of an episode, named by the clip shard's ``episode`` and ``start``,
    is encoded once and its codes copied into every clip that holds it; without it every clip's
    frames are encoded (the same codes; bench/tokenize_throughput.py times the two). Frames are
    encoded in batches of at most ``batch_frames`` (whole clips are read at a time)."""
    tokenizer.eval()
    cfg = tokenizer.cfg
    dtype = np.int16 if cfg.codebook_size <= 2**15 else np.int32
    device = next(tokenizer.parameters()).device
    with open_h5(clip_h5) as src:
        if f"rgb/{view}" not in src:
            raise DataFileError(clip_h5, f"has no view {view!r} (views: {list(src.attrs['views'])})")
        rgb = src[f"rgb/{view}"]
        n, L, height, width, _ = rgb.shape
        if (height, width) != (cfg.image_size, cfg.image_size):
            raise ValueError(
                f"{clip_h5}: frames are {height}x{width}, the tokenizer expects {cfg.image_size}x{cfg.image_size}"
            )
        hw = cfg.tokens_hw
        offsets = np.tile(np.arange(L), n)
        if dedupe:  # every clip frame named by its episode and its index in the episode
            frame_keys = np.stack([np.repeat(src["episode"][()], L), np.repeat(src["start"][()], L) + offsets], axis=1)
        else:  # by its clip and its index in the clip: every clip frame is its own
            frame_keys = np.stack([np.repeat(np.arange(n), L), offsets], axis=1)
        encoded: dict[tuple[int, int], np.ndarray] = {}
        with atomic_path(out_h5) as tmp, open_h5(tmp, "w") as dst:
            dst.attrs.update(
                codebook_size=cfg.codebook_size,
                tokens_hw=hw,
                clip_length=L,
                view=view,
                source=str(clip_h5),
                format_version=TOKEN_FORMAT_VERSION,
            )
            tokens = dst.create_dataset(
                "tokens", shape=(n, L, hw, hw), dtype=dtype, chunks=(1, L, hw, hw), compression="gzip"
            )
            for name in ("actions", "rewards", "done"):
                dst.create_dataset(name, data=src[name][()])
            clips_per_batch = max(1, batch_frames // L)
            for i in range(0, n, clips_per_batch):
                frames = rgb[i : i + clips_per_batch]  # (b, L, H, W, 3)
                b = frames.shape[0]
                keys = [tuple(k) for k in frame_keys[i * L : (i + b) * L].tolist()]
                new = {}  # first position in this batch of each frame not yet encoded
                for position, key in enumerate(keys):
                    if key not in encoded:
                        new.setdefault(key, position)
                if new:
                    x = to_model_range(torch.from_numpy(frames.reshape(b * L, height, width, 3)[list(new.values())]))
                    codes = tokenizer.encode(x.to(device)).view(-1, hw, hw).cpu().numpy().astype(dtype)
                    encoded.update(zip(new, codes, strict=True))
                tokens[i : i + b] = np.stack([encoded[key] for key in keys]).reshape(b, L, hw, hw)
    return {"source": str(clip_h5), "clips": n, "frames": n * L, "frames_encoded": len(encoded)}


def token_index(clip_index: str | Path, token_shards: dict[str, str | Path], out_csv: str | Path) -> pd.DataFrame:
    """The clip index re-pointed at token shards (``token_shards``: clip shard path -> token shard path)."""
    clip_index, out_csv = Path(clip_index), Path(out_csv)
    index = pd.read_csv(clip_index)
    mapping = {
        os.path.relpath(Path(c).resolve(), clip_index.parent.resolve()): os.path.relpath(
            Path(t).resolve(), out_csv.parent.resolve()
        )
        for c, t in token_shards.items()
    }
    missing = set(index["shard"]) - set(mapping)
    if missing:
        raise ValueError(f"no token shard for clip shards {sorted(missing)[:3]}...")
    index["shard"] = index["shard"].map(mapping)
    with atomic_path(out_csv) as tmp:
        index.to_csv(tmp, index=False)
    return index
