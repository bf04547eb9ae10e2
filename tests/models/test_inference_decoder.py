"""The inference decoder: fusing its upsampling, compiling it and running it in bf16 change the
frames by rounding only, and never the tokens a rollout generates."""

from __future__ import annotations

import math

import pytest
import torch

from roboscape.models import precision
from roboscape.models.inference_decoder import (
    DecoderOptions,
    InferenceDecoder,
    upsampling_as_transposed_conv,
)
from roboscape.models.rollout import Rollout
from roboscape.train.decoder_finetuning import with_context_decoder

from fakes import frames, models


def context_models():
    wm, tok = models()
    tok = with_context_decoder(tok).eval()
    torch.manual_seed(3)
    with torch.no_grad():  # the context layers start at zero: give them weights so the context matters
        for layer in (
            tok.decoder.context_codes_in,
            tok.decoder.context_change_in,
            tok.decoder.context_pixels_in,
            tok.decoder.keep_context_out,
        ):
            layer.weight.normal_(0, 0.1)
            layer.bias.normal_(0, 0.1)
    return wm, tok


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(4 / (a - b).pow(2).mean().item())


def test_the_eager_fp32_decoder_is_exactly_the_tokenizers():
    _, tok = context_models()
    start = frames()
    with torch.no_grad():
        tokens = tok.encode(start.flip(0))
        context = tok.decoder_context(start)
        assert torch.equal(InferenceDecoder(tok)(tokens, context), tok.decode_tokens(tokens, context))


def test_fused_upsampling_computes_what_upsampling_then_convolving_does():
    torch.manual_seed(0)
    upsample, conv = torch.nn.Upsample(scale_factor=2, mode="nearest"), torch.nn.Conv2d(5, 7, 3, padding=1)
    x = torch.randn(2, 5, 6, 9)
    with torch.no_grad():
        assert torch.allclose(upsampling_as_transposed_conv(upsample, conv)(x), conv(upsample(x)), atol=1e-5)
    with pytest.raises(ValueError, match="3x3 convolution"):
        upsampling_as_transposed_conv(upsample, torch.nn.Conv2d(5, 7, 3, padding=0))
    with pytest.raises(ValueError, match="nearest 2x"):
        upsampling_as_transposed_conv(torch.nn.Upsample(scale_factor=2, mode="bilinear"), conv)


@pytest.mark.parametrize(
    "name",
    [
        "bf16",
        "compiled-fp32",
        "compiled-bf16",
        "fused-fp32",
        "fused-compiled-bf16",
        "fp32-by1",
        "fused-compiled-fp32-by2",
    ],
)
def test_a_fast_decoder_keeps_the_rollouts_tokens_and_rounds_its_frames(name):
    wm, tok = context_models()
    exact = Rollout(wm, tok)
    options = DecoderOptions.from_name(name)
    assert options.name == name
    fast = Rollout(wm, tok, decoder=options)
    assert fast.decode.options == options
    start = frames()
    other_context = tok.decoder_context(start.flip(0))
    assert torch.equal(exact.reset(start), fast.reset(start))
    actions = torch.rand(4, 3, 7, generator=torch.Generator().manual_seed(2)) * 2 - 1
    for a in actions:
        e, f = exact.step(a), fast.step(a)
        assert torch.equal(e.tokens, f.tokens) and torch.equal(e.done, f.done)
        assert f.frames.dtype == torch.float32 and f.frames.min() >= -1 and f.frames.max() <= 1
        assert psnr(f.frames, e.frames) > (35 if options.precision == "bf16" else 80)
        # ... whereas another context frame changes them far more than rounding does
        assert psnr(tok.decode_tokens(e.tokens, other_context), e.frames) < 30


def test_a_fused_decoder_leaves_the_tokenizers_own_alone():
    _, tok = context_models()
    before = list(tok.decoder.blocks)
    InferenceDecoder(tok, DecoderOptions(fuse_upsampling=True))
    assert list(tok.decoder.blocks) == before
    assert any(isinstance(layer, torch.nn.Upsample) for layer in tok.decoder.blocks)


@pytest.mark.parametrize("bf16_hardware", [True, False])
def test_auto_precision_is_bf16_only_where_the_hardware_computes_in_it(bf16_hardware, monkeypatch):
    monkeypatch.setattr(precision, "has_fast_bf16", lambda device_type: bf16_hardware)
    _, tok = context_models()
    decoder = InferenceDecoder(tok, DecoderOptions.from_name("fused-auto"))
    assert decoder.options == DecoderOptions("bf16" if bf16_hardware else "fp32", fuse_upsampling=True)
    assert DecoderOptions("fp32").resolved("cpu") == DecoderOptions("fp32")
    if not bf16_hardware:
        with pytest.warns(UserWarning, match="neither AVX512-BF16 nor AMX: a bf16 decoder is emulated"):
            InferenceDecoder(tok, DecoderOptions("bf16"))


def test_bad_decoder_options_are_refused():
    with pytest.raises(ValueError, match="decoder precision must be one of"):
        DecoderOptions("fp16")
    for name in ("compiled-fused-bf16", "by2", "fused-by2", "fp32-by"):
        with pytest.raises(ValueError, match=r"\[fused-\]\[compiled-\]"):
            DecoderOptions.from_name(name)
    with pytest.raises(ValueError, match="frames_per_call must be >= 1"):
        DecoderOptions.from_name("fp32-by0")
