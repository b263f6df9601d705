"""Attribution patching, direct effect, true effect and deletion curves on tiny random CLIPs."""

from __future__ import annotations

import copy

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F

from clipconcepts.attribution.ablation import scope_heads, true_effects
from clipconcepts.attribution.deletion import deletion_orders, deletion_points
from clipconcepts.attribution.patching import (
    attribution_patching,
    encode_patched,
    encode_patched_multi,
    frozen,
    head_means,
)
from clipconcepts.attribution.schemas import ABLATION, SCORES
from clipconcepts.attribution.scores import score_images
from clipconcepts.attribution.targets import Target, make_target, sample, target_cosine
from clipconcepts.models import HeadAwareCLIP


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: one thread is fastest, and immune to a busy machine's other threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clip64(tiny_clip):
    """The tiny model in float64, so finite differences are not drowned by rounding."""
    model = copy.deepcopy(tiny_clip.model).double()
    return HeadAwareCLIP(model, tiny_clip.preprocess, tiny_clip.tokenizer, tiny_clip.spec)


def _text(clip, n_classes=5, seed=7, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n_classes, clip.embed_dim, generator=gen, dtype=dtype), dim=-1)


def _labels(n, n_classes=5):
    return torch.arange(n) % n_classes


def _y_scaled(clip, images, text, labels, layer, head, alpha, fill=None):
    """y with head (layer, head)'s output replaced by alpha * a + (1 - alpha) * fill."""
    keep = torch.ones(len(images), clip.n_heads, dtype=torch.float64)
    keep[:, head] = alpha
    residual = clip.residual_before(images, layer)
    emb = encode_patched(clip, residual, layer, {layer: keep}, fill)
    return target_cosine(emb, text, labels)


# ---------------------------------------------------------------------------- AtP
def test_forward_matches_open_clip(tiny_clip, tiny_images):
    text = _text(tiny_clip, dtype=torch.float32)
    atp = attribution_patching(tiny_clip, tiny_images, text, _labels(len(tiny_images)))
    reference = tiny_clip.encode_image(tiny_images)
    torch.testing.assert_close(atp.embedding, reference, rtol=1e-4, atol=1e-5)
    assert atp.zero.shape == (len(tiny_images), tiny_clip.n_layers, tiny_clip.n_heads)
    torch.testing.assert_close(
        atp.y, target_cosine(reference, text, _labels(len(tiny_images))), rtol=1e-4, atol=1e-5
    )


def test_atp_is_the_first_order_effect_of_scaling_a_head(clip64, tiny_images):
    images = tiny_images.double()
    text, labels = _text(clip64), _labels(len(images))
    atp = attribution_patching(clip64, images, text, labels)
    for layer in range(clip64.n_layers):
        gaps = []
        for eps in (2e-2, 1e-2, 5e-3):
            for head in range(clip64.n_heads):
                y1 = _y_scaled(clip64, images, text, labels, layer, head, 1.0)
                torch.testing.assert_close(y1, atp.y)
                y0 = _y_scaled(clip64, images, text, labels, layer, head, 1.0 - eps)
                linear = eps * atp.zero[:, layer, head]
                gaps.append((y1 - y0 - linear).abs().sum().item())
        gaps = np.array(gaps).reshape(3, clip64.n_heads).sum(1)
        # the remainder is second order: halving the step quarters it
        assert 3.5 < gaps[0] / gaps[1] < 4.5 and 3.5 < gaps[1] / gaps[2] < 4.5, (layer, gaps)
        # and small next to the first-order term
        assert gaps[2] < 1e-2 * (5e-3 * atp.zero[:, layer].abs().sum().item())


def test_mean_baseline_is_the_first_order_effect_of_moving_to_the_mean(clip64, tiny_images):
    images = tiny_images.double()
    text, labels = _text(clip64), _labels(len(images))
    means = head_means(clip64, [images[:3], images[3:]])  # the same means in two batches
    torch.testing.assert_close(means, head_means(clip64, [images]))
    atp = attribution_patching(clip64, images, text, labels, means)
    layer, head = clip64.n_layers - 1, 1
    y1 = _y_scaled(clip64, images, text, labels, layer, head, 1.0, means)
    gaps = []
    for eps in (1e-2, 5e-3):
        y0 = _y_scaled(clip64, images, text, labels, layer, head, 1.0 - eps, means)
        gaps.append((y1 - y0 - eps * atp.mean[:, layer, head]).abs().sum().item())
    assert 3.5 < gaps[0] / gaps[1] < 4.5
    # the two baselines differ by the mean's share: a mean of zero gives the zero baseline
    zero_means = torch.zeros_like(means)
    again = attribution_patching(clip64, images, text, labels, zero_means)
    torch.testing.assert_close(again.mean, again.zero)


def test_mean_baseline_vanishes_when_every_image_is_the_mean(clip64, tiny_images):
    images = tiny_images[:1].double().repeat(4, 1, 1, 1)
    text = _text(clip64)
    means = head_means(clip64, [images])
    atp = attribution_patching(clip64, images, text, _labels(4), means)
    assert atp.mean.abs().max().item() < 1e-10
    assert atp.zero.abs().max().item() > 1e-6


def test_no_parameter_changes_and_no_parameter_gradients(tiny_clip, tiny_images, monkeypatch):
    before = {name: p.detach().clone() for name, p in tiny_clip.model.named_parameters()}
    flags = {name: p.requires_grad for name, p in tiny_clip.model.named_parameters()}
    seen = []
    grad = torch.autograd.grad

    def spy(outputs, inputs, *args, **kwargs):  # the backward pass: what may get a gradient
        seen.extend(p.requires_grad for p in tiny_clip.model.parameters())
        assert all(x.grad_fn is not None or x.is_leaf for x in inputs)
        return grad(outputs, inputs, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    means = head_means(tiny_clip, [tiny_images])
    atp = attribution_patching(
        tiny_clip, tiny_images, _text(tiny_clip, dtype=torch.float32), None, means
    )
    assert seen and not any(seen)  # no parameter in the graph
    assert atp.zero.abs().sum() > 0 and atp.mean.abs().sum() > 0
    for name, p in tiny_clip.model.named_parameters():
        assert p.grad is None, name
        assert torch.equal(p.detach(), before[name]), name
        assert p.requires_grad == flags[name], name


def test_frozen_restores_flags_after_an_error(tiny_clip):
    flags = [p.requires_grad for p in tiny_clip.model.parameters()]
    with pytest.raises(RuntimeError), frozen(tiny_clip.model):
        raise RuntimeError("boom")
    assert [p.requires_grad for p in tiny_clip.model.parameters()] == flags


def test_predicted_target_is_the_argmax(tiny_clip, tiny_images):
    text = _text(tiny_clip, dtype=torch.float32)
    atp = attribution_patching(tiny_clip, tiny_images, text, None)
    emb = F.normalize(tiny_clip.encode_image(tiny_images), dim=-1)
    assert torch.equal(atp.target, (emb @ text.T).argmax(-1))


# ---------------------------------------------------------------------------- scores table
def _batches(images, labels, size=4):
    def make():
        for start in range(0, len(images), size):
            ids = [f"img{i}" for i in range(start, min(start + size, len(images)))]
            yield images[start : start + size], ids, labels[start : start + size]

    return make


def test_direct_effects_add_up_to_y(clip64, tiny_images):
    images = tiny_images.double()
    text, labels = _text(clip64), _labels(len(images))
    target = Target("truth", text, text)
    frame = score_images(clip64, _batches(images, labels), target)
    assert frame.schema == pl.Schema(SCORES)
    assert len(frame) == len(images) * clip64.n_layers * clip64.n_heads
    dec = clip64.decompose(images, with_mlps=True)
    e = dec.image_embedding
    rest = ((dec.embedding + dec.mlps.sum(1)) * text[labels]).sum(-1) / e.norm(dim=-1)
    per_image = frame.group_by("image_id", maintain_order=True).agg(
        pl.col("direct").sum(), pl.col("y").first()
    )
    np.testing.assert_allclose(per_image["direct"].to_numpy() + rest.numpy(), per_image["y"])
    # energy is |contribution| / |e|; the Logit Lens is one value per head and target class
    heads = dec.heads[0, 0, 0]
    first = frame.filter((pl.col("image_id") == "img0") & (pl.col("layer") == 0))
    assert first["energy"][0] == pytest.approx((heads.norm() / e[0].norm()).item())
    lens = frame.group_by("layer", "head", "target").agg(
        spread=pl.col("logit_lens").max() - pl.col("logit_lens").min()
    )
    assert lens["spread"].max() < 1e-12
    assert frame["atp_mean"].null_count() == 0


def test_zero_baseline_only_leaves_atp_mean_null(tiny_clip, tiny_images):
    text = _text(tiny_clip, dtype=torch.float32)
    target = Target("predicted", text, text)
    frame = score_images(
        tiny_clip, _batches(tiny_images, _labels(len(tiny_images))), target, ["zero"]
    )
    assert frame["atp_mean"].null_count() == len(frame)


def test_prompt_target_embeds_the_prompt(tiny_clip):
    classifier = _text(tiny_clip, dtype=torch.float32)
    target = make_target(tiny_clip, "prompt", classifier, "a photo of a dog")
    expected = F.normalize(tiny_clip.encode_text(["a photo of a dog"]), dim=-1)
    torch.testing.assert_close(target.text, expected)
    assert target.ids(torch.tensor([3, 1])).tolist() == [0, 0]
    assert target.stored(torch.tensor([0, 0])).tolist() == [-1, -1]
    with pytest.raises(ValueError, match="attribution.prompt"):
        make_target(tiny_clip, "prompt", classifier, "")
    with pytest.raises(ValueError, match="attribution.target"):
        make_target(tiny_clip, "logit", classifier)


# ---------------------------------------------------------------------------- true effect
def test_true_effect_equals_pruned_encoding(tiny_clip, tiny_images):
    text, labels = _text(tiny_clip, dtype=torch.float32), _labels(len(tiny_images))
    target = Target("truth", text, text)
    heads = scope_heads(tiny_clip.n_layers, tiny_clip.n_heads, "all")
    means = head_means(tiny_clip, [tiny_images])
    frame = true_effects(tiny_clip, _batches(tiny_images, labels), target, heads, means=means)
    assert frame.schema == pl.Schema(ABLATION)
    assert len(frame) == len(tiny_images) * len(heads)
    clean = target_cosine(tiny_clip.encode_image(tiny_images), text, labels)
    for layer, head in [(0, 0), (tiny_clip.n_layers - 1, 2), (1, 3)]:
        pruned = target_cosine(
            tiny_clip.encode_image(tiny_images, prune=[(layer, head)]), text, labels
        )
        rows = frame.filter((pl.col("layer") == layer) & (pl.col("head") == head))
        np.testing.assert_allclose(rows["true_zero"], (clean - pruned).numpy(), atol=1e-5)
        # mean ablation: the head's output set to its mean at every token
        keep = torch.ones(len(tiny_images), tiny_clip.n_heads)
        keep[:, head] = 0
        residual = tiny_clip.residual_before(tiny_images, layer)
        mean_emb = encode_patched(tiny_clip, residual, layer, {layer: keep}, means)
        expected = clean - target_cosine(mean_emb, text, labels)
        np.testing.assert_allclose(rows["true_mean"], expected.numpy(), atol=1e-5)
        correct = (F.normalize(tiny_clip.encode_image(tiny_images, prune=[(layer, head)]), dim=-1)
                   @ text.T).argmax(-1) == labels  # fmt: skip
        assert rows["correct_zero"].to_list() == correct.tolist()


def test_patched_multi_without_fill_is_soft_pruning(tiny_clip, tiny_images):
    sets = [[], [(1, 0)], [(1, 2), (2, 1)]]
    ours = encode_patched_multi(tiny_clip, tiny_images, sets, fill=None, sets_per_pass=2)
    theirs = tiny_clip.encode_image_multi(tiny_images, sets, sets_per_pass=2)
    torch.testing.assert_close(ours, theirs)


def test_scope_heads():
    assert scope_heads(6, 2, "last4")[0] == (2, 0) and len(scope_heads(6, 2, "last4")) == 8
    assert len(scope_heads(3, 2, "last4")) == 6 and len(scope_heads(6, 2, "all")) == 12
    with pytest.raises(ValueError, match="attribution.layers"):
        scope_heads(6, 2, "first")


# ---------------------------------------------------------------------------- deletion
def test_deletion_curves_start_at_the_unpruned_y(tiny_clip, tiny_images):
    text, labels = _text(tiny_clip, dtype=torch.float32), _labels(len(tiny_images))
    target = Target("truth", text, text)
    batches = _batches(tiny_images, labels)
    pool = scope_heads(tiny_clip.n_layers, tiny_clip.n_heads, "last4")
    scores = score_images(tiny_clip, batches, target, ["zero"])
    ablation = true_effects(tiny_clip, batches, target, pool, ["zero"])
    ids = scores["image_id"].unique(maintain_order=True).to_list()
    ccs = {h: float(i % 3) for i, h in enumerate(pool)}
    orders = deletion_orders(ids, pool, scores, ablation, ccs, seed=0)
    points = deletion_points(tiny_clip, batches, target, pool, orders, num_steps=3)
    clean = 100 * target_cosine(tiny_clip.encode_image(tiny_images), text, labels)
    for method in orders:
        start = points.filter((pl.col("method") == method) & (pl.col("step") == 0))
        np.testing.assert_allclose(start["y100"], clean.numpy(), rtol=1e-5)
    # step 2 of image 3 under AtP: its two highest-AtP heads of the pool zeroed
    image = 3
    atp = scores.filter(pl.col("image_id") == f"img{image}")
    atp = atp.filter(pl.col("layer") >= pool[0][0]).sort("atp_zero", descending=True)
    top2 = [(int(a), int(b)) for a, b in atp.select("layer", "head").head(2).rows()]
    assert [pool[i] for i in orders["atp"][f"img{image}"][:2]] == top2
    pruned = tiny_clip.encode_image(tiny_images[image : image + 1], prune=top2)
    expected = 100 * target_cosine(pruned, text, labels[image : image + 1])
    got = points.filter(
        (pl.col("method") == "atp") & (pl.col("step") == 2) & (pl.col("image_id") == f"img{image}")
    )
    assert got["y100"][0] == pytest.approx(expected.item(), rel=1e-5)
    # CCS order: highest CCS first for every image; ties in some order
    for image_id in ids:
        values = [ccs[pool[i]] for i in orders["ccs"][image_id]]
        assert values == sorted(values, reverse=True)


# ---------------------------------------------------------------------------- sampling
class _Items(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i)), i % 2


def test_sample_keeps_original_ids():
    from clipconcepts.attribution.targets import batches
    from clipconcepts.data.zeroshot import ZeroShotDataset

    dataset = ZeroShotDataset("toy", ["a", "b"], ["a photo of a {}."], torch_dataset=_Items())
    picked = sample(dataset, 4, seed=3)
    assert len(picked) == 4
    seen = [(ids, images[:, 0, 0, 0].tolist()) for images, ids, _ in batches(picked, 3)]
    ids = [i for part, _ in seen for i in part]
    values = [v for _, part in seen for v in part]
    assert ids == sorted(ids, key=int) and [float(i) for i in ids] == values
    assert sample(dataset, 4, seed=3).ids == picked.ids
    assert len(sample(dataset, None)) == 10 and len(sample(dataset, 50)) == 10
