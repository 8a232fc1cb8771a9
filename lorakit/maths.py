"""The low-rank algebra behind LoRA, as used by notebook 01 (ΔW = BA).

LoRA replaces the update of a frozen weight ``W: (d_out, d_in)`` with a product ``ΔW = B A`` of
two thin factors ``B: (d_out, r)`` and ``A: (r, d_in)``, scaled by ``alpha / r``. This module holds
the small, checkable pieces of that story: parameter counts, the best rank-r approximation
(truncated SVD) and gradient descent's fit to it, singular-value spectra and their energy, a
subspace similarity for comparing updates, and a toy experiment that recovers a planted
low-rank update by training A and B.

Every matrix is a floating-point ``torch.Tensor``; shapes follow ``torch.nn.Linear``, whose weight
is ``(out_features, in_features)``, so ``y = x @ W.T``.
"""

import math
from typing import NamedTuple

import pandas as pd
import torch

from lorakit.checks import require_int, require_number, require_type


def _require_matrix(name: str, value: object) -> torch.Tensor:
    """Return ``value`` if it is a 2-D floating-point tensor: TypeError for another type,
    ValueError for another shape or dtype."""
    require_type(name, value, torch.Tensor, "a torch.Tensor of shape (d_out, d_in)",
                 "convert it with torch.as_tensor(..., dtype=torch.float32)")
    if value.ndim != 2 or not value.is_floating_point():
        raise ValueError(
            f"{name} must be a 2-D floating-point tensor (d_out, d_in); got shape "
            f"{tuple(value.shape)} and dtype {value.dtype}. Pass a weight matrix, "
            "e.g. linear.weight.detach().float()."
        )
    return value


def _require_rank_within(name: str, r: object, matrix_shape: torch.Size) -> int:
    """Return ``r`` if it is a positive int no larger than min(matrix_shape), else raise."""
    max_rank = min(matrix_shape)
    rank = require_int(name, r, 1, example=min(8, max_rank))
    if rank > max_rank:
        raise ValueError(
            f"{name}={rank} exceeds the largest possible rank {max_rank} of a "
            f"{matrix_shape[0]}×{matrix_shape[1]} matrix. Use a rank between 1 and {max_rank}."
        )
    return rank


def lora_parameter_count(d_out: int, d_in: int, r: int) -> int:
    """Trainable parameters of a rank-``r`` LoRA update of a ``(d_out, d_in)`` weight.

    ``B: (d_out, r)`` and ``A: (r, d_in)`` hold ``r * (d_out + d_in)`` numbers together.
    """
    d_out = require_int("d_out", d_out, example="d_out=768 (the weight's out_features)")
    d_in = require_int("d_in", d_in, example="d_in=768 (the weight's in_features)")
    r = require_int("r", r, example=8)
    return r * (d_out + d_in)


def full_parameter_count(d_out: int, d_in: int) -> int:
    """Parameters of a full ``(d_out, d_in)`` weight update: ``d_out * d_in``."""
    d_out = require_int("d_out", d_out, example="d_out=768 (the weight's out_features)")
    d_in = require_int("d_in", d_in, example="d_in=768 (the weight's in_features)")
    return d_out * d_in


def parameter_table(shapes: list[tuple[int, int]], ranks: list[int]) -> pd.DataFrame:
    """Full versus LoRA parameter counts for every weight shape at every rank.

    Args:
        shapes: weight shapes ``(d_out, d_in)``, e.g. ``[(768, 768), (3072, 768)]``.
        ranks: LoRA ranks ``r``, e.g. ``[1, 8, 64]``.

    Returns:
        One row per (shape, rank) pair, shapes in the outer loop, with columns ``matrix``
        (``"d_out×d_in"``), ``r``, ``full`` (``d_out * d_in``), ``lora`` (``r * (d_out + d_in)``)
        and ``ratio`` (``full / lora``: how many times fewer parameters LoRA trains).
    """
    if not shapes or not ranks:
        raise ValueError(
            f"shapes and ranks must both be non-empty; got shapes={shapes!r}, ranks={ranks!r}. "
            "Pass e.g. shapes=[(768, 768)], ranks=[8]."
        )
    rows = []
    for shape in shapes:
        require_type("shape", shape, tuple | list, "a pair (d_out, d_in)", "e.g. (768, 3072)")
        if len(shape) != 2:
            raise ValueError(
                f"each shape must be a pair (d_out, d_in); got {shape!r}. Write e.g. (768, 3072)."
            )
        d_out, d_in = shape
        full = full_parameter_count(d_out, d_in)
        for r in ranks:
            lora = lora_parameter_count(d_out, d_in, r)
            rows.append(
                {
                    "matrix": f"{d_out}×{d_in}",
                    "r": r,
                    "full": full,
                    "lora": lora,
                    "ratio": full / lora,
                }
            )
    return pd.DataFrame(rows, columns=["matrix", "r", "full", "lora", "ratio"])


def singular_values(W: torch.Tensor) -> torch.Tensor:
    """Singular values of ``W: (d_out, d_in)``, shape ``(min(d_out, d_in),)``, largest first."""
    return torch.linalg.svdvals(_require_matrix("W", W))


def truncated_svd(W: torch.Tensor, r: int) -> torch.Tensor:
    """The best rank-``r`` approximation ``W_r`` of ``W: (d_out, d_in)``; same shape as ``W``.

    Keeps the ``r`` largest singular values and their singular vectors:
    ``W_r = U[:, :r] diag(S[:r]) Vh[:r, :]``. By the Eckart–Young theorem no rank-``r`` matrix
    is closer to ``W`` in Frobenius (or spectral) norm.
    """
    W = _require_matrix("W", W)
    r = _require_rank_within("r", r, W.shape)
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    return U[:, :r] @ torch.diag(S[:r]) @ Vh[:r, :]


def fit_low_rank(W: torch.Tensor, r: int, steps: int = 1000, lr: float = 1e-2,
                 seed: int = 0) -> torch.Tensor:
    """``B A`` fitted to ``W: (d_out, d_in)`` by gradient descent: LoRA's factors against the SVD.

    ``B: (d_out, r)`` and ``A: (r, d_in)`` start small and random (entries N(0, 0.01²), drawn from
    ``seed`` on the CPU, then moved to ``W``'s device) and take ``steps`` Adam steps on
    ``||W - B A||_F²``, the rate falling linearly from ``lr`` to 0: at a constant 1e-2 Adam ends
    up oscillating around the minimum at distilbert-base's width, and can leave it
    (``tests/test_maths.py``). Every local minimum of that loss is global (Baldi and Hornik,
    1989), so the product approaches :func:`truncated_svd`'s ``W_r`` though the factors are not U
    and V. Returns the product, ``(d_out, d_in)``, on ``W``'s device and in its dtype.
    """
    W = _require_matrix("W", W).detach()
    r = _require_rank_within("r", r, W.shape)
    steps = require_int("steps", steps, example=1000)
    lr = require_number("lr", lr, 0, low_open=True, example=1e-2)
    generator = torch.Generator().manual_seed(seed)
    B, A = (0.01 * torch.randn(shape, generator=generator, dtype=W.dtype)
            for shape in ((W.shape[0], r), (r, W.shape[1])))
    B, A = B.to(W.device).requires_grad_(), A.to(W.device).requires_grad_()
    optimizer = torch.optim.Adam([B, A], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    for _ in range(steps):
        optimizer.zero_grad()
        (W - B @ A).pow(2).sum().backward()
        optimizer.step()
        schedule.step()
    return (B @ A).detach()


def low_rank_error(W: torch.Tensor, ranks: list[int]) -> torch.Tensor:
    """Relative error ``||W - W_r||_F / ||W||_F`` of the best rank-r approximation, per rank.

    Uses one SVD: with singular values ``s_1 >= s_2 >= ...``, Eckart–Young gives
    ``||W - W_r||_F^2 = sum_{i > r} s_i^2``, so no rank-r matrix is ever built.

    Args:
        W: ``(d_out, d_in)`` matrix, not all zeros.
        ranks: ranks ``r`` with ``1 <= r <= min(d_out, d_in)``.

    Returns:
        ``(len(ranks),)`` tensor in ``[0, 1]``, in the order of ``ranks``; 0 at full rank.
    """
    W = _require_matrix("W", W)
    rank_indices = [_require_rank_within("rank", r, W.shape) for r in ranks]
    energy = singular_values(W) ** 2
    # Tail sums, added from the smallest value up (subtracting a cumulative sum from the total
    # would lose small tails to rounding): energy_from[i] = s_{i+1}^2 + ... + s_n^2.
    energy_from = energy.flip(0).cumsum(0).flip(0)
    total_energy = energy_from[0]
    if total_energy == 0:
        raise ValueError("W is all zeros, so its relative error is undefined. Pass a nonzero W.")
    # energy_left_out[k - 1] = s_{k+1}^2 + ... + s_n^2, what the best rank-k approximation misses.
    energy_left_out = torch.cat([energy_from[1:], energy.new_zeros(1)])
    return torch.sqrt(energy_left_out[[k - 1 for k in rank_indices]] / total_energy)


def energy_rank(W_or_singular_values: torch.Tensor, fraction: float = 0.9) -> int:
    """Smallest ``k`` whose top-``k`` squared singular values hold ``fraction`` of the total.

    "Energy" is ``||W||_F^2 = sum_i s_i^2``; the answer is how many directions a rank-``k``
    approximation needs to keep ``fraction`` of it (its relative error is then at most
    ``sqrt(1 - fraction)``).

    Args:
        W_or_singular_values: a ``(d_out, d_in)`` matrix, or its singular values as a 1-D
            non-negative tensor (in any order).
        fraction: the share of energy to keep, in ``(0, 1]``.

    Returns:
        ``k`` with ``1 <= k <= min(d_out, d_in)``.
    """
    require_number("fraction", fraction, 0, 1, low_open=True, example="fraction=0.9 (90%)")
    values = W_or_singular_values
    if isinstance(values, torch.Tensor) and values.ndim == 1:
        if not values.is_floating_point() or bool((values < 0).any()):
            raise ValueError(
                f"singular values must be a non-negative floating-point tensor; got {values}. "
                "Compute them with lorakit.maths.singular_values(W)."
            )
        spectrum = torch.sort(values, descending=True).values
    else:
        spectrum = singular_values(_require_matrix("W_or_singular_values", values))
    cumulative_energy = torch.cumsum(spectrum.double() ** 2, dim=0)
    if cumulative_energy[-1] == 0:
        raise ValueError("the matrix is all zeros, so it has no energy to keep. Pass a nonzero W.")
    # Dividing by the last cumulative sum (not a separate total) makes the final share exactly 1.
    energy_share = cumulative_energy / cumulative_energy[-1]
    prefixes_short_of_fraction = int((energy_share < fraction).sum())
    return prefixes_short_of_fraction + 1


def subspace_similarity(basis_a: torch.Tensor, basis_b: torch.Tensor) -> float:
    """Normalized similarity ``||U_aᵀ U_b||_F^2 / min(i, j)`` of two subspaces, in ``[0, 1]``.

    This is the subspace similarity of Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large
    Language Models" (arXiv:2106.09685), Section 7.2. It is 1 when the smaller subspace lies
    inside the larger one and 0 when they are orthogonal; it does not change if either basis is
    rotated within its own subspace.

    Args:
        basis_a: ``(d, i)`` with orthonormal columns, e.g. left singular vectors ``U[:, :i]``.
        basis_b: ``(d, j)`` with orthonormal columns.
    """
    for name, basis in (("basis_a", basis_a), ("basis_b", basis_b)):
        basis = _require_matrix(name, basis)
        gram = basis.T @ basis
        identity = torch.eye(gram.shape[0], dtype=gram.dtype)
        if not torch.allclose(gram, identity, atol=1e-4):
            raise ValueError(
                f"{name} must have orthonormal columns ({name}ᵀ {name} = I); its largest deviation "
                f"from I is {(gram - identity).abs().max().item():.3g}. Pass singular vectors from "
                "torch.linalg.svd, or orthonormalise with torch.linalg.qr."
            )
    if basis_a.shape[0] != basis_b.shape[0]:
        raise ValueError(
            f"bases live in different spaces: basis_a has {basis_a.shape[0]} rows, basis_b has "
            f"{basis_b.shape[0]}. Compare subspaces of the same space R^d."
        )
    overlap = basis_a.T @ basis_b
    return (overlap.pow(2).sum() / min(basis_a.shape[1], basis_b.shape[1])).item()


def update_similarity(delta_a: torch.Tensor, delta_b: torch.Tensor, r: int) -> float:
    """How much two weight updates share their top-``r`` output directions, in ``[0, 1]``.

    Takes the top-``r`` left singular vectors (the directions in output space that each update
    writes to most) of both updates and returns their :func:`subspace_similarity`,
    ``||U_aᵀ U_b||_F^2 / r`` (Hu et al., 2021, Section 7.2, who compare singular vectors of A
    the same way). 1 means the same column space, 0 orthogonal ones; a random pair of
    ``r``-dimensional subspaces of ``R^d_out`` scores about ``r / d_out``.

    Args:
        delta_a: ``(d_out, d_in_a)`` update, e.g. a learned ``B @ A``.
        delta_b: ``(d_out, d_in_b)`` update, e.g. a planted ``B_star @ A_star``.
        r: how many directions to compare; each update needs at least ``r`` nonzero singular
            values, or its extra "directions" would be arbitrary.
    """
    delta_a = _require_matrix("delta_a", delta_a)
    delta_b = _require_matrix("delta_b", delta_b)
    if delta_a.shape[0] != delta_b.shape[0]:
        raise ValueError(
            f"delta_a has {delta_a.shape[0]} rows and delta_b has {delta_b.shape[0]}; their column "
            "spaces can only be compared when both updates have the same d_out."
        )
    bases = []
    for name, delta in (("delta_a", delta_a), ("delta_b", delta_b)):
        rank = _require_rank_within("r", r, delta.shape)
        U, S, _ = torch.linalg.svd(delta, full_matrices=False)
        # The numerical-rank tolerance of numpy.linalg.matrix_rank.
        zero_tolerance = S[0] * max(delta.shape) * torch.finfo(delta.dtype).eps
        if S[rank - 1] <= zero_tolerance:
            raise ValueError(
                f"{name} has fewer than r={rank} nonzero singular values (s_{rank} = "
                f"{S[rank - 1].item():.3g}, s_1 = {S[0].item():.3g}), so its top-{rank} subspace "
                f"is not defined. Use r no larger than its rank (see energy_rank({name}, 1.0))."
            )
        bases.append(U[:, :rank])
    return subspace_similarity(bases[0], bases[1])


def planted_low_rank(
    d_out: int, d_in: int, r: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random factors ``B_star: (d_out, r)`` and ``A_star: (r, d_in)`` of a planted rank-r update.

    Entries are Gaussian, ``B_star ~ N(0, 1/r)`` and ``A_star ~ N(0, 1/d_in)``, so the entries of
    ``ΔW* = B_star @ A_star`` have variance ``1 / d_in`` and ``x @ ΔW*ᵀ`` has the scale of a
    standard-normal ``x``. The same ``seed`` always gives the same factors (a private
    ``torch.Generator`` is used; the global RNG is untouched).
    """
    d_out = require_int("d_out", d_out, example="d_out=768 (the weight's out_features)")
    d_in = require_int("d_in", d_in, example="d_in=768 (the weight's in_features)")
    r = _require_rank_within("r", r, torch.Size([d_out, d_in]))
    generator = torch.Generator().manual_seed(seed)
    B_star = torch.randn(d_out, r, generator=generator) / math.sqrt(r)
    A_star = torch.randn(r, d_in, generator=generator) / math.sqrt(d_in)
    return B_star, A_star


class PlantedFit(NamedTuple):
    """What :func:`fit_planted_update` returns."""

    losses: list[float]
    """Mean squared error between the adapted and the target outputs, one value per step."""
    learned_delta: torch.Tensor
    """The learned update ``B @ A``, shape ``(d_out, d_in)``."""


def fit_planted_update(
    W: torch.Tensor,
    delta_star: torch.Tensor,
    r: int,
    steps: int = 300,
    lr: float = 0.02,
    seed: int = 0,
    batch_size: int = 128,
) -> PlantedFit:
    """Train LoRA factors ``B``, ``A`` so that the frozen ``W`` plus ``B A`` imitates ``W + ΔW*``.

    Each step draws a fresh batch ``x: (batch_size, d_in)`` of standard-normal inputs and
    minimises the mean squared error between ``x @ (W + B A)ᵀ`` and ``x @ (W + ΔW*)ᵀ`` with Adam.
    ``W`` never changes; only ``A: (r, d_in)`` and ``B: (d_out, r)`` train, initialised as PEFT
    does: ``A`` Kaiming-uniform (``a = sqrt(5)``), ``B`` zeros, so ``B A = 0`` at step 0 and the
    adapted layer starts equal to the frozen one. No ``alpha / r`` scale is applied.

    ``W``: ``(d_out, d_in)``; ``delta_star``: the update to recover, of ``W``'s shape (e.g.
    ``B_star @ A_star``); ``r``: the rank of the learned ``B A``; ``steps`` Adam steps at ``lr``,
    one batch each; ``seed`` seeds ``A`` and the batches. With the defaults, a rank-2 ``ΔW*`` from
    :func:`planted_low_rank` at ``d = 64`` reaches a loss below ``1e-4`` in well under a second.

    Returns :class:`PlantedFit` with ``losses`` (``steps`` floats) and ``learned_delta`` (B A).
    """
    W = _require_matrix("W", W).detach()
    delta_star = _require_matrix("delta_star", delta_star).detach()
    if delta_star.shape != W.shape:
        raise ValueError(
            f"delta_star has shape {tuple(delta_star.shape)} but W has {tuple(W.shape)}; "
            "the planted update must have W's shape (d_out, d_in)."
        )
    r = _require_rank_within("r", r, W.shape)
    steps = require_int("steps", steps, example=300)
    lr = require_number("lr", lr, 0, low_open=True, example=0.02)
    batch_size = require_int("batch_size", batch_size, example=128)

    d_out, d_in = W.shape
    generator = torch.Generator().manual_seed(seed)
    A = torch.empty(r, d_in, dtype=W.dtype)
    torch.nn.init.kaiming_uniform_(A, a=math.sqrt(5), generator=generator)
    A.requires_grad_()
    B = torch.zeros(d_out, r, dtype=W.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([A, B], lr=lr)
    target_weight = W + delta_star

    losses = []
    for _ in range(steps):
        x = torch.randn(batch_size, d_in, generator=generator, dtype=W.dtype)
        loss = torch.nn.functional.mse_loss(x @ (W + B @ A).T, x @ target_weight.T)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return PlantedFit(losses=losses, learned_delta=(B @ A).detach())
