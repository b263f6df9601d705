"""TEXTSPAN: the fast batched version picks exactly what the plain reference steps pick."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clipconcepts.textspan import (
    HeadMoments,
    MomentAccumulator,
    textspan,
    textspan_from_moments,
    textspan_reference,
)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _random_case(
    rng: np.random.Generator, k: int, n: int, d: int, t: int
) -> tuple[np.ndarray, np.ndarray]:
    """Heads with a decaying spectrum and a mean offset (float32), unit texts."""
    scales = 1.0 / np.sqrt(1.0 + np.arange(d))
    data = np.stack(
        [
            (rng.standard_normal((n, d)) * scales) @ np.linalg.qr(rng.standard_normal((d, d)))[0]
            + rng.standard_normal(d)
            for _ in range(k)
        ]
    ).astype(np.float32)
    texts = _unit_rows(rng.standard_normal((t, d))).astype(np.float32)
    return data, texts


@pytest.mark.parametrize(
    ("k", "n", "d", "t", "rank", "iters"),
    [
        (3, 400, 32, 150, 16, 5),  # rank < D
        (2, 300, 48, 500, 80, 6),  # rank > D: clamped to D
        (4, 60, 64, 200, 80, 5),  # N < D and N < rank: clamped to N
        (1, 1000, 24, 90, 8, 8),  # iters == rank
    ],
)
def test_identical_picks_to_reference(k: int, n: int, d: int, t: int, rank: int, iters: int):
    rng = np.random.default_rng(k * 1000 + n + d)
    data, texts = _random_case(rng, k, n, d, t)
    ours = textspan(data, texts, iters=iters, rank=rank)
    ref_idx, ref_var = textspan_reference(data, texts, iters, rank)
    assert ours.indices.shape == (k, iters)
    np.testing.assert_array_equal(ours.indices.numpy(), ref_idx)
    np.testing.assert_allclose(ours.variance.numpy(), ref_var, rtol=1e-8)
    assert ours.rank.tolist() == [min(rank, n, d)] * k
    assert all(len(set(row)) == iters for row in ours.indices.tolist())


def test_total_variance_and_fraction():
    rng = np.random.default_rng(3)
    data, texts = _random_case(rng, 2, 300, 16, 40)
    ours = textspan(data, texts, iters=16, rank=16)
    total = data.astype(np.float64).var(axis=1, ddof=1).sum(axis=1)
    np.testing.assert_allclose(ours.total_variance.numpy(), total, rtol=1e-10)
    # With rank = D and iters = D the picks peel off all the variance (texts span R^D).
    np.testing.assert_allclose(ours.fraction.sum(dim=1).numpy(), 1.0, rtol=1e-8)
    assert (ours.fraction >= 0).all()


def test_planted_texts_are_picked_first():
    rng = np.random.default_rng(7)
    n, d, t = 2000, 64, 300
    texts = _unit_rows(rng.standard_normal((t, d)))
    planted = [17, 123, 250]
    strengths = [5.0, 3.0, 2.0]
    latent = rng.standard_normal((n, len(planted))) * strengths
    data = latent @ texts[planted] + 0.1 * rng.standard_normal((n, d)) + 0.5
    result = textspan(data.astype(np.float32), texts.astype(np.float32), iters=5, rank=32)
    assert result.indices[0, :3].tolist() == planted
    ref_idx, _ = textspan_reference(data, texts, 5, 32)
    np.testing.assert_array_equal(result.indices.numpy(), ref_idx)
    # The planted directions carry nearly all the variance.
    assert float(result.fraction[0, :3].sum()) > 0.9


def test_rank_above_data_rank_and_n_below_rank():
    """Data of rank 6 with N=40 < rank=80 < D=96: no crash, picks as the reference with rtol."""
    rng = np.random.default_rng(11)
    n, d, t, true_rank = 40, 96, 120, 6
    texts = _unit_rows(rng.standard_normal((t, d)))
    data = np.stack(
        [rng.standard_normal((n, true_rank)) @ rng.standard_normal((true_rank, d)) for _ in "ab"]
    )
    result = textspan(data, texts, iters=5, rank=80)  # default rtol 1e-5
    assert result.rank.tolist() == [true_rank, true_rank]
    ref_idx, ref_var = textspan_reference(data, texts, 5, 80, rtol=1e-5)
    np.testing.assert_array_equal(result.indices.numpy(), ref_idx)
    np.testing.assert_allclose(result.variance.numpy(), ref_var, rtol=1e-7)
    # The first pick does not depend on the null directions: the untruncated reference agrees.
    raw_idx, _ = textspan_reference(data, texts, 1, 80)
    np.testing.assert_array_equal(result.indices[:, 0].numpy(), raw_idx[:, 0])


def test_more_iters_than_span_directions_never_repeats():
    rng = np.random.default_rng(5)
    n, d, t = 50, 32, 40
    texts = _unit_rows(rng.standard_normal((t, d)))
    data = rng.standard_normal((n, 3)) @ rng.standard_normal((3, d))  # rank 3
    result = textspan(data, texts, iters=8, rank=80)
    picks = result.indices[0].tolist()
    assert len(set(picks)) == len(picks) == 8
    assert torch.isfinite(result.variance).all()
    assert result.rank.tolist() == [3]
    # Once the span is exhausted, further picks explain nothing.
    assert float(result.variance[0, 3:].abs().max()) <= 1e-9 * float(result.variance[0, 0])


def test_two_dimensional_input_and_torch_input():
    rng = np.random.default_rng(2)
    data, texts = _random_case(rng, 1, 200, 20, 50)
    from_numpy_3d = textspan(data, texts, iters=4, rank=10)
    from_numpy_2d = textspan(data[0], texts, iters=4, rank=10)
    from_torch_2d = textspan(torch.from_numpy(data[0]), torch.from_numpy(texts), iters=4, rank=10)
    assert from_numpy_2d.indices.shape == (1, 4)
    assert from_numpy_2d.total_variance.shape == (1,)
    for other in (from_numpy_2d, from_torch_2d):
        assert torch.equal(other.indices, from_numpy_3d.indices)
        torch.testing.assert_close(other.variance, from_numpy_3d.variance)


def test_torch_engine_matches_numpy_engine():
    """The torch engine (used on GPUs, batched over heads) agrees with the numpy CPU engine."""
    rng = np.random.default_rng(8)
    data, texts = _random_case(rng, 3, 300, 40, 120)
    data[1, :, :] = data[1, :, :4] @ rng.standard_normal((4, 40)).astype(np.float32)  # rank 4
    by_numpy = textspan(data, texts, iters=6, rank=20, engine="numpy")
    by_torch = textspan(data, texts, iters=6, rank=20, engine="torch")
    assert torch.equal(by_numpy.indices, by_torch.indices)
    assert torch.equal(by_numpy.rank, by_torch.rank)
    assert by_numpy.rank.tolist() == [20, 4, 20]
    torch.testing.assert_close(by_numpy.variance, by_torch.variance, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(by_numpy.total_variance, by_torch.total_variance)


def test_head_chunking_gives_the_same_result():
    rng = np.random.default_rng(9)
    data, texts = _random_case(rng, 5, 150, 24, 60)
    whole = textspan(data, texts, iters=5, rank=12)
    chunked = textspan(data, texts, iters=5, rank=12, memory_budget_mb=0)  # one head per chunk
    assert torch.equal(whole.indices, chunked.indices)
    torch.testing.assert_close(whole.variance, chunked.variance)


@pytest.mark.parametrize(
    ("data_shape", "text_shape", "kwargs", "message"),
    [
        ((2, 10, 8), (5, 7), {}, "D=8"),
        ((10,), (5, 10), {}, r"\[K, N, D\]"),
        ((2, 1, 8), (5, 8), {}, "at least 2 images"),
        ((2, 10, 8), (3, 8), {"iters": 5}, "T=3"),
        ((2, 10, 8), (5, 8), {"rank": 0}, "rank"),
        ((2, 10, 8), (5, 8), {"rtol": 1e-9}, "rtol"),
        ((2, 10, 8), (5, 8), {"engine": "jax"}, "engine"),
    ],
)
def test_bad_input_is_named(data_shape, text_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        textspan(np.zeros(data_shape, np.float32), np.ones(text_shape, np.float32), **kwargs)


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_non_finite_contributions_are_refused(engine):
    data = np.ones((2, 10, 8), np.float32)
    data[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="head 1 hold NaN" if engine == "numpy" else "NaN"):
        textspan(data, np.ones((5, 8), np.float32), engine=engine)


def _stream(data: np.ndarray, engine: str = "auto", seed: int = 0) -> HeadMoments:
    """Feed ``[K, N, D]`` to an accumulator in blocks of random sizes, heads interleaved."""
    k, n, d = data.shape
    rng = np.random.default_rng(seed)
    acc = MomentAccumulator(k, d, engine=engine)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, 6), replace=False))
    blocks = [(h, lo, hi) for h in range(k) for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)]
    for i in rng.permutation(len(blocks)):
        h, lo, hi = blocks[i]
        acc.add(h, data[h, lo:hi])
    return acc.moments()


@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_streamed_moments_match_plain_mean_and_covariance(engine):
    rng = np.random.default_rng(12)
    data, _ = _random_case(rng, 3, 257, 16, 10)
    data += 50.0  # a large offset: the pairwise update must not cancel
    moments = _stream(data, engine)
    assert moments.n == 257
    for h in range(3):
        x = data[h].astype(np.float64)
        np.testing.assert_allclose(moments.mean[h].numpy(), x.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(
            moments.gram[h].numpy() / 256, np.cov(x, rowvar=False), rtol=1e-9, atol=1e-12
        )


@pytest.mark.parametrize(
    ("k", "n", "d", "t", "rank", "iters"),
    [(3, 400, 32, 150, 16, 5), (4, 60, 64, 200, 80, 5), (2, 300, 48, 500, 80, 6)],
)
def test_streamed_textspan_picks_as_in_memory_and_reference(k, n, d, t, rank, iters):
    """TEXTSPAN from streamed moments (how the workflow reads heads.parquet) picks exactly what
    the in-memory path and the plain reference pick."""
    rng = np.random.default_rng(k * 1000 + n + d)
    data, texts = _random_case(rng, k, n, d, t)
    in_memory = textspan(data, texts, iters=iters, rank=rank)
    for engine in ("numpy", "torch"):
        streamed = textspan_from_moments(_stream(data), texts, iters, rank, engine=engine)
        assert torch.equal(streamed.indices, in_memory.indices)
        assert torch.equal(streamed.rank, in_memory.rank)
        torch.testing.assert_close(streamed.variance, in_memory.variance, rtol=1e-9, atol=0)
        torch.testing.assert_close(streamed.total_variance, in_memory.total_variance)
    ref_idx, _ = textspan_reference(data, texts, iters, rank)
    np.testing.assert_array_equal(streamed.indices.numpy(), ref_idx)
    chunked = textspan_from_moments(_stream(data), texts, iters, rank, memory_budget_mb=0)
    assert torch.equal(chunked.indices, in_memory.indices)


def test_accumulator_refuses_uneven_heads():
    acc = MomentAccumulator(2, 4)
    acc.add(0, np.ones((3, 4), np.float32))
    acc.add(1, np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"different numbers of rows: \[3, 2\]"):
        acc.moments()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(4)
    data, texts = _random_case(rng, 4, 500, 64, 300)
    on_cpu = textspan(data, texts, iters=5, rank=32)
    on_gpu = textspan(torch.from_numpy(data).cuda(), torch.from_numpy(texts), iters=5, rank=32)
    assert torch.equal(on_cpu.indices, on_gpu.indices)
    torch.testing.assert_close(on_cpu.variance, on_gpu.variance)
