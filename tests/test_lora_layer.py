"""LoRALinear on its own: initialisation, the forward formula, scaling, dropout, merging."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lorakit.lora import LoRALinear


def make_layer(r=4, alpha=8, dropout=0.0, rslora=False, seed=0):
    torch.manual_seed(seed)
    return LoRALinear(nn.Linear(12, 20), r=r, alpha=alpha, dropout=dropout, rslora=rslora)


def test_shapes_and_init():
    layer = make_layer(r=4)
    assert layer.lora_A.shape == (4, 12)
    assert layer.lora_B.shape == (20, 4)
    assert torch.count_nonzero(layer.lora_B) == 0
    bound = 1 / math.sqrt(12)  # kaiming_uniform_(a=sqrt(5)) on fan_in = 12
    assert layer.lora_A.abs().max() <= bound
    assert layer.lora_A.std() > bound / 4
    assert not layer.base.weight.requires_grad and not layer.base.bias.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad


@pytest.mark.parametrize("shape", [(12,), (3, 12), (2, 3, 5, 12)])
def test_any_leading_shape(shape):
    layer = make_layer()
    nn.init.normal_(layer.lora_B)
    x = torch.randn(shape)
    expected = layer.base(x) + x @ (layer.lora_B @ layer.lora_A).T * layer.scaling
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_base_in_another_precision_than_the_adapter():
    """A float64 base with the float32 adapter: the update is computed in the adapter's dtype."""
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(12, 20).double(), r=4, alpha=8)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 12, dtype=torch.float64)
    update = (x.float() @ layer.lora_A.T @ layer.lora_B.T) * layer.scaling
    out = layer(x)
    assert out.dtype == torch.float64 and layer.lora_A.dtype == torch.float32
    torch.testing.assert_close(out, layer.base(x) + update.double(), rtol=1e-6, atol=1e-6)


def test_starts_equal_to_base():
    layer = make_layer()
    x = torch.randn(3, 5, 12)
    assert torch.equal(layer(x), layer.base(x))


@pytest.mark.parametrize("rslora, expected_scaling", [(False, 8 / 4), (True, 8 / 2)])
def test_forward_formula_and_scaling(rslora, expected_scaling):
    layer = make_layer(r=4, alpha=8, rslora=rslora)
    nn.init.normal_(layer.lora_B)
    x = torch.randn(3, 12)
    expected = layer.base(x) + (x @ layer.lora_A.T @ layer.lora_B.T) * expected_scaling
    assert layer.scaling == expected_scaling
    torch.testing.assert_close(layer(x), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(
        layer.delta_weight(), layer.lora_B @ layer.lora_A * expected_scaling
    )


def test_dropout_only_on_the_input_of_A():
    layer = make_layer(dropout=0.5).train()
    nn.init.normal_(layer.lora_B)
    x = torch.randn(6, 12)
    torch.manual_seed(123)
    out = layer(x)
    torch.manual_seed(123)
    dropped = F.dropout(x, p=0.5, training=True)
    expected = layer.base(x) + F.linear(F.linear(dropped, layer.lora_A), layer.lora_B) * 2
    torch.testing.assert_close(out, expected)
    layer.eval()
    torch.testing.assert_close(layer(x), layer.base(x) + x @ layer.delta_weight().T)


def test_merge_unmerge_roundtrip():
    layer = make_layer()
    nn.init.normal_(layer.lora_B)
    weight_before = layer.base.weight.clone()
    x = torch.randn(7, 12)
    unmerged = layer(x)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer.base.weight, weight_before + layer.delta_weight())
    torch.testing.assert_close(layer(x), unmerged, rtol=1e-5, atol=1e-5)
    layer.unmerge()
    assert not layer.merged
    torch.testing.assert_close(layer.base.weight, weight_before, rtol=0, atol=1e-6)


def test_merge_twice_and_unmerge_unmerged_raise():
    layer = make_layer()
    with pytest.raises(ValueError, match="not merged"):
        layer.unmerge()
    layer.merge()
    with pytest.raises(ValueError, match="already merged"):
        layer.merge()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"r": 0}, ValueError, "r=0"),
        ({"r": -3}, ValueError, "r=-3"),
        ({"r": 2.5}, TypeError, "r=2.5"),
        ({"r": True}, TypeError, "r=True"),
        ({"alpha": 0}, ValueError, "alpha=0"),
        ({"alpha": -1.0}, ValueError, "alpha=-1.0"),
        ({"dropout": 1.0}, ValueError, r"dropout=1.0 is out of range: use .* in \[0, 1\)"),
        ({"dropout": "0.1"}, TypeError, "dropout='0.1' is a str"),
        ({"alpha": "16"}, TypeError, "alpha='16' is a str"),
        ({"dropout": -0.1}, ValueError, "dropout=-0.1"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, error, message):
    settings = {"r": 4, "alpha": 8, "dropout": 0.0} | kwargs
    with pytest.raises(error, match=message):
        LoRALinear(nn.Linear(4, 4), **settings)


def test_wraps_only_linear():
    with pytest.raises(TypeError, match="Conv1d"):
        LoRALinear(nn.Conv1d(4, 4, 1), r=2, alpha=4)
