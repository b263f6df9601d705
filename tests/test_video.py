"""Video stage, the parts without a model: retrieval metrics, frame sampling, decoding, layouts."""

from __future__ import annotations

import csv
import json
import pickle

import numpy as np
import pytest
import torch

from clipconcepts.video.datasets import (
    VideoDatasetNotFoundError,
    build_video_dataset,
    video_dataset_from_spec,
)
from clipconcepts.video.decode import (
    BadVideoError,
    count_frames,
    decode_video,
    frame_indices,
    write_video,
)
from clipconcepts.video.evaluate import PROTOCOLS, first_captions, video_protocol
from clipconcepts.video.metrics import (
    chance_recall,
    retrieval_metrics,
    summarise_ranks,
    t2v_counts,
    t2v_ranks,
    v2t_counts,
    v2t_ranks,
)

# ---------------------------------------------------------------------------- metrics
# captions x videos; caption t describes video t
SIM = torch.tensor(
    [
        [0.9, 0.9, 0.1],  # its video ties with video 1
        [0.2, 0.5, 0.7],  # video 2 scores higher
        [0.3, 0.3, 0.3],  # all three tie
    ]
)


def test_t2v_ranks_by_hand_with_ties():
    owners = [0, 1, 2]
    assert t2v_ranks(SIM, owners).tolist() == [2, 2, 3]  # pessimistic: ties rank ahead
    assert t2v_ranks(SIM, owners, "optimistic").tolist() == [1, 2, 1]
    assert t2v_ranks(SIM, owners, "average").tolist() == [1.5, 2, 2]


def test_v2t_ranks_by_hand():
    # video 0: its caption 0.9 is the column's best; video 1: caption 0 (0.9) beats its own 0.5;
    # video 2: caption 1 (0.7) beats its own 0.3
    assert v2t_ranks(SIM, [0, 1, 2]).tolist() == [1, 2, 2]


def test_v2t_counts_only_other_videos_captions():
    # video 0 has captions 0 and 2, tied with each other and with caption 1 (video 1's)
    sim = torch.tensor([[0.5, 0.0], [0.5, 0.9], [0.5, 0.1]])
    owners = [0, 1, 0]
    assert v2t_ranks(sim, owners).tolist() == [2, 1]  # its own tie partner is not counted
    assert v2t_ranks(sim, owners, "optimistic").tolist() == [1, 1]
    # videos without captions (1 and 2) are no queries
    assert v2t_ranks(torch.tensor([[0.3, 0.2, 0.9]]), [0]).tolist() == [1]


def test_summary_and_chance():
    out = summarise_ranks(np.array([1, 2, 3, 10, 60]), ks=(1, 5, 10, 50))
    assert out == {
        "r1": 20.0,
        "r5": 60.0,
        "r10": 80.0,
        "r50": 80.0,
        "median_rank": 3.0,
        "mean_rank": 15.2,
    }
    assert chance_recall(10, [1], 5) == pytest.approx(50.0)
    assert chance_recall(4, [2], 1) == pytest.approx(50.0)  # 2 right of 4
    assert chance_recall(4, [2], 3) == pytest.approx(100.0)  # cannot miss both in the top 3
    # 1 - C(8, 2) / C(10, 2) = 1 - 28/45
    assert chance_recall(10, [2], 2) == pytest.approx(100 * 17 / 45)


def test_retrieval_metrics_rows():
    m = retrieval_metrics(SIM, [0, 1, 2])
    assert m["t2v"]["r1"] == 0.0 and m["t2v"]["r5"] == 100.0
    assert m["t2v"]["median_rank"] == 2.0 and m["t2v"]["mean_rank"] == pytest.approx(7 / 3)
    assert m["v2t"]["r1"] == pytest.approx(100 / 3)
    assert m["t2v"]["n_queries"] == 3 and m["t2v"]["n_candidates"] == 3
    assert m["t2v"]["chance_r1"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="ties"):
        t2v_ranks(SIM, [0, 1, 2], ties="random")
    with pytest.raises(ValueError, match="outside"):
        t2v_ranks(SIM, [0, 1, 3])


# captions x videos: video 0 has caption 0, video 1 captions 1 and 2, video 2 caption 3
MULTI = torch.tensor(
    [
        [0.5, 0.3, 0.2],
        [0.8, 0.9, 0.1],
        [0.7, 0.2, 0.65],
        [0.1, 0.4, 0.6],
    ]
)
MULTI_OWNERS = [0, 1, 1, 2]


def test_v2t_rules_of_the_two_protocols_by_hand():
    # video 0: captions 1 and 2 (both video 1's) score above its own 0.5. `caption` (the CCS
    # authors' code) counts both; `video` (CLIP4Clip) counts video 1 once, by its best caption
    assert v2t_ranks(MULTI, MULTI_OWNERS, rule="caption").tolist() == [3, 1, 2]
    assert v2t_ranks(MULTI, MULTI_OWNERS, rule="video").tolist() == [2, 1, 2]
    caption = retrieval_metrics(MULTI, MULTI_OWNERS, v2t="caption")["v2t"]
    video = retrieval_metrics(MULTI, MULTI_OWNERS, v2t="video")["v2t"]
    assert caption["r1"] == video["r1"] == pytest.approx(100 / 3)  # same R@1
    assert caption["mean_rank"] == pytest.approx(2.0) and video["mean_rank"] == pytest.approx(5 / 3)
    # candidates: every caption vs every video with captions (one right video each)
    assert (caption["n_candidates"], video["n_candidates"]) == (4, 3)
    assert video["chance_r1"] == pytest.approx(100 / 3)
    assert caption["chance_r1"] == pytest.approx(100 * (1 / 4 + 2 / 4 + 1 / 4) / 3)  # g / N
    # text to video is the same under both rules
    assert t2v_ranks(MULTI, MULTI_OWNERS).tolist() == [1, 1, 3, 1]
    with pytest.raises(ValueError, match="v2t rule"):
        v2t_counts(MULTI, MULTI_OWNERS, rule="best")


def test_protocols_state_their_three_choices():
    assert PROTOCOLS["ccs"].renormalise is False and PROTOCOLS["ccs"].captions == "first"
    assert PROTOCOLS["ccs"].v2t == "caption"
    assert PROTOCOLS["clip4clip"].renormalise is True and PROTOCOLS["clip4clip"].v2t == "video"
    assert PROTOCOLS["clip4clip"].captions == "all"
    with pytest.raises(ValueError, match="video.protocol"):
        video_protocol("msrvtt")
    # the ccs protocol keeps each video's first caption, in caption order
    assert first_captions([2, 0, 2, 1, 0, 1]) == [0, 1, 3]
    keep = first_captions(MULTI_OWNERS)
    assert keep == [0, 1, 3]
    # on its one-caption-per-video matrix the two v2t rules agree
    one = MULTI[keep]
    assert v2t_ranks(one, [0, 1, 2], rule="caption").tolist() == (
        v2t_ranks(one, [0, 1, 2], rule="video").tolist()
    )


@pytest.mark.parametrize("rule", ["caption", "video"])
def test_all_tied_matrix_gives_the_expected_recall(rule):
    n = 8
    sim = torch.full((n, n), 0.25)
    m = retrieval_metrics(sim, list(range(n)), ties="average", v2t=rule)
    for direction in ("t2v", "v2t"):
        row = m[direction]
        assert row["r1"] == pytest.approx(100 / n)  # not 0: a random order finds 1 in N
        assert row["r5"] == pytest.approx(100 * 5 / n)
        assert row["r10"] == row["r50"] == pytest.approx(100.0)
        assert row["mean_rank"] == pytest.approx((n + 1) / 2)
        assert row["r1"] == pytest.approx(row["chance_r1"])
    assert retrieval_metrics(sim, list(range(n)), ties="pessimistic", v2t=rule)["t2v"]["r1"] == 0
    assert retrieval_metrics(sim, list(range(n)), ties="optimistic", v2t=rule)["t2v"]["r1"] == 100


def test_average_hits_equal_every_tie_break_enumerated():
    """The `average` hit at K is exact: it equals the mean over every tie-breaking order."""
    import itertools

    rng = np.random.default_rng(0)
    sim = torch.tensor(rng.integers(0, 3, size=(6, 5)), dtype=torch.float32)  # many ties
    owners = [0, 1, 2, 3, 4, 0]
    counts = t2v_counts(sim, owners)
    orders = list(itertools.permutations(range(5)))  # tie-break: lower position ranks first

    def rank(row, v, order):
        ahead = [row[u] > row[v] or (row[u] == row[v] and order[u] < order[v]) for u in range(5)]
        return 1 + sum(ahead[u] for u in range(5) if u != v)

    ranks = [[rank(sim[t], v, order) for order in orders] for t, v in enumerate(owners)]
    for k in (1, 2, 3):
        expected = [np.mean([r <= k for r in per_order]) for per_order in ranks]
        assert counts.hits(k, "average") == pytest.approx(expected)
    # the mean rank over the orders is the `average` rank
    assert counts.rank("average") == pytest.approx([np.mean(r) for r in ranks])


# ---------------------------------------------------------------------------- frame sampling
def test_frame_indices_uniform_and_linspace():
    assert frame_indices(16, 4) == [2, 6, 10, 14]  # segment centres
    assert frame_indices(16, 4, "linspace") == [0, 5, 10, 15]  # first to last
    assert frame_indices(100, 1) == [50]
    assert frame_indices(100, 1, "linspace") == [0]
    assert frame_indices(12, 12) == list(range(12))
    idx = frame_indices(1000, 12)
    assert len(idx) == 12 and idx == sorted(set(idx)) and idx[0] > 0 and idx[-1] < 999


def test_frame_indices_short_videos_and_errors():
    assert frame_indices(3, 12) == [0, 1, 2]  # fewer frames than asked: each once
    assert frame_indices(3, 12, "linspace") == [0, 1, 2]
    assert frame_indices(0, 12) == []
    with pytest.raises(ValueError, match="sampling"):
        frame_indices(10, 2, "random")
    with pytest.raises(ValueError, match="n_frames"):
        frame_indices(10, 0)


def _ramp(n: int, size: int = 16) -> np.ndarray:
    """n frames whose grey level encodes their index (10 * i)."""
    return np.repeat((np.arange(n) * 10).astype(np.uint8), size * size * 3).reshape(
        n, size, size, 3
    )


def _levels(frames) -> list[int]:
    return [round(float(np.asarray(f).mean()) / 10) for f in frames]


def test_decode_picks_the_sampled_frames(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_video(path, _ramp(20), fps=10, crf=0)
    assert count_frames(path) == 20
    assert _levels(decode_video(path, 4)) == frame_indices(20, 4)
    assert _levels(decode_video(path, 4, "linspace")) == [0, 6, 12, 19]
    frames = decode_video(path, 50)  # more frames asked than exist
    assert _levels(frames) == list(range(20))
    assert frames[0].mode == "RGB" and frames[0].size == (16, 16)
    # max_seconds: the first second only (10 frames), sampled uniformly within it
    assert count_frames(path, max_seconds=1.0) == 10
    assert _levels(decode_video(path, 2, max_seconds=1.0)) == [2, 7]


def test_corrupt_and_empty_videos_name_the_file(tmp_path):
    bad = tmp_path / "broken clip.mp4"
    bad.write_bytes(b"\x00\x00\x00 ftypisom" + b"garbage" * 50)
    with pytest.raises(BadVideoError, match="broken clip.mp4"):
        decode_video(bad, 4)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BadVideoError, match="empty.mp4"):
        decode_video(empty, 4)
    good = tmp_path / "good.mp4"
    write_video(good, _ramp(10), fps=10, crf=10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(BadVideoError, match="truncated.mp4"):
        decode_video(truncated, 4)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", _ramp(2, size=15), fps=10, crf=10)


# ---------------------------------------------------------------------------- layouts
def _videos(folder, names, ext=".mp4"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_video(folder / f"{name}{ext}", _ramp(4), fps=4, crf=30)


def test_msrvtt_layout(tmp_path):
    data = tmp_path / "msrvtt_data"
    data.mkdir()
    with (data / "MSRVTT_JSFUSION_test.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "vid_key", "video_id", "sentence"])
        writer.writerow(
            ["ret0", "msr7579", "video7579", "a girl wearing red top and black trouser"]
        )
        writer.writerow(["ret1", "msr7725", "video7725", "young people sit around the edges"])
    _videos(tmp_path / "videos" / "all", ["video7579", "video7725"])
    ds = build_video_dataset("msrvtt", "msrvtt", tmp_path)
    assert ds.video_ids == ["video7579", "video7725"] and ds.caption_video.tolist() == [0, 1]
    assert ds.n_frames == 12 and ds.paths[0].name == "video7579.mp4"
    (tmp_path / "videos" / "all" / "video7725.mp4").unlink()
    with pytest.raises(VideoDatasetNotFoundError, match="video7725"):
        build_video_dataset("msrvtt", "msrvtt", tmp_path)
    skipped = build_video_dataset("msrvtt", "msrvtt", tmp_path, on_bad_video="skip")
    assert skipped.video_ids == ["video7579"] and skipped.missing == ["video7725"]
    assert skipped.captions == ["a girl wearing red top and black trouser"]


def test_missing_annotation_names_file_and_layout(tmp_path):
    with pytest.raises(VideoDatasetNotFoundError, match="MSRVTT_JSFUSION_test.csv.*msrvtt_data"):
        build_video_dataset("msrvtt", "msrvtt", tmp_path)
    with pytest.raises(VideoDatasetNotFoundError, match="raw-captions.pkl|test_list.txt"):
        build_video_dataset("msvd", "msvd", tmp_path)
    with pytest.raises(VideoDatasetNotFoundError, match="does not exist"):
        build_video_dataset("didemo", "didemo", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown keys"):
        video_dataset_from_spec("x", {"kind": "msvd", "root": str(tmp_path), "frames": 3})


def test_msvd_layout_every_caption_a_query(tmp_path):
    (tmp_path / "test_list.txt").write_text("vid1\nvid2\n")
    (tmp_path / "youtube_mapping.txt").write_text("-4wsuPCjDBc_5_15 vid1\nabc_1_9 vid2\n")
    captions = {"vid1": [["a", "cat", "plays"], ["a", "kitten"]], "vid2": [["a", "man", "runs"]]}
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps(captions))
    _videos(tmp_path / "YouTubeClips", ["-4wsuPCjDBc_5_15", "abc_1_9"], ext=".avi")
    ds = build_video_dataset("msvd", "msvd", tmp_path)
    assert ds.captions == ["a cat plays", "a kitten", "a man runs"]
    assert ds.caption_video.tolist() == [0, 0, 1]
    assert ds.paths[0].name == "-4wsuPCjDBc_5_15.avi"


def test_caption_pickle_with_objects_is_refused(tmp_path):
    (tmp_path / "test_list.txt").write_text("vid1\n")
    (tmp_path / "raw-captions.pkl").write_bytes(pickle.dumps({"vid1": [np.array([1])]}))
    _videos(tmp_path / "YouTubeClips", ["vid1"])
    with pytest.raises(ValueError, match="plain"):
        build_video_dataset("msvd", "msvd", tmp_path)


def test_didemo_layout_paragraph_per_video(tmp_path):
    (tmp_path / "test_list.txt").write_text("a.mov\nb.mp4\nc.mp4\n")
    records = [
        {"video": "a.mov", "description": "a dog runs", "times": [[0, 0]]},
        {"video": "b.mp4", "description": "people talk", "times": [[1, 2]]},
        {"video": "a.mov", "description": "then it jumps", "times": [[1, 1]]},
        {"video": "zzz.mp4", "description": "not in the test list", "times": [[0, 0]]},
    ]
    (tmp_path / "test_data.json").write_text(json.dumps(records))
    _videos(tmp_path / "videos", ["a", "b"])  # a.mov was transcoded to a.mp4
    ds = build_video_dataset("didemo", "didemo", tmp_path, max_seconds=30)
    assert ds.video_ids == ["a.mov", "b.mp4"]  # c.mp4 has no description
    assert ds.captions == ["a dog runs then it jumps", "people talk"]
    assert ds.paths[0].name == "a.mp4" and ds.n_frames == 32 and ds.max_seconds == 30
