"""The tokenizer and the perceptual distance: shapes, codes, errors, and that they learn."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.perceptual import PerceptualDistance
from roboscape.models.tokenizer import Tokenizer, TokenizerConfig


@pytest.fixture(scope="module")
def perceptual():
    return PerceptualDistance("stlpips")


def test_perceptual_distance_is_a_distance(perceptual):
    torch.manual_seed(0)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    near = (x + 0.05 * torch.randn_like(x)).clamp(-1, 1)
    far = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.allclose(perceptual(x, x), torch.zeros(3), atol=1e-6)
    assert (perceptual(x, near) < perceptual(x, far)).all()
    assert perceptual(x, far).shape == (3,)


def test_perceptual_distance_rejects_bad_inputs(perceptual):
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        perceptual(x + 255, x)  # uint8-range frames: the classic bug
    with pytest.raises(ValueError, match="NaN"):
        perceptual(x * float("nan"), x)
    with pytest.raises(ValueError, match="shape"):
        perceptual(x, torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="at least 32x32"):
        perceptual(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="unknown perceptual backend"):
        PerceptualDistance("ssim")


def test_perceptual_distance_gives_gradients(perceptual):
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    perceptual(x, torch.zeros(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in perceptual.parameters())


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
        assert torch.allclose(model.decode_tokens(tokens, model.decoder_context(context)), with_context.clamp(-1, 1), atol=1e-5)
        model.decoder.keep_context_out.bias.fill_(30.0)  # wide open: the context frame, exactly
        assert torch.allclose(model.decode_tokens(tokens, model.decoder_context(context, model.encode(context))), context, atol=1e-6)
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
    x = torch.stack([torch.stack([xx * a, yy * b, torch.exp(-((xx - a) ** 2 + (yy - b) ** 2) * 4) * 2 - 1])
                     for a, b in [(0.5, -0.3), (-0.7, 0.2), (0.1, 0.9), (0.8, 0.8)]]).clamp(-1, 1)
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


def test_image_metrics():
    from roboscape.eval.image_metrics import codebook_utilisation, psnr, ssim

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert (psnr(x, x) > 90).all()
    y = (x + 0.2).clamp(-1, 1)
    mse01 = (((x - y) / 2) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(x, y), -10 * torch.log10(mse01))
    noisy = (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)
    assert (ssim(x, noisy) < ssim(x, y)).all() and (ssim(x, noisy) < 0.9).all()
    assert codebook_utilisation(torch.tensor([[0, 1], [1, 3]]), 8) == 3 / 8
    with pytest.raises(ValueError, match="shape"):
        psnr(x, x[:1])
