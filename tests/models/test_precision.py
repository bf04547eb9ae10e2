"""Inference precision: what ``auto`` resolves to, and the context each precision computes in."""

from __future__ import annotations

import pytest
import torch

from roboscape.models.precision import has_fast_bf16, precision_autocast, resolve_precision


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
