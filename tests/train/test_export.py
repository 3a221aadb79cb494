"""The final export's dtype: the stages train in float32 and cast back to the base model's."""

from __future__ import annotations

import pytest
import torch

from in2x_cli.train.export import export_dtype


@pytest.mark.parametrize(
    ("declared", "expected"),
    [(torch.bfloat16, torch.bfloat16), ("float16", torch.float16), (torch.float32, None), ("float32", None), (torch.int8, None), (None, None), ("nope", None)],
)
def test_export_dtype(declared, expected):
    assert export_dtype(declared) == expected
