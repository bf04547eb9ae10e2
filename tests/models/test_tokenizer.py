"""The tokenizer: shapes, codes, the context decoder, errors, and that it learns."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.tokenizer import Tokenizer, TokenizerConfig


@pytest.mark.parametrize("quantizer", ["lfq", "fsq"])
def test_tokenizer_shapes_and_token_round_trip(quantizer):
    cfg = TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, quantizer=quantizer, codebook_bits=8)
    model = Tokenizer(cfg).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(x)
    assert out.reconstruction.shape == x.shape
    assert out.tokens.shape == (2, 8, 8) and out.tokens.dtype == torch.int64
    assert out.tokens.min() >= 0 and out.tokens.max() < cfg.codebook_size
    with torch.no_grad():
        assert torch.equal(model.encode(x), out.tokens)
        assert torch.allclose(model.decode_tokens(out.tokens), out.reconstruction.clamp(-1, 1), atol=1e-5)


def test_context_decoder_starts_as_the_per_frame_one_and_keeps_the_context_through_its_gate():
    from roboscape.train.decoder_finetuning import with_context_decoder

    torch.manual_seed(0)
    per_frame = Tokenizer(TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=8)).eval()
    model = with_context_decoder(per_frame).eval()
    x, context = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        plain, with_context = per_frame(x).reconstruction, model(x, context).reconstruction
        gate = torch.sigmoid(torch.tensor(-4.0))  # closed: the context's inputs are zero
        assert torch.allclose(with_context, gate * context + (1 - gate) * plain, atol=1e-5)
        tokens = model.encode(x)
        assert torch.equal(tokens, per_frame.encode(x))
        assert torch.allclose(
            model.decode_tokens(tokens, model.decoder_context(context)), with_context.clamp(-1, 1), atol=1e-5
        )
        model.decoder.keep_context_out.bias.fill_(30.0)  # wide open: the context frame, exactly
        assert torch.allclose(
            model.decode_tokens(tokens, model.decoder_context(context, model.encode(context))), context, atol=1e-6
        )
    assert per_frame.decoder_context(context) is None
    with pytest.raises(ValueError, match="needs the context frame"):
        model.decoder_context(None)
    with pytest.raises(ValueError, match="needs a context frame"):
        model.decode_tokens(tokens)
    with pytest.raises(ValueError, match="takes no context frame"):
        per_frame.decoder(torch.zeros(1, 8, 8, 8), (context, torch.zeros(2, 8, 8, 8)))
    with pytest.raises(ValueError, match="2 context frames but 1"):
        model.decoder_context(context, tokens[:1])


def test_tokenizer_config_round_trip_and_validation(tmp_path):
    cfg = TokenizerConfig(image_size=64, downsample_factor=16, quantizer="fsq", fsq_levels=(7, 5, 5))
    cfg.save(tmp_path / "cfg.json")
    assert TokenizerConfig.load(tmp_path / "cfg.json") == cfg
    assert cfg.channel_mults == (1, 2, 4, 4, 4) and cfg.codebook_size == 175 and cfg.tokens_hw == 4
    with pytest.raises(ValueError, match="power of two"):
        TokenizerConfig(downsample_factor=6)
    with pytest.raises(ValueError, match="divisible"):
        TokenizerConfig(image_size=60, downsample_factor=8)
    with pytest.raises(ValueError, match="unknown quantizer"):
        TokenizerConfig(quantizer="vq")


def test_tokenizer_rejects_bad_frames_and_tokens():
    model = Tokenizer(TokenizerConfig(image_size=32, downsample_factor=4, base_channels=16, codebook_bits=8))
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        model(torch.zeros(1, 32, 32, 3))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((1, 3, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="token ids"):
        model.decode_tokens(torch.full((1, 8, 8), 256))
    with pytest.raises(ValueError, match="integer tokens"):
        model.decode_tokens(torch.zeros(1, 8, 8))


def test_tokenizer_overfits_a_batch():
    """Reconstruction error of one small batch falls far below its starting value."""
    torch.manual_seed(0)
    cfg = TokenizerConfig(image_size=16, downsample_factor=2, base_channels=16, codebook_bits=10)
    model = Tokenizer(cfg)
    # smooth, structured images (gradients and blobs), like rendered scenes
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    x = torch.stack(
        [
            torch.stack([xx * a, yy * b, torch.exp(-((xx - a) ** 2 + (yy - b) ** 2) * 4) * 2 - 1])
            for a, b in [(0.5, -0.3), (-0.7, 0.2), (0.1, 0.9), (0.8, 0.8)]
        ]
    ).clamp(-1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        out = model(x)
        loss = (out.reconstruction - x).abs().mean() + out.quantizer_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float((out.reconstruction - x).abs().mean()))
    assert losses[-1] < 0.25 * losses[0], (losses[0], losses[-1])
