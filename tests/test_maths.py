"""Tests for lorakit.maths: the low-rank algebra of notebook 01."""

import math

import pytest
import torch

from lorakit.maths import (
    energy_rank,
    fit_low_rank,
    fit_planted_update,
    full_parameter_count,
    lora_parameter_count,
    low_rank_error,
    parameter_table,
    planted_low_rank,
    singular_values,
    subspace_similarity,
    truncated_svd,
    update_similarity,
)


def gaussian_matrix(d_out: int, d_in: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(d_out, d_in, generator=generator, dtype=torch.float64)


def orthonormal_columns(d: int, k: int, seed: int = 0) -> torch.Tensor:
    Q, _ = torch.linalg.qr(gaussian_matrix(d, k, seed))
    return Q


# Parameter counts


def test_lora_count_for_a_square_768_matrix_at_rank_8():
    assert lora_parameter_count(768, 768, 8) == 12_288


def test_lora_and_full_counts_for_a_5000_by_10000_matrix():
    assert lora_parameter_count(5_000, 10_000, 8) == 120_000
    assert full_parameter_count(5_000, 10_000) == 50_000_000


def test_parameter_table_has_one_row_per_shape_and_rank():
    table = parameter_table([(768, 3072), (5_000, 10_000)], [1, 8])

    assert list(table.columns) == ["matrix", "r", "full", "lora", "ratio"]
    assert table["matrix"].tolist() == ["768×3072", "768×3072", "5000×10000", "5000×10000"]
    assert table["r"].tolist() == [1, 8, 1, 8]
    assert table["lora"].tolist() == [3_840, 30_720, 15_000, 120_000]
    row = table.iloc[3]
    assert row["full"] == 50_000_000
    assert row["ratio"] == pytest.approx(416.67, abs=0.01)


@pytest.mark.parametrize("bad_rank, error", [(0, ValueError), (-3, ValueError),
                                             (2.5, TypeError), (True, TypeError)])
def test_lora_count_rejects_a_rank_that_is_not_a_positive_int(bad_rank, error):
    with pytest.raises(error, match=rf"^r={bad_rank!r} is .*: use an int of at least 1"):
        lora_parameter_count(768, 768, bad_rank)


def test_full_count_rejects_a_zero_dimension():
    with pytest.raises(ValueError, match=r"d_in=0 is out of range: use an int of at least 1"):
        full_parameter_count(768, 0)


def test_parameter_table_rejects_a_shape_that_is_not_a_pair():
    with pytest.raises(TypeError, match=r"shape=768 has type int: use a pair \(d_out, d_in\)"):
        parameter_table([768], [8])


def test_parameter_table_names_a_bad_rank():
    with pytest.raises(ValueError, match=r"r=0 is out of range"):
        parameter_table([(768, 768)], [8, 0])


# Truncated SVD and Eckart–Young


def test_truncated_svd_has_the_requested_rank():
    W = gaussian_matrix(20, 12)

    W_3 = truncated_svd(W, 3)

    assert W_3.shape == (20, 12)
    assert torch.linalg.matrix_rank(W_3) == 3


def test_truncated_svd_beats_a_random_rank_r_matrix_fitted_by_least_squares():
    W = gaussian_matrix(20, 12)
    random_column_space = gaussian_matrix(20, 3, seed=1)
    least_squares_fit = random_column_space @ torch.linalg.lstsq(random_column_space, W).solution

    assert torch.linalg.norm(W - truncated_svd(W, 3)) < torch.linalg.norm(W - least_squares_fit)


def test_low_rank_error_from_singular_values_equals_the_explicit_reconstruction_error():
    W = gaussian_matrix(20, 12)
    ranks = [1, 2, 5, 11, 12]

    errors = low_rank_error(W, ranks)

    explicit = torch.stack(
        [torch.linalg.norm(W - truncated_svd(W, r)) / torch.linalg.norm(W) for r in ranks]
    )
    torch.testing.assert_close(errors, explicit)


def test_low_rank_error_keeps_small_tails_accurate_in_float32():
    W = gaussian_matrix(300, 200).float()
    ranks = [199, 200]

    errors = low_rank_error(W, ranks)

    explicit = torch.stack(
        [torch.linalg.norm(W - truncated_svd(W, r)) / torch.linalg.norm(W) for r in ranks]
    )
    torch.testing.assert_close(errors[0], explicit[0], rtol=1e-3, atol=0)
    assert errors[1].item() == 0.0


# At distilbert-base-uncased's width (768), in float32: the asserts notebook 01 and appendix A1
# make on the model's weight, on the CPU and, where there is one, on the GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))]


def pretrained_like_weight(d: int = 768, device: str = "cpu") -> torch.Tensor:
    """A float32 (d, d) matrix whose singular values fall like a pretrained weight's, i^-1/2
    (notebook 01's spectra), not flat like a random matrix's; random singular vectors."""
    generator = torch.Generator().manual_seed(0)
    U, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
    V, _ = torch.linalg.qr(torch.randn(d, d, generator=generator))
    spectrum = torch.arange(1, d + 1, dtype=torch.float32) ** -0.5
    return ((U * spectrum) @ V.T).to(device)


@pytest.mark.parametrize("device", DEVICES)
def test_eckart_young_holds_to_notebook_01s_tolerance_at_distilbert_width(device):
    W = pretrained_like_weight(device=device)
    S = torch.linalg.svdvals(W)
    ranks = [1, 768 // 8, 768 // 2]
    errors = low_rank_error(W, ranks)
    for r, error in zip(ranks, errors, strict=True):
        dropped = S[r:].pow(2).sum().sqrt() / W.norm()
        torch.testing.assert_close(error, dropped, rtol=0, atol=1e-4)
        explicit = (W - truncated_svd(W, r)).norm() / W.norm()
        torch.testing.assert_close(error, explicit, rtol=0, atol=1e-4)


@pytest.mark.parametrize("device", DEVICES)
def test_gradient_descent_reaches_the_truncated_svd_at_distilbert_width(device):
    W = pretrained_like_weight(device=device)
    for r in (8, 32):
        fitted, best = fit_low_rank(W, r), truncated_svd(W, r)
        assert fitted.shape == W.shape and fitted.device == W.device
        svd_error = ((W - best).norm() / W.norm()).item()
        descent_error = ((W - fitted).norm() / W.norm()).item()
        assert svd_error - 1e-5 <= descent_error <= svd_error + 1e-3, r  # appendix A1's asserts
        assert ((fitted - best).norm() / best.norm()).item() < 0.05, r


def test_fit_low_rank_names_a_rank_above_the_matrix():
    with pytest.raises(ValueError, match="r"):
        fit_low_rank(torch.ones(4, 3), 4)


def test_low_rank_error_is_zero_at_full_rank_and_decreasing_in_rank():
    W = gaussian_matrix(20, 12)

    errors = low_rank_error(W, list(range(1, 13)))

    assert errors[-1].item() == pytest.approx(0.0, abs=1e-7)
    assert bool((errors[1:] < errors[:-1]).all())
    assert 0 < errors[0].item() < 1


def test_low_rank_error_is_zero_from_the_true_rank_of_a_low_rank_matrix():
    B_star, A_star = planted_low_rank(30, 20, 4, seed=0)

    errors = low_rank_error(B_star @ A_star, [3, 4, 5])

    assert errors[0] > 0.05
    assert errors[1:].max() < 1e-5


def test_truncated_svd_rejects_a_rank_above_the_matrix_rank():
    with pytest.raises(ValueError, match=r"r=13 exceeds the largest possible rank 12"):
        truncated_svd(gaussian_matrix(20, 12), 13)


def test_truncated_svd_rejects_a_vector():
    with pytest.raises(
        ValueError, match=r"W must be a 2-D floating-point tensor.*got shape \(5,\)"
    ):
        truncated_svd(torch.ones(5), 1)


def test_low_rank_error_rejects_a_zero_matrix():
    with pytest.raises(ValueError, match="W is all zeros"):
        low_rank_error(torch.zeros(4, 3), [1])


# Spectra and energy


def test_singular_values_are_sorted_and_match_a_diagonal_matrix():
    W = torch.diag(torch.tensor([1.0, 3.0, 2.0]))

    torch.testing.assert_close(singular_values(W), torch.tensor([3.0, 2.0, 1.0]))


@pytest.mark.parametrize(
    ("fraction", "expected_rank"),
    # Squared values 9, 4, 1, 0 of 14 in total: shares 9/14 = 0.64, 13/14 = 0.93, 1, 1.
    [(0.5, 1), (0.64, 1), (0.65, 2), (0.9, 2), (0.93, 3), (1.0, 3)],
)
def test_energy_rank_on_a_hand_made_spectrum(fraction, expected_rank):
    spectrum = torch.tensor([3.0, 2.0, 1.0, 0.0])

    assert energy_rank(spectrum, fraction) == expected_rank


def test_energy_rank_accepts_a_matrix_and_an_unsorted_spectrum():
    W = torch.diag(torch.tensor([1.0, 0.0, 2.0, 3.0]))

    assert energy_rank(W, 0.9) == 2
    assert energy_rank(torch.tensor([1.0, 0.0, 2.0, 3.0]), 0.9) == 2


@pytest.mark.parametrize("bad_fraction", [0, 1.5, -0.1])
def test_energy_rank_rejects_a_fraction_outside_zero_one(bad_fraction):
    with pytest.raises(
        ValueError, match=rf"fraction={bad_fraction} is out of range: use .* in \(0, 1\]"
    ):
        energy_rank(torch.tensor([1.0]), bad_fraction)


def test_energy_rank_rejects_negative_singular_values():
    with pytest.raises(ValueError, match="non-negative"):
        energy_rank(torch.tensor([1.0, -1.0]))


# Subspace similarity


def test_subspace_similarity_is_one_for_the_same_subspace_in_another_basis():
    basis = orthonormal_columns(32, 4)
    rotation = orthonormal_columns(4, 4, seed=1)

    assert subspace_similarity(basis, basis @ rotation) == pytest.approx(1.0)


def test_subspace_similarity_is_zero_for_orthogonal_subspaces():
    columns = orthonormal_columns(32, 6)

    assert subspace_similarity(columns[:, :3], columns[:, 3:]) == pytest.approx(0.0, abs=1e-12)


def test_subspace_similarity_counts_the_shared_share_of_the_smaller_subspace():
    columns = orthonormal_columns(32, 4)

    # A 2-D subspace shares one of its two directions with a 3-D one.
    half_shared = subspace_similarity(columns[:, [0, 3]], columns[:, :3])

    assert half_shared == pytest.approx(0.5)


def test_subspace_similarity_rejects_a_basis_that_is_not_orthonormal():
    with pytest.raises(ValueError, match="basis_b must have orthonormal columns"):
        subspace_similarity(orthonormal_columns(8, 2), 2 * orthonormal_columns(8, 2))


def test_update_similarity_ignores_scale_and_the_input_side():
    B, A = planted_low_rank(40, 30, 3, seed=0)
    _, other_A = planted_low_rank(40, 50, 3, seed=1)
    mixing = gaussian_matrix(3, 3, seed=2).float()

    # Same column space as B A: B times any invertible r×r matrix times any full-rank A.
    similarity = update_similarity(B @ A, -5 * B @ mixing @ other_A, r=3)

    assert similarity == pytest.approx(1.0, abs=1e-5)


def test_update_similarity_is_zero_for_updates_writing_to_orthogonal_directions():
    columns = orthonormal_columns(40, 4)
    _, A = planted_low_rank(40, 30, 2, seed=0)

    similarity = update_similarity(columns[:, :2] @ A.double(), columns[:, 2:] @ A.double(), r=2)

    assert similarity == pytest.approx(0.0, abs=1e-12)


def test_update_similarity_rejects_r_above_the_rank_of_an_update():
    B, A = planted_low_rank(40, 30, 2, seed=0)

    with pytest.raises(ValueError, match=r"delta_b has fewer than r=3 nonzero singular values"):
        update_similarity(gaussian_matrix(40, 30).float(), B @ A, r=3)


def test_update_similarity_rejects_updates_of_different_output_size():
    with pytest.raises(ValueError, match="delta_a has 40 rows and delta_b has 30"):
        update_similarity(gaussian_matrix(40, 10), gaussian_matrix(30, 10), r=2)


# Planted low-rank update


def test_planted_low_rank_is_seeded_and_has_the_documented_shapes_and_scale():
    B_star, A_star = planted_low_rank(200, 300, 4, seed=7)
    B_again, A_again = planted_low_rank(200, 300, 4, seed=7)
    B_other, _ = planted_low_rank(200, 300, 4, seed=8)

    assert B_star.shape == (200, 4)
    assert A_star.shape == (4, 300)
    assert torch.equal(B_star, B_again) and torch.equal(A_star, A_again)
    assert not torch.equal(B_star, B_other)
    # Entries of B A have variance 1 / d_in.
    assert (B_star @ A_star).var().item() * 300 == pytest.approx(1.0, rel=0.2)


def test_fit_planted_update_recovers_a_rank_2_update_at_d_64():
    d = 64
    W = gaussian_matrix(d, d).float() / math.sqrt(d)  # a frozen layer; the fit never changes it
    B_star, A_star = planted_low_rank(d, d, 2, seed=1)
    delta_star = B_star @ A_star

    fit = fit_planted_update(W, delta_star, r=2, seed=0)

    assert len(fit.losses) == 300
    assert fit.losses[-1] < 1e-4
    assert update_similarity(fit.learned_delta, delta_star, r=2) > 0.99
    relative_error = torch.linalg.norm(fit.learned_delta - delta_star) / torch.linalg.norm(
        delta_star
    )
    assert relative_error < 1e-2


def test_fit_planted_update_starts_from_b_zero_so_the_first_update_is_tiny():
    B_star, A_star = planted_low_rank(16, 12, 2, seed=1)

    # One Adam step of size 1e-9 from B = 0 leaves B A near zero; a nonzero B would not.
    fit = fit_planted_update(torch.zeros(16, 12), B_star @ A_star, r=2, steps=1, lr=1e-9)

    assert fit.learned_delta.abs().max() < 1e-6


def test_fit_planted_update_is_deterministic_for_a_seed():
    W = gaussian_matrix(16, 12).float()
    B_star, A_star = planted_low_rank(16, 12, 2, seed=1)

    first = fit_planted_update(W, B_star @ A_star, r=2, steps=20, seed=5)
    second = fit_planted_update(W, B_star @ A_star, r=2, steps=20, seed=5)

    assert first.losses == second.losses
    assert torch.equal(first.learned_delta, second.learned_delta)


def test_fit_planted_update_rejects_a_target_of_another_shape():
    with pytest.raises(ValueError, match=r"delta_star has shape \(8, 4\) but W has \(8, 8\)"):
        fit_planted_update(torch.zeros(8, 8), torch.zeros(8, 4), r=2)


def test_fit_planted_update_rejects_zero_steps():
    with pytest.raises(ValueError, match=r"steps=0 is out of range"):
        fit_planted_update(torch.zeros(8, 8), torch.zeros(8, 8), r=2, steps=0)
