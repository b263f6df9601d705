"""The concept world's check of CCS against the heads' truth: correlations and CCS@K vs
truth@K computed from synthetic files with a known answer."""

from __future__ import annotations

import math

import polars as pl
import pytest

from clipconcepts.report.ccs_truth import ccs_truth, own_family_effects, spearman, text_families
from clipconcepts.report.inputs import COLUMNS

FAMILIES = ["color", "position"]
# texts per family: "c0".."c5" are colour texts, "p0".."p5" position texts
BANK = pl.DataFrame(
    {
        "text_id": range(12),
        "text": [f"c{i}" for i in range(6)] + [f"p{i}" for i in range(6)],
        "family": ["color"] * 6 + ["position"] * 6,
    }
)


def _ccs(rows):
    """rows: (head, ccs, n colour texts of 5); a majority judge, layer 3."""
    out = []
    for head, score, n_colour in rows:
        texts = [f"c{i}" for i in range(n_colour)] + [f"p{i}" for i in range(5 - n_colour)]
        out.append(
            {
                "layer": 3,
                "head": head,
                "label": "color",
                "judge": "majority",
                "ccs": score,
                "n_invalid": 0,
                "verdicts": [i < score for i in range(5)],
                "texts": texts,
            }
        )
    return pl.DataFrame(out, schema=COLUMNS["ccs"])


def _truth(purity: dict[int, float], dims: dict[int, float] | None = None):
    """Every head's top family is colour with share `purity[head]`, written in `dims[head]`
    directions (default 1)."""
    rows = []
    for head, share in purity.items():
        rows.append((3, head, "color", 1.0, share, (dims or {}).get(head, 1.0), True))
        rows.append((3, head, "position", 0.1, 1 - share, 1.0, False))
    return pl.DataFrame(rows, schema=COLUMNS["head_truth"], orient="row")


class _Result:
    def __init__(self, dataset, heads):
        self.dataset, self.heads = dataset, heads


def test_ccs_tracks_purity_count_and_effect():
    # CCS rises with the colour share, the colour texts and the true effect on the colour set
    ccs = _ccs([(0, 1, 1), (1, 2, 2), (2, 3, 3), (3, 4, 4), (4, 5, 5)])
    truth = _truth({0: 0.3, 1: 0.4, 2: 0.5, 3: 0.7, 4: 0.9})
    heads = pl.DataFrame(
        {"layer": [3] * 5, "head": range(5), "true_zero": [0.1, 0.2, 0.3, 0.4, 0.5]}
    )
    effects = own_family_effects([_Result("colour_set", heads)], {"colour_set": "color"})
    result = ccs_truth("m", ccs, truth, text_families(BANK), effects)
    assert result.heads["truth_count"].to_list() == [1, 2, 3, 4, 5]
    assert result.rho_purity[0] == pytest.approx(1.0)
    assert result.rho_count[0] == pytest.approx(1.0)
    assert result.rho_effect[0] == pytest.approx(1.0) and result.n_effect == 5


def test_ccs_against_the_truth_can_disagree():
    # CCS falls as the heads get purer: rho = -1; no effect for a family without its set
    ccs = _ccs([(0, 5, 1), (1, 4, 2), (2, 3, 3), (3, 2, 4)])
    truth = _truth({0: 0.3, 1: 0.4, 2: 0.5, 3: 0.7})
    result = ccs_truth("m", ccs, truth, text_families(BANK), {})
    assert result.rho_purity[0] == pytest.approx(-1.0)
    assert math.isnan(result.rho_effect[0]) and result.n_effect == 0


def test_spearman_is_undefined_on_constant_or_short_columns():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])[0])
    assert math.isnan(spearman([1, 2], [1, 2])[0])
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1])[0] == pytest.approx(-1.0)


def test_family_dims_reach_the_table():
    ccs = _ccs([(0, 3, 3), (1, 4, 4), (2, 2, 2)])
    truth = _truth({0: 0.5, 1: 0.6, 2: 0.4}, dims={0: 1.5, 1: 2.5, 2: 1.0})
    result = ccs_truth("m", ccs, truth, text_families(BANK), {})
    assert dict(zip(result.heads["head"], result.heads["dims"], strict=True)) == {
        0: 1.5,
        1: 2.5,
        2: 1.0,
    }


def test_model_family_dims_rows_sit_beside_their_heads():
    from clipconcepts.report.ccs_truth import _family_dims_rows

    ccs = _ccs([(0, 3, 3), (1, 4, 4), (2, 2, 2)])
    truth = _truth({0: 0.5, 1: 0.6, 2: 0.4}, dims={0: 1.5, 1: 2.5, 2: 1.0})
    result = ccs_truth("m", ccs, truth, text_families(BANK), {})
    model_dims = pl.DataFrame(
        [("color", 6, 2.7, 0.3), ("position", 9, 3.4, 0.2)],
        schema=COLUMNS["family_dims"],
        orient="row",
    )
    rows = _family_dims_rows("M", "m", model_dims, result.heads)
    colour, position = rows
    assert colour[:4] == ["M", "color", "6", "5"]
    assert 'data-metric="model_family_dims"' in colour[4] and ">2.7<" in colour[4]
    assert colour[5] == "0.30" and colour[6] == "3"
    assert colour[7].startswith("1.5") and "max 2.5" in colour[7]  # median of 1.0, 1.5, 2.5
    assert position[6] == "0" and "no analysed head" in position[7]
