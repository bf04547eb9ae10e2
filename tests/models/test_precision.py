"""Inference precision: what ``auto`` resolves to, and the context each precision computes in."""

from __future__ import annotations

import warnings

import pytest
import torch

from roboscape.models import precision as precision_module
from roboscape.models.precision import (
    check_precision,
    has_fast_bf16,
    precision_autocast,
    resolve_precision,
    warn_if_emulated,
)


def test_auto_resolves_to_bf16_only_where_the_hardware_computes_in_it():
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if has_fast_bf16("cpu") else "fp32")
    assert resolve_precision("auto", "meta") == "fp32"  # no bf16 arithmetic known there


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])
def test_a_precision_s_context_computes_matrix_products_in_it(precision):
    a = torch.randn(4, 4)
    with precision_autocast(precision, "cpu"):
        product = a @ a
    expected = torch.bfloat16 if resolve_precision(precision, "cpu") == "bf16" else torch.float32
    assert product.dtype == expected


def test_an_unknown_precision_is_refused_by_name():
    check_precision("auto", "reward")
    with pytest.raises(ValueError, match="reward precision must be one of"):
        check_precision("fp16", "reward")


@pytest.mark.parametrize("bf16_hardware", [True, False])
def test_bf16_warns_only_where_it_would_be_emulated(bf16_hardware, monkeypatch):
    monkeypatch.setattr(precision_module, "has_fast_bf16", lambda device_type: bf16_hardware)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for quiet in ("fp32", "auto"):  # auto is fp32 where bf16 would be emulated
            warn_if_emulated(quiet, "cpu", "world model")
        if bf16_hardware:
            warn_if_emulated("bf16", "cpu", "world model")
    if not bf16_hardware:
        with pytest.warns(UserWarning, match="neither AVX512-BF16 nor AMX: a bf16 world model is emulated"):
            warn_if_emulated("bf16", "cpu", "world model")
        with pytest.warns(UserWarning, match="this meta device has no bf16 arithmetic"):
            warn_if_emulated("bf16", "meta", "decoder")
