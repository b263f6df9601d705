"""CCS, CCS@K, head groups and human agreement on hand-built tables."""

from __future__ import annotations

import polars as pl
import pytest

from clipconcepts.agreement import agreement_stats, annotation_sheet, read_sheet
from clipconcepts.ccs import ccs_at_k, ccs_table, head_groups

T, F, N = True, False, None
# head -> verdicts of judges a, b, c on its 5 texts
VERDICTS = {
    (11, 0): ([T, T, T, T, T], [T, T, T, T, T], [T, T, T, T, T]),  # 5 by all
    (11, 1): ([T, T, T, F, F], [T, T, F, T, F], [T, F, T, T, F]),  # majority T T T T F = 4
    (11, 2): ([T, T, T, F, F], [F, F, F, F, F], [T, T, T, F, F]),  # 3
    (11, 3): ([T, F, F, F, F], [N, N, N, N, N], [F, F, F, F, F]),  # b invalid; majority of a, c: 0
    (11, 4): ([T, T, N, F, F], [T, F, N, F, F], [T, F, N, F, F]),  # 1, text 3 invalid for all
    (11, 5): (
        [T, N, F, F, F],
        [F, T, F, F, F],
        [N, N, F, F, F],
    ),  # text 0 tied 1-1: not aligned; text 1: 1 of 1
}
EXPECTED = {  # (a, b, c, majority) CCS, majority n_invalid
    (11, 0): ((5, 5, 5, 5), 0),
    (11, 1): ((3, 3, 3, 4), 0),
    (11, 2): ((3, 0, 3, 3), 0),
    (11, 3): ((1, 0, 0, 0), 0),
    (11, 4): ((2, 1, 1, 1), 1),
    (11, 5): ((1, 1, 0, 1), 0),
}


def _tables():
    spans, verdicts = [], []
    for (layer, head), per_judge in VERDICTS.items():
        for rank in range(5):
            spans.append((layer, head, rank, f"text {layer}.{head}.{rank}"))
            for judge, flags in zip("abc", per_judge, strict=True):
                verdicts.append((layer, head, rank, judge, flags[rank]))
    spans = pl.DataFrame(spans, schema=["layer", "head", "rank", "text"], orient="row")
    verdicts = pl.DataFrame(
        verdicts, schema=["layer", "head", "rank", "judge", "aligned"], orient="row"
    )
    labels = pl.DataFrame(
        {
            "layer": [11] * 6,
            "head": list(range(6)),
            "label": [f"c{h}" for h in range(6)],
            "valid": [True] * 6,
        }
    )
    return verdicts, labels, spans


def test_ccs_per_judge_and_majority():
    ccs = ccs_table(*_tables())
    assert ccs["judge"].unique(maintain_order=True).to_list() == ["a", "b", "c", "majority"]
    assert ccs.schema["ccs"] == pl.Int8 and ccs.schema["verdicts"] == pl.List(pl.Boolean)
    for (layer, head), (scores, n_invalid) in EXPECTED.items():
        rows = ccs.filter(pl.col("layer") == layer, pl.col("head") == head)
        assert rows["ccs"].to_list() == list(scores), (layer, head)
        assert rows["n_invalid"][-1] == n_invalid
        assert rows["texts"][0].to_list() == [f"text {layer}.{head}.{r}" for r in range(5)]
        assert rows["label"][0] == f"c{head}"
    b_invalid = ccs.filter(pl.col("judge") == "b", pl.col("head") == 3)
    assert (
        b_invalid["n_invalid"].to_list() == [5] and b_invalid["verdicts"][0].to_list() == [None] * 5
    )
    maj = ccs.filter(pl.col("judge") == "majority", pl.col("head") == 4)["verdicts"][0].to_list()
    assert maj == [True, False, None, False, False]


def test_ccs_at_k_fractions():
    at_k = ccs_at_k(ccs_table(*_tables()))
    assert at_k.height == 4 * 6
    for _, group in at_k.group_by("judge"):
        assert group["fraction"].sum() == pytest.approx(1.0)
        assert group["k"].to_list() == [0, 1, 2, 3, 4, 5]
    majority = at_k.filter(pl.col("judge") == "majority")
    assert majority["n_heads"].to_list() == [1, 2, 0, 1, 1, 1]
    assert majority["fraction"].to_list() == pytest.approx([1 / 6, 2 / 6, 0, 1 / 6, 1 / 6, 1 / 6])
    assert majority["n_with_invalid"].to_list() == [0, 1, 0, 0, 0, 0]
    b = at_k.filter(pl.col("judge") == "b")
    assert b["n_heads"].to_list() == [2, 2, 0, 1, 0, 1] and b["n_with_invalid"].to_list() == [
        1,
        1,
        0,
        0,
        0,
        0,
    ]


def test_head_groups_thresholds_and_invalid_heads():
    ccs = ccs_table(*_tables())
    groups = head_groups(ccs)
    assert groups.select("group", "head").rows() == [
        ("high", 0),
        ("moderate", 2),
        ("low", 3),
        ("low", 5),
    ]
    # judge b: head 3 (invalid answers) is left out, not called low
    b = head_groups(ccs, judge="b")
    assert b.select("group", "head").rows() == [
        ("high", 0),
        ("moderate", 1),
        ("low", 2),
        ("low", 5),
    ]
    with pytest.raises(ValueError, match="'d'"):
        head_groups(ccs, judge="d")


def test_incomplete_verdicts_are_an_error():
    verdicts, labels, spans = _tables()
    with pytest.raises(ValueError, match="judge 'c'.*1 texts without a verdict"):
        ccs_table(verdicts.slice(0, verdicts.height - 1), labels, spans)


def _ccs_for_sheet():
    verdicts, labels, spans = _tables()
    return ccs_table(verdicts, labels, spans)


def test_annotation_sheet_samples_valid_pairs(tmp_path):
    ccs = _ccs_for_sheet()
    sheet = annotation_sheet(ccs, n=20, seed=3, model="ViT-B-32__openai")
    assert sheet.columns == [
        "model",
        "layer",
        "head",
        "label",
        "rank",
        "text",
        "llm_aligned",
        "human_aligned",
    ]
    assert sheet.height == 20 and sheet["human_aligned"].null_count() == 20
    assert sheet.select("head", "rank").n_unique() == 20
    assert sheet["llm_aligned"].null_count() == 0 and sheet["label"].null_count() == 0
    assert sheet.equals(annotation_sheet(ccs, n=20, seed=3, model="ViT-B-32__openai"))
    assert not sheet.equals(annotation_sheet(ccs, n=20, seed=4, model="ViT-B-32__openai"))
    # the texts and verdicts match the CCS table
    maj = ccs.filter(pl.col("judge") == "majority")
    for row in sheet.iter_rows(named=True):
        head = maj.filter(pl.col("head") == row["head"]).row(0, named=True)
        assert (
            head["texts"][row["rank"]] == row["text"]
            and head["verdicts"][row["rank"]] == row["llm_aligned"]
        )
    # 29 valid pairs (one text of head 4 has no verdict): asking for more gives them all
    assert annotation_sheet(ccs, n=50, model="m").height == 29
    path = tmp_path / "sheet.csv"
    sheet.write_csv(path)
    assert read_sheet(path)["human_aligned"].null_count() == 20


def _filled(human, llm, model="m"):
    return pl.DataFrame({"model": [model] * len(human), "llm_aligned": llm, "human_aligned": human})


def test_agreement_against_hand_computed_values():
    # human 1 1 1 1 0 0 vs llm 1 1 0 0 0 0: p_o = 4/6, p_e = 16/36, kappa = (24-16)/(36-16) = 0.4;
    # for two binary variables rho = tau-b = phi = (2*2 - 2*0) / sqrt(4*2*2*4) = 0.5
    stats = agreement_stats(
        _filled(
            ["1", "yes", "TRUE", "t", "0", "no"],
            ["true", "true", "false", "false", "false", "false"],
        )
    )
    row = stats.row(0, named=True)
    assert row["n"] == 6 and row["n_blank"] == 0
    assert row["kappa"] == pytest.approx(0.4)
    assert row["spearman_rho"] == pytest.approx(0.5)
    assert row["kendall_tau"] == pytest.approx(0.5)
    assert row["accuracy"] == pytest.approx(4 / 6)


def test_agreement_per_model_and_all():
    sheet = pl.concat(
        [
            _filled(
                ["true", "false", "true", "false"], ["true", "false", "true", "false"], model="A"
            ),
            _filled(
                ["true", "false", "true", "false"], ["false", "true", "false", "true"], model="B"
            ),
        ]
    )
    stats = agreement_stats(sheet)
    assert stats["model"].to_list() == ["A", "B", "all"]
    assert stats["kappa"].to_list() == pytest.approx([1.0, -1.0, 0.0])
    assert stats["n"].to_list() == [4, 4, 8]


def test_incomplete_sheet_is_named():
    sheet = _filled(["true", "", "false", None], ["true", "true", "false", "false"])
    with pytest.raises(
        ValueError,
        match=r"filled\.csv: column 'human_aligned' is blank in 2 of 4 data rows \(first: \[2, 4\]\)",
    ):
        agreement_stats(sheet, source="filled.csv")
    stats = agreement_stats(sheet, source="filled.csv", allow_blank=True)
    assert stats["n"].to_list() == [2] and stats["n_blank"].to_list() == [2]
    with pytest.raises(ValueError, match="filled.csv: column 'human_aligned', data row 1: 'maybe'"):
        agreement_stats(_filled(["maybe"], ["true"]), source="filled.csv")
    with pytest.raises(ValueError, match="missing columns \\['human_aligned'\\]"):
        agreement_stats(_filled(["true"], ["true"]).drop("human_aligned"), source="filled.csv")
