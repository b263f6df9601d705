"""The head-aware wrapper: decomposition, soft pruning, prefix reuse, loading."""

from __future__ import annotations

import copy

import open_clip
import pytest
import torch

from clipconcepts.models import UnknownModelError, load_clip, resolve_model_spec


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_all_terms_sum_to_encode_image(tiny_clip, tiny_images):
    dec = tiny_clip.decompose(tiny_images, layers=None, with_mlps=True)
    reference = tiny_clip.model.encode_image(tiny_images)  # open_clip's own forward
    assert dec.heads.shape == (6, tiny_clip.n_layers, tiny_clip.n_heads, tiny_clip.embed_dim)
    assert _rel_err(dec.total(), reference) < 1e-5
    # dropping any single term breaks the sum: the test can fail
    assert _rel_err(dec.total() - dec.heads[:, 0, 1], reference) > 1e-4


def _straightforward_head_contributions(clip, images, layers):
    """Independent recomputation: explicit loop over blocks and heads, softmax by hand."""
    v = clip.visual
    x = v.conv1(images).flatten(2).transpose(1, 2)
    cls = v.class_embedding.expand(x.shape[0], 1, -1)
    x = v.ln_pre(torch.cat([cls, x], 1) + v.positional_embedding)
    inputs = {}
    for i, block in enumerate(v.transformer.resblocks):
        inputs[i] = block.ln_1(x)
        x = block(x)
    final = x[:, 0]
    mu = final.mean(-1, keepdim=True)
    sigma = (final.var(-1, unbiased=False, keepdim=True) + v.ln_post.eps).sqrt()
    L, H, d = clip.n_layers, clip.n_heads, clip.head_dim
    out = []
    for layer in layers:
        layer = layer % L
        attn = v.transformer.resblocks[layer].attn
        ls = v.transformer.resblocks[layer].ls_1
        h_in = inputs[layer]
        W = h_in.shape[-1]
        per_head = []
        for h in range(H):
            rows = slice(h * d, (h + 1) * d)
            wq, wk, wv = (attn.in_proj_weight[j * W : (j + 1) * W][rows] for j in range(3))
            bq, bk, bv = (attn.in_proj_bias[j * W : (j + 1) * W][rows] for j in range(3))
            q = h_in[:, 0] @ wq.T + bq
            k = h_in @ wk.T + bk
            val = h_in @ wv.T + bv
            a = torch.softmax((k @ q.unsqueeze(-1)).squeeze(-1) / d**0.5, dim=-1)
            z = (a.unsqueeze(-1) * val).sum(1)
            c = ls(z @ attn.out_proj.weight[:, rows].T + attn.out_proj.bias / H)
            share = 1.0 / ((2 * L + 1) * H)
            c = (c - mu * share) / sigma * v.ln_post.weight + v.ln_post.bias * share
            per_head.append(c @ v.proj)
        out.append(torch.stack(per_head, 1))
    return torch.stack(out, 1)


def test_head_contributions_match_straightforward_recomputation(tiny_clip, tiny_images):
    layers = [-2, -1]
    ours = tiny_clip.head_contributions(tiny_images, layers)
    with torch.no_grad():
        theirs = _straightforward_head_contributions(tiny_clip, tiny_images, layers)
    assert ours.shape == theirs.shape
    assert _rel_err(ours, theirs) < 1e-5


def _zeroed_copy(clip, heads):
    model = copy.deepcopy(clip.model)
    d = clip.head_dim
    with torch.no_grad():
        for layer, head in heads:
            attn = model.visual.transformer.resblocks[layer].attn
            attn.out_proj.weight[:, head * d : (head + 1) * d] = 0
    return model


@pytest.mark.parametrize("heads", [[(0, 1)], [(1, 0), (1, 3)], [(0, 2), (2, 1), (-1, 0)]])
def test_prune_equals_zeroed_out_proj_columns(tiny_clip, tiny_images, heads):
    before = [p.clone() for p in tiny_clip.model.parameters()]
    pruned = tiny_clip.encode_image(tiny_images, prune=heads)
    resolved = [(layer % tiny_clip.n_layers, h) for layer, h in heads]
    expected = _zeroed_copy(tiny_clip, resolved).encode_image(tiny_images)
    assert _rel_err(pruned, expected) < 1e-5
    assert _rel_err(pruned, tiny_clip.encode_image(tiny_images)) > 1e-4  # pruning changes it
    assert all(torch.equal(a, b) for a, b in zip(before, tiny_clip.model.parameters(), strict=True))


def test_prefix_reuse_equals_full_passes(tiny_clip, tiny_images):
    sets = [[], [(1, 0)], [(2, 1), (2, 2)], [(1, 3), (-1, 0)]]
    multi = tiny_clip.encode_image_multi(tiny_images, sets, sets_per_pass=3)
    assert multi.shape == (len(sets), 6, tiny_clip.embed_dim)
    for i, heads in enumerate(sets):
        full = tiny_clip.encode_image(tiny_images, prune=heads)
        assert _rel_err(multi[i], full) < 1e-5
    residual = tiny_clip.residual_before(tiny_images, 1)
    again = tiny_clip.encode_from_residual(residual, 1, prune=[(2, 1)])
    assert _rel_err(again, tiny_clip.encode_image(tiny_images, prune=[(2, 1)])) < 1e-5
    with pytest.raises(ValueError, match="before the reused residual"):
        tiny_clip.encode_from_residual(residual, 1, prune=[(0, 1)])


def test_layer_and_head_errors(tiny_clip, tiny_images):
    with pytest.raises(IndexError, match="layer 7"):
        tiny_clip.head_contributions(tiny_images, [7])
    with pytest.raises(IndexError, match="head 99"):
        tiny_clip.encode_image(tiny_images, prune=[(0, 99)])


def test_encode_text_normalised(tiny_clip):
    emb = tiny_clip.encode_text(["a red circle", "a blue square", "x"], batch_size=2)
    assert emb.shape == (3, tiny_clip.embed_dim)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_quick_gelu_for_openai_weights():
    assert resolve_model_spec("ViT-B-32", "openai").force_quick_gelu
    assert resolve_model_spec("ViT-B-16", "openai").force_quick_gelu
    assert not resolve_model_spec("ViT-B-32", "laion2b_s34b_b79k").force_quick_gelu
    assert not resolve_model_spec("ViT-B-32-quickgelu", "openai").force_quick_gelu
    assert not resolve_model_spec("ViT-B-32", None).force_quick_gelu


def test_quick_gelu_really_built(monkeypatch):
    """The flag reaches open_clip: the built MLPs use QuickGELU (weights are not downloaded)."""
    from open_clip.transformer import QuickGELU

    real = open_clip.create_model_and_transforms
    seen = {}

    def fake(name, pretrained=None, **kw):
        seen.update(kw, pretrained=pretrained)
        return real("ViT-B-32", pretrained=None, **kw)

    monkeypatch.setattr(open_clip, "create_model_and_transforms", fake)
    clip = load_clip("ViT-B-32", "openai")
    assert seen["force_quick_gelu"] and seen["pretrained"] == "openai"
    assert isinstance(clip.blocks[0].mlp.gelu, QuickGELU)


def test_unknown_model_names_closest():
    with pytest.raises(UnknownModelError, match="ViT-B-32"):
        resolve_model_spec("ViT-B-23")
    with pytest.raises(UnknownModelError, match="openai"):
        resolve_model_spec("ViT-B-32", "opneai")
    with pytest.raises(UnknownModelError, match="not found"):
        resolve_model_spec("ViT-B-32", "/nowhere/ckpt.pt")


def test_local_checkpoint_roundtrip(tmp_path, tiny_clip, tiny_images):
    ckpt = tmp_path / "ckpt.pt"
    torch.save(tiny_clip.model.state_dict(), ckpt)
    config = tiny_clip.spec.config_path
    again = load_clip(config, str(ckpt))
    assert _rel_err(again.encode_image(tiny_images), tiny_clip.encode_image(tiny_images)) < 1e-6
