"""Video stage with models: one decode per video whatever the strategies, shared prefix = separate
runs, bad videos, and concept-world retrieval above chance (mp4 clips read back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clipconcepts.conceptworld.world import OBJECT_RGB, values_of
from clipconcepts.evaluate.strategies import PruneSet
from clipconcepts.schemas import PRUNE_RESULTS, VIDEO_ITEMS, VIDEO_RETRIEVAL
from clipconcepts.video import decode as decode_module
from clipconcepts.video.conceptworld import CLIP_FAMILIES, render_clip, write_clips
from clipconcepts.video.datasets import build_video_dataset
from clipconcepts.video.decode import BadVideoError
from clipconcepts.video.encode import pool_frames
from clipconcepts.video.evaluate import evaluate_video_retrieval, write_video_results

DEMO_MODEL = Path("results/demo/conceptworld/model")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """24 concept-world clips of 6 frames, as mp4, read back as a manifest dataset."""
    folder = write_clips(tmp_path_factory.mktemp("clips") / "clips", 24, n_frames=6, fps=6)
    return folder


def _sets():
    return [
        PruneSet("original", 0, ()),
        PruneSet("high", 0, ((1, 0), (2, 1))),
        PruneSet("low", 0, ((2, 3),)),
        PruneSet("random", 0, ((1, 2), (2, 0))),
        PruneSet("random", 1, ((1, 3), (2, 2))),
        PruneSet("concept:a:vs:b", 0, ((2, 1),)),
    ]


def _count_decodes(monkeypatch) -> list:
    calls = []
    real = decode_module.decode_video

    def counting(path, *args, **kwargs):
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(decode_module, "decode_video", counting)
    return calls


def test_clips_round_trip_through_the_decoder(clips):
    table = pl.read_parquet(clips / "manifest.parquet")
    assert table.height == 24 and set(CLIP_FAMILIES) <= set(table.columns)
    assert table["caption"][0].startswith(("a ", "an ")) and " moving " in table["caption"][0]
    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=4)
    frames = decode_module.decode_video(ds.paths[0], 4)
    assert len(frames) == 4 and frames[0].size == (48, 48)
    # the object's colour survives H.264: the pixel nearest the row's colour is close to it
    color = OBJECT_RGB[values_of("color").index(table["color"][0])]
    pixels = np.asarray(frames[0]).reshape(-1, 3).astype(float)
    assert np.linalg.norm(pixels - color, axis=1).min() < 40


def test_clip_motion_moves_the_object():
    rng = np.random.default_rng(0)
    attrs = {"color": 0, "motion": 0, "speed": 1, "texture": 0}  # left, fast
    frames = render_clip(attrs, 5, rng).astype(float)
    red = np.linalg.norm(frames - np.array(OBJECT_RGB[0]), axis=-1) < 60  # [T, H, W]
    xs = [np.nonzero(m)[1].mean() for m in red]
    assert xs[0] - xs[-1] == pytest.approx(12, abs=1.5) and all(np.diff(xs) < 0)


def test_decoded_once_per_video_whatever_the_strategies(clips, tiny_clip, monkeypatch):
    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=3)
    calls = _count_decodes(monkeypatch)
    one = evaluate_video_retrieval(tiny_clip, ds, _sets()[:1], batch_size=5, progress=False)
    assert len(calls) == ds.n_videos == one.n_decoded
    calls.clear()
    many = evaluate_video_retrieval(
        tiny_clip, ds, _sets(), batch_size=5, sets_per_pass=4, progress=False
    )
    assert len(calls) == ds.n_videos == many.n_decoded  # not 6 x
    assert sorted(calls) == sorted(p.name for p in ds.paths)
    assert many.n_frames == 3 * ds.n_videos
    # the shared prefix gives each set what a run of that set alone gives
    alone = evaluate_video_retrieval(tiny_clip, ds, _sets()[1:2], batch_size=7, progress=False)
    for col in ("r1", "r5", "r10", "median_rank", "mean_rank"):
        assert many.retrieval[col][2:4].to_list() == pytest.approx(alone.retrieval[col].to_list())
    assert many.prune["top1"][0] == one.prune["top1"][0]


def test_result_tables(clips, tiny_clip, tmp_path):
    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=2)
    res = evaluate_video_retrieval(tiny_clip, ds, _sets(), progress=False)
    write_video_results(
        res, tmp_path / "v.parquet", tmp_path / "v.retrieval.parquet", tmp_path / "v.items.parquet"
    )
    prune = pl.read_parquet(tmp_path / "v.parquet")
    retrieval = pl.read_parquet(tmp_path / "v.retrieval.parquet")
    assert dict(prune.schema) == PRUNE_RESULTS and dict(retrieval.schema) == VIDEO_RETRIEVAL
    assert prune["strategy"].to_list() == [s.strategy for s in _sets()]
    assert prune["n_images"].unique().to_list() == [24]
    t2v = retrieval.filter(pl.col("direction") == "t2v")
    assert prune["top1"].to_list() == t2v["r1"].to_list()
    assert prune["top5"].to_list() == t2v["r5"].to_list()
    assert retrieval.height == 2 * len(_sets())
    assert t2v["chance_r1"].to_list() == pytest.approx([100 / 24] * len(_sets()))
    # the per-query ranks aggregate to every recall and rank of the retrieval table
    items = pl.read_parquet(tmp_path / "v.items.parquet")
    assert dict(items.schema) == VIDEO_ITEMS
    again = items.group_by("strategy", "seed", "direction", maintain_order=True).agg(
        *[(100 * (pl.col("rank") <= k).mean()).alias(f"r{k}") for k in (1, 5, 10, 50)],
        pl.col("rank").median().alias("median_rank"),
        pl.col("rank").mean().alias("mean_rank"),
        pl.len().alias("n_queries"),
    )
    columns = ["r1", "r5", "r10", "r50", "median_rank", "mean_rank", "n_queries"]
    assert (
        again.select("strategy", "seed", "direction").rows()
        == retrieval.select("strategy", "seed", "direction").rows()
    )
    for column in columns:
        assert again[column].to_list() == pytest.approx(retrieval[column].to_list())
    t2v_items = items.filter(pl.col("direction") == "t2v", pl.col("strategy") == "original")
    assert t2v_items["query_id"].to_list() == [ds.video_ids[int(v)] for v in ds.caption_video]


def test_pooling_is_mean_of_normalised_frames():
    frames = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # one set, 3 frames
    pooled = pool_frames(frames, [2, 1])
    assert pooled[0, 0].tolist() == pytest.approx([2**-0.5, 2**-0.5])
    assert pooled[0, 1].tolist() == pytest.approx([2**-0.5, 2**-0.5])


def test_bad_video_fails_naming_it_or_is_skipped(clips, tiny_clip, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    table = pl.read_parquet(clips / "manifest.parquet").head(6)
    (folder / "videos").mkdir()
    for path in table["path"]:
        (folder / path).write_bytes((clips / path).read_bytes())
    (folder / table["path"][2]).write_bytes(b"not a video at all" * 10)
    table.write_parquet(folder / "manifest.parquet")
    ds = build_video_dataset("clips", "manifest", folder, n_frames=2)
    with pytest.raises(BadVideoError, match=r"clip-00002\.mp4"):
        evaluate_video_retrieval(tiny_clip, ds, _sets()[:1], progress=False)
    ds = build_video_dataset("clips", "manifest", folder, n_frames=2, on_bad_video="skip")
    res = evaluate_video_retrieval(tiny_clip, ds, _sets()[:2], progress=False)
    assert res.n_decoded == 6 and [v for v, _ in res.skipped] == ["clip-00002"]
    assert res.prune["n_images"].to_list() == [5, 5]
    assert res.retrieval["n_queries"].to_list() == [5, 5, 5, 5]


class ColourOracle:
    """A stand-in CLIP that sees only colour: an image's embedding is the share of its pixels
    near each palette colour, a text's the one-hot of the colour word it names."""

    embed_dim = len(OBJECT_RGB)
    device = torch.device("cpu")

    @staticmethod
    def preprocess(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)

    def encode_image_multi(self, images, prune_sets, sets_per_pass=8):
        pixels = images.permute(0, 2, 3, 1)[:, :, :, None, :]  # [B, H, W, 1, 3]
        palette = torch.tensor(OBJECT_RGB, dtype=torch.float32)
        near = ((pixels - palette).norm(dim=-1) < 40).float().mean((1, 2)) + 1e-3
        return near.expand(len(prune_sets), *near.shape)

    def encode_text(self, texts, normalize=True, batch_size=256):
        words = values_of("color")
        emb = torch.tensor([[float(f" {c} " in f" {t} ") for c in words] for t in texts])
        return F.normalize(emb + 1e-3, dim=-1)


def test_conceptworld_retrieval_beats_chance_cheaply(clips):
    """The clips carry their colour through mp4: a colour-only oracle retrieves far above chance."""
    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=3)
    res = evaluate_video_retrieval(ColourOracle(), ds, _sets()[:1], progress=False)
    t2v = res.retrieval.filter(pl.col("direction") == "t2v").row(0, named=True)
    # 8 colours over 24 clips: the right clip is among ~3 of its colour
    assert t2v["r5"] >= 90 > 3 * t2v["chance_r5"]
    assert t2v["median_rank"] <= 3


def test_pooling_without_renormalisation_is_the_plain_mean():
    # the CCS authors' code: the mean of the normalised frames, not normalised again
    frames = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])
    pooled = pool_frames(frames, [2, 1], renormalise=False)
    assert pooled[0, 0].tolist() == pytest.approx([0.5, 0.5])  # norm 0.71: its frames differ
    assert pooled[0, 1].tolist() == pytest.approx([2**-0.5, 2**-0.5])


class FlatOracle(ColourOracle):
    """Every frame and every caption embeds the same: every similarity ties."""

    def encode_image_multi(self, images, prune_sets, sets_per_pass=8):
        return torch.ones(len(prune_sets), len(images), self.embed_dim)

    def encode_text(self, texts, normalize=True, batch_size=256):
        return F.normalize(torch.ones(len(texts), self.embed_dim), dim=-1)


def _two_captions(clips):
    """The clips with a second, uninformative caption per video (after all the first ones)."""
    from dataclasses import replace

    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=2)
    return replace(
        ds,
        captions=ds.captions + ["a video"] * ds.n_videos,
        caption_video=np.concatenate([ds.caption_video, ds.caption_video]),
    )


def test_protocols_choose_captions_and_the_v2t_candidates(clips):
    ds = _two_captions(clips)
    runs = {
        name: evaluate_video_retrieval(
            ColourOracle(), ds, _sets()[:1], protocol=name, progress=False
        )
        for name in ("ccs", "clip4clip")
    }
    counts = {
        name: res.retrieval.select("direction", "n_queries", "n_candidates", "protocol").rows()
        for name, res in runs.items()
    }
    # ccs: each video's first caption (24 queries; v2t among the 24 captions)
    assert counts["ccs"] == [("t2v", 24, 24, "ccs"), ("v2t", 24, 24, "ccs")]
    # clip4clip: every caption (48 queries; v2t among the 24 videos, by their best caption)
    assert counts["clip4clip"] == [("t2v", 48, 24, "clip4clip"), ("v2t", 24, 24, "clip4clip")]
    items = runs["ccs"].items.filter(pl.col("direction") == "t2v")
    assert items["query_id"].to_list() == ds.video_ids  # the first captions, in order
    # the uninformative second captions only enter clip4clip's text-to-video queries
    t2v = {n: r.retrieval.filter(pl.col("direction") == "t2v")["r5"][0] for n, r in runs.items()}
    assert t2v["ccs"] > t2v["clip4clip"]


@pytest.mark.parametrize("protocol", ["ccs", "clip4clip"])
def test_all_tied_retrieval_gives_the_expected_recall(clips, protocol):
    ds = build_video_dataset("clips", "conceptworld", clips, n_frames=2)
    res = evaluate_video_retrieval(
        FlatOracle(), ds, _sets()[:1], ties="average", protocol=protocol, progress=False
    )
    n = ds.n_videos
    for row in res.retrieval.iter_rows(named=True):
        assert row["r1"] == pytest.approx(100 / n) and row["r5"] == pytest.approx(500 / n)
        assert row["mean_rank"] == pytest.approx((n + 1) / 2)
    assert res.prune["top1"][0] == pytest.approx(100 / n)
    # the per-query counts give the table's recalls: mean of clip((K - higher) / (tied + 1))
    items = res.items
    assert items["n_higher"].unique().to_list() == [0]
    assert items["n_tied"].unique().to_list() == [n - 1]
    again = items.group_by("direction", maintain_order=True).agg(
        (100 * ((1 - pl.col("n_higher")) / (pl.col("n_tied") + 1)).clip(0, 1).mean()).alias("r1")
    )
    assert again["r1"].to_list() == pytest.approx(res.retrieval["r1"].to_list())


@pytest.mark.slow
@pytest.mark.skipif(
    not (DEMO_MODEL / "checkpoint.pt").exists(), reason="the demo's trained model is not built"
)
def test_demo_model_retrieval_beats_chance(tmp_path):
    from clipconcepts.models import load_clip

    clip = load_clip(str(DEMO_MODEL / "conceptworld-vit.json"), str(DEMO_MODEL / "checkpoint.pt"))
    folder = write_clips(tmp_path / "clips", 100, n_frames=16, fps=8, seed=1)
    ds = build_video_dataset("clips", "conceptworld", folder, n_frames=8)
    res = evaluate_video_retrieval(clip, ds, _sets()[:1], progress=False)
    t2v = res.retrieval.filter(pl.col("direction") == "t2v").row(0, named=True)
    v2t = res.retrieval.filter(pl.col("direction") == "v2t").row(0, named=True)
    assert t2v["r1"] > 20 * t2v["chance_r1"]  # chance: 1 %
    assert t2v["r5"] > 10 * t2v["chance_r5"]
    assert v2t["r1"] > 10 * v2t["chance_r1"]
