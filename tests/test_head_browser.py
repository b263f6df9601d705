"""The report's head browser on a demo-sized run (one concept-world-like model, 32 analysed heads,
thumbnails computed by the real `head-images` step): the index, the cards, the head links of the
other tables, the size budget; then the page in headless Chromium (sorting, filtering, following
a link, every thumbnail decoding, no console error)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from browser import ABSENT, chromium_paths, console_errors, open_driver
from clipconcepts.attribution import schemas as attribution_schemas
from clipconcepts.ccs import ccs_at_k, head_groups
from clipconcepts.evaluate.prune import RESULT_SCHEMA
from clipconcepts.report import build_report
from clipconcepts.report.head_images import run_head_images
from clipconcepts.report.inputs import COLUMNS
from test_head_images import write_step_inputs
from test_report import Node, parse

MODEL = "conceptworld"
MODELS = {MODEL: {"arch": "conceptworld", "pretrained": "", "display": "Concept-world CLIP"}}
DATASETS = ["color", "position"]
FAMILIES = ["color", "position", "background", "texture"]
KEYS = [(layer, head) for layer in range(2, 6) for head in range(8)]  # the analysed heads
ALL_KEYS = [(layer, head) for layer in range(6) for head in range(8)]  # attribution: every head
TEXTS = [
    "a red object",
    "a blue object",
    "an object at the top left",
    "an object in the centre",
    "a teal background",
    "a grey background",
    "a dotted background",
    "a striped background",
    "a green object",
    "an object at the bottom",
    "a plain background",
    "a checked background",
]
BUDGET_PER_HEAD = 15e6 / 96  # docs/report.md: at most 15 MB for 96 heads


def _label(layer: int, head: int) -> str:
    return f"object {FAMILIES[(layer + head) % 4]}" if head != 7 else "<unclear & mixed>"


def _ccs(spans: pl.DataFrame, rng) -> pl.DataFrame:
    rows = []
    for layer, head in KEYS:
        texts = (
            spans.filter((pl.col("layer") == layer) & (pl.col("head") == head))
            .sort("rank")["text"]
            .to_list()
        )
        p = (layer + head) % 6 / 5
        verdicts = [bool(v) for v in rng.random(5) < p]
        other = [bool(v) for v in rng.random(5) < p]
        invalid = (layer, head) == (3, 3)
        if invalid:
            other[1] = None
        for judge, v in (("lexicon", other), ("majority", verdicts)):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "label": _label(layer, head),
                    "judge": judge,
                    "ccs": sum(bool(x) for x in v),
                    "n_invalid": int(invalid and judge == "lexicon"),
                    "verdicts": v,
                    "texts": texts,
                }
            )
    return pl.DataFrame(rows, schema=COLUMNS["ccs"])  # the report's own ccs columns


def _prune(dataset: str, groups: pl.DataFrame, rng) -> pl.DataFrame:
    def names(frame):
        return [f"L{r['layer']}.H{r['head']}" for r in frame.iter_rows(named=True)]

    high = names(groups.filter(pl.col("group") == "high"))
    low = names(groups.filter(pl.col("group") == "low"))
    by_family = {
        f: [f"L{a}.H{b}" for a, b in KEYS if _label(a, b) == f"object {f}"] for f in FAMILIES
    }
    other = "position" if dataset == "color" else "texture"
    n = min(len(by_family[dataset]), len(by_family[other]))
    rows = [("original", 0, [], 90.0), ("high", 0, high, 70.0), ("low", 0, low, 88.0)]
    for seed in range(3):
        chosen = rng.choice(len(KEYS), size=len(high), replace=False)
        rows.append(("random", seed, [f"L{KEYS[i][0]}.H{KEYS[i][1]}" for i in chosen], 85.0 + seed))
    rows.append((f"concept:{dataset}:vs:{other}", 0, by_family[dataset][:n], 60.0))
    rows.append((f"concept:{other}:vs:{dataset}", 0, by_family[other][:n], 89.0))
    return pl.DataFrame(
        {
            "strategy": [r[0] for r in rows],
            "seed": [r[1] for r in rows],
            "heads": [r[2] for r in rows],
            "n_heads": [len(r[2]) for r in rows],
            "top1": [r[3] for r in rows],
            "top5": [100.0] * len(rows),
            "n_images": [1000] * len(rows),
        },
        schema=RESULT_SCHEMA,
    )


def _attribution(dataset: str, ccs: pl.DataFrame, rng) -> pl.DataFrame:
    majority = {
        (r["layer"], r["head"]): r
        for r in ccs.filter(pl.col("judge") == "majority").iter_rows(named=True)
    }
    values = {v: rng.normal(size=len(ALL_KEYS)) * 0.01 for v in ("atp_zero", "atp_mean", "direct")}
    values["true_zero"] = values["atp_zero"] + rng.normal(size=len(ALL_KEYS)) * 0.001
    rows = []
    for i, (layer, head) in enumerate(ALL_KEYS):
        m = majority.get((layer, head))
        row = {
            "layer": layer,
            "head": head,
            "label": m["label"] if m else None,
            "ccs": m["ccs"] if m else None,
            "logit_lens": 0.1,
            "energy": 0.2,
            "true_mean": values["true_zero"][i] * 0.9 if layer >= 2 else None,
            "acc_drop_zero": float(abs(values["true_zero"][i]) * 100),
            "acc_drop_mean": 0.0,
            "n_images": 32,
        }
        for v in ("atp_zero", "atp_mean", "direct"):
            row[v] = float(values[v][i])
        row["true_zero"] = float(values["true_zero"][i]) if layer >= 2 else None
        rows.append(row)
    frame = pl.DataFrame(rows)
    for view in ("atp_zero", "atp_mean", "direct", "logit_lens", "energy", "ccs"):
        frame = frame.with_columns(pl.col(view).rank("min", descending=True).alias(f"rank_{view}"))
    for view in ("true_zero", "true_mean"):
        frame = frame.with_columns(pl.col(view).rank("min", descending=True).alias(f"rank_{view}"))
    return frame.select([pl.col(c).cast(t) for c, t in attribution_schemas.HEADS.items()])


def write_demo_run(run: Path) -> Path:
    """A demo-sized run folder: CCS, TEXTSPAN, groups, pruning, attribution, head truth and
    labels for 32 heads, and head_images.parquet computed by the step from a probe set."""
    rng = np.random.default_rng(7)
    folder = run / MODEL
    inputs = write_step_inputs(folder, KEYS, n_images=60, text_names=TEXTS)
    run_head_images(
        inputs["heads"],
        inputs["textspans"],
        inputs["texts"],
        "manifest",
        inputs["probe"],
        folder / "head_images.parquet",
        embeddings=inputs["embeddings"],
    )
    ccs = _ccs(inputs["spans"], rng)
    ccs.write_parquet(folder / "ccs.parquet")
    ccs_at_k(ccs).write_parquet(folder / "ccs_at_k.parquet")
    groups = head_groups(ccs)
    groups.write_parquet(folder / "head_groups.parquet")
    (folder / "prune").mkdir()
    (folder / "video").mkdir()
    _prune("color", groups, rng).write_parquet(folder / "video" / "clips.parquet")
    for d in DATASETS:
        _prune(d, groups, rng).write_parquet(folder / "prune" / f"{d}.parquet")
        (folder / "attribution" / d).mkdir(parents=True)
        _attribution(d, ccs, rng).write_parquet(folder / "attribution" / d / "heads.parquet")
    truth = []
    for layer, head in ALL_KEYS:
        shares = rng.dirichlet(np.ones(4))
        for f, share in zip(FAMILIES, shares, strict=True):
            top = bool(share == shares.max())
            truth.append((layer, head, f, float(share), float(share), 1.0, top))
    pl.DataFrame(
        truth,
        schema={
            "layer": pl.Int16,
            "head": pl.Int16,
            "family": pl.String,
            "score": pl.Float64,
            "share": pl.Float64,
            "dims": pl.Float64,
            "is_top": pl.Boolean,
        },
        orient="row",
    ).write_parquet(folder / "head_truth.parquet")
    pl.DataFrame(
        {
            "layer": [k[0] for k in KEYS],
            "head": [k[1] for k in KEYS],
            "label": [_label(*k) for k in KEYS],
            "valid": [True] * len(KEYS),
        },
        schema={"layer": pl.Int16, "head": pl.Int16, "label": pl.String, "valid": pl.Boolean},
    ).write_parquet(folder / "labels.parquet")
    return run


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("head_browser")
    run = write_demo_run(root / "results" / "demo")
    out = build_report(
        run,
        MODELS,
        DATASETS,
        root / "report.html",
        root / "report",
        title="Head browser demo",
        attribution_sets=DATASETS,
        video=[run / MODEL / "video" / "clips.parquet"],
    )
    text = out.read_text()
    return run, out, root / "report", text, parse(text)


def _anchor(layer: int, head: int) -> str:
    return f"head-{MODEL}-L{layer}.H{head}"


def _links(node: Node) -> list[str]:
    return [a.attrs["href"] for a in node.find_all("a", cls="head-link")]


# ------------------------------------------------------------------------------- the page
def test_every_head_has_a_card_reachable_from_the_index(demo):
    _, _, _, _, tree = demo
    section = tree.find_all(id="heads")[0]
    rows = section.find_all("table", id="head-index")[0].find_all("tr")[1:]
    assert len(rows) == len(KEYS)
    cards = {c.attrs["id"]: c for c in section.find_all("article", cls="head-card")}
    assert set(cards) == {_anchor(*k) for k in KEYS}
    for row in rows:
        (href,) = _links(row)
        assert href == "#" + row.attrs["data-anchor"] and href[1:] in cards
    for card in cards.values():  # rendered on opening: the HTML waits in a template
        assert "hidden" in card.attrs and card.find_all("template")


def test_index_row_joins_label_ccs_groups_ranks_and_truth(demo):
    run, _, _, _, tree = demo
    ccs = pl.read_parquet(run / MODEL / "ccs.parquet")
    groups = pl.read_parquet(run / MODEL / "head_groups.parquet")
    truth = pl.read_parquet(run / MODEL / "head_truth.parquet").filter(pl.col("is_top"))
    atp = {d: pl.read_parquet(run / MODEL / "attribution" / d / "heads.parquet") for d in DATASETS}
    header = [th.text().strip() for th in tree.find_all("table", id="head-index")[0].find_all("th")]
    assert header[:4] == ["Head", "Label", "CCS (majority)", "CCS (lexicon)"]
    for row in tree.find_all("table", id="head-index")[0].find_all("tr")[1:]:
        layer, head = map(int, re.match(r"#head-\w+-L(\d+)\.H(\d+)", _links(row)[0]).groups())
        cells = dict(zip(header, row.find_all("td"), strict=True))
        mine = ccs.filter((pl.col("layer") == layer) & (pl.col("head") == head))
        assert row.attrs["data-label"] == _label(layer, head).lower()
        for judge in ("majority", "lexicon"):
            value = mine.filter(pl.col("judge") == judge)["ccs"][0]
            assert cells[f"CCS ({judge})"].attrs["data-sort"] == str(value)
        expected = groups.filter((pl.col("layer") == layer) & (pl.col("head") == head))["group"]
        assert set(expected) <= set(row.attrs["data-groups"].split())
        best = min(
            atp[d].filter((pl.col("layer") == layer) & (pl.col("head") == head))["rank_atp_zero"][0]
            for d in DATASETS
        )
        assert cells["AtP rank (best)"].attrs["data-sort"] == str(best)
        family = truth.filter((pl.col("layer") == layer) & (pl.col("head") == head))["family"][0]
        assert row.attrs["data-family"] == family
    # a concept strategy's heads are in its concept group
    prune = pl.read_parquet(run / MODEL / "prune" / "color.parquet")
    pruned = prune.filter(pl.col("strategy") == "concept:color:vs:position")["heads"][0]
    for name in pruned:
        row = next(
            r for r in tree.find_all("tr") if r.attrs.get("data-anchor") == f"head-{MODEL}-{name}"
        )
        assert "concept:color" in row.attrs["data-groups"].split()


def test_card_shows_texts_effects_pruning_and_images(demo):
    run, _, _, text, tree = demo
    layer, head = 5, 2
    card = tree.find_all(id=_anchor(layer, head))[0]
    spans = (
        pl.read_parquet(run / MODEL / "textspans.parquet")
        .filter((pl.col("layer") == layer) & (pl.col("head") == head))
        .sort("rank")
    )
    texts = card.find_all("table", cls="hb-texts")[0].find_all("tr")[1:]
    assert [r.find_all("td")[1].text() for r in texts] == spans["text"].to_list()
    shown = [float(r.find_all("span", cls="ours")[0].text()) for r in texts]
    np.testing.assert_allclose(shown, spans["variance_fraction"].to_numpy(), atol=5e-4)
    ccs = pl.read_parquet(run / MODEL / "ccs.parquet").filter(
        (pl.col("layer") == layer) & (pl.col("head") == head)
    )
    for judge in ("majority", "lexicon"):
        verdicts = ccs.filter(pl.col("judge") == judge)["verdicts"][0].to_list()
        marks = [m.text() for m in card.find_all("span", cls="mark", judge=judge)]
        assert marks == [{True: "✓", False: "✗", None: "?"}[v] for v in verdicts]
    # effects: x100 as in the attribution section, one row per set
    effects = card.find_all("table", cls="hb-effects")[0]
    for d in DATASETS:
        row = pl.read_parquet(run / MODEL / "attribution" / d / "heads.parquet").filter(
            (pl.col("layer") == layer) & (pl.col("head") == head)
        )
        cell = effects.find_all("span", dataset=d, metric="true_zero")[0]
        assert float(cell.text()) == pytest.approx(row["true_zero"][0] * 100, abs=5e-4)
    # pruning: every prune set that zeroed the head, and no other
    listed = {
        (r.find_all("td")[0].text(), r.find_all("td")[1].text(), int(r.find_all("td")[2].text()))
        for r in card.find_all("table", cls="hb-pruned")[0].find_all("tr")[1:]
    }
    files = {d: run / MODEL / "prune" / f"{d}.parquet" for d in DATASETS}
    files["clips (video, t2v R@1)"] = run / MODEL / "video" / "clips.parquet"
    expected = {
        (d, r["strategy"], r["seed"])
        for d, path in files.items()
        for r in pl.read_parquet(path).iter_rows(named=True)
        if f"L{layer}.H{head}" in r["heads"]
    }
    assert listed == expected and any(d.startswith("clips") for d, _, _ in expected)
    # images: the step's top and bottom 8 in rank order, each thumbnail in the page's map
    images = pl.read_parquet(run / MODEL / "head_images.parquet").filter(
        (pl.col("layer") == layer) & (pl.col("head") == head)
    )
    thumbs = json.loads(tree.find_all("script", id="head-thumbs")[0].text())
    for side in ("top", "bottom"):
        shown = card.find_all("div", side=side)[0].find_all("img")
        ids = images.filter(pl.col("side") == side).sort("rank")["image_id"].to_list()
        assert [i.attrs["alt"] for i in shown] == ids and len(ids) == 8
        assert all(
            thumbs[i.attrs["data-thumb"]].startswith("data:image/png;base64,") for i in shown
        )
    # each distinct image is stored once
    every = pl.read_parquet(run / MODEL / "head_images.parquet")
    assert len(thumbs) == every["image_id"].n_unique()


def test_head_links_in_other_tables_reach_cards(demo):
    _, out, assets, _, tree = demo
    cards = {c.attrs["id"] for c in tree.find_all("article", cls="head-card")}
    for section in ("examples", "label-truth", "attribution"):
        links = _links(tree.find_all(id=section)[0])
        assert links, section
        assert {h[1:] for h in links} <= cards, section
    # heads outside the analysed layers have no card: named, not linked
    text = tree.find_all(id="attribution")[0].text()
    assert "L0.H0" in text and f"#head-{MODEL}-L0.H0" not in out.read_text()
    # the standalone assets link to the page's cards
    asset = (assets / "attribution_color.html").read_text()
    hrefs = re.findall(r'class="head-link" href="([^"]+)"', asset)
    assert hrefs and all(h.startswith("../report.html#head-") for h in hrefs)


def test_size_within_budget_and_no_network(demo):
    _, out, _, text, tree = demo
    section = text[text.index('<section id="heads">') :]
    section = section[: section.index("</section>")]
    assert len(section.encode()) < BUDGET_PER_HEAD * len(KEYS)
    assert out.stat().st_size < 15e6
    for script in tree.find_all("script"):
        assert "src" not in script.attrs
    assert not re.search(r"""(src|href)=["'](https?:)?//""", text)


# ------------------------------------------------------------------------------- the browser
@pytest.fixture(scope="module")
def page(demo):
    if chromium_paths() is None:
        pytest.skip(ABSENT)
    driver = open_driver()
    driver.get(demo[1].resolve().as_uri())
    yield driver
    driver.quit()


def _visible_rows(driver) -> list:
    return [
        r for r in driver.find_elements("css selector", "#head-index tbody tr") if r.is_displayed()
    ]


def test_in_chromium_sort_filter_follow_and_decode(page):
    driver = page
    assert console_errors(driver) == [], "console errors on load"
    rows = driver.find_elements("css selector", "#head-index tbody tr")
    assert len(rows) == len(KEYS)
    before = [r.get_attribute("data-anchor") for r in rows]

    # sorting by CCS (majority) reorders the rows: descending first, then ascending
    header = driver.find_element("xpath", "//th[button[text()='CCS (majority)']]")
    column = [th.text for th in driver.find_elements("css selector", "#head-index thead th")].index(
        header.text
    )

    def ccs_values():
        return [
            int(r.find_elements("tag name", "td")[column].get_attribute("data-sort"))
            for r in driver.find_elements("css selector", "#head-index tbody tr")
        ]

    header.find_element("tag name", "button").click()
    after = [
        r.get_attribute("data-anchor")
        for r in driver.find_elements("css selector", "#head-index tbody tr")
    ]
    assert after != before and sorted(after) == sorted(before)
    assert ccs_values() == sorted(ccs_values(), reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.find_element("tag name", "button").click()
    assert ccs_values() == sorted(ccs_values())

    # filtering by a label leaves only the matching rows
    box = driver.find_element("id", "head-filter-label")
    box.send_keys("texture")
    visible = _visible_rows(driver)
    expected = sum(_label(*k) == "object texture" for k in KEYS)
    assert len(visible) == expected > 0
    assert all("texture" in r.find_elements("tag name", "td")[1].text for r in visible)
    assert driver.find_element("id", "head-count").text == f"{expected} of {len(KEYS)} heads"
    box.clear()
    box.send_keys(" ")  # an input event; blank matches every row
    assert len(_visible_rows(driver)) == len(KEYS)

    # following a head's link in the index shows its card, and only it
    link = _visible_rows(driver)[3].find_element("css selector", "a.head-link")
    target = link.get_attribute("href").split("#")[1]
    link.click()
    card = driver.find_element("id", target)
    assert card.is_displayed()
    assert (
        card.find_element("tag name", "h3").text.split(" · ")[1].startswith(target.split("-")[-1])
    )
    shown = [
        c.get_attribute("id")
        for c in driver.find_elements("css selector", ".head-card")
        if c.is_displayed()
    ]
    assert shown == [target]

    # a link from another table (the CCS examples) opens that head's card
    other = driver.find_element("css selector", "#examples a.head-link")
    other_target = other.get_attribute("href").split("#")[1]
    driver.execute_script("arguments[0].click()", other)
    assert driver.find_element("id", other_target).is_displayed()
    assert not driver.find_element("id", target).is_displayed() or other_target == target

    # every card's thumbnails decode
    for row in driver.find_elements("css selector", "#head-index tbody tr"):
        anchor = row.get_attribute("data-anchor")
        driver.execute_script("location.hash = arguments[0]", anchor)
        widths = driver.execute_async_script(
            """
            const [id, done] = arguments;
            const wait = () => {
              const card = document.getElementById(id);
              if (!card || card.hidden || !card.hasAttribute('data-rendered')) {
                return setTimeout(wait, 10);
              }
              const imgs = Array.from(card.querySelectorAll('.hb-thumbs img'));
              Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))
                .then(done);
            };
            wait();
            """,
            anchor,
        )
        assert len(widths) == 16 and all(w > 0 for w in widths), (anchor, widths)
    assert console_errors(driver) == [], "console errors while browsing"
