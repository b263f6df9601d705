"""The results report: paper values against the paper's text, and the HTML built from synthetic
run files (checked by parsing the page)."""

from __future__ import annotations

import base64
import os
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipconcepts.ccs import ccs_at_k
from clipconcepts.evaluate.prune import RESULT_SCHEMA
from clipconcepts.report import (
    ReportInputError,
    asset_paths,
    build_report,
    caption_path,
    load_paper_values,
    report_assets,
)

PAPER = (
    Path(
        os.environ.get(
            "CLIPCONCEPTS_PAPERS", Path(__file__).resolve().parents[2] / "shared" / "papers"
        )
    )
    / "ccs-concept-consistency-madasu-2025.txt"
)

PAPER_MODEL = "ViT-B-32__openai"
OTHER_MODEL = "tiny__scratch"
MODELS = {
    PAPER_MODEL: {"arch": "ViT-B-32", "pretrained": "openai", "display": "B32-OpenAI-run"},
    OTHER_MODEL: {"arch": "tiny-vit", "pretrained": None, "display": "Tiny-run"},
}
DATASETS = ["cifar10", "country211", "cifar100"]  # cifar100 has no result files
PRESENT = ["cifar10", "country211"]
ODD_LABEL = "Colors & <shapes>"  # must be escaped, not parsed as a tag
SECTIONS = [
    "overview",
    "ccs-at-k",
    "examples",
    "pruning",
    "concept",
    "agreement",
    "conceptworld",
    "provenance",
]


# ------------------------------------------------------------------------------- HTML tree
VOID = {"br", "meta", "img", "hr", "input", "link", "source", "col", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None):
        self.tag, self.attrs, self.parent, self.children = tag, attrs, parent, []

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self):
        yield self
        for c in self.children:
            if isinstance(c, Node):
                yield from c.iter()

    def find_all(
        self, tag: str | None = None, cls: str | None = None, id: str | None = None, **data
    ) -> list[Node]:
        """Descendants by tag, class, id and `data-*` attributes (`n_runs` -> `data-n-runs`)."""
        out = []
        for n in self.iter():
            if tag and n.tag != tag:
                continue
            if cls and cls not in n.classes:
                continue
            if id is not None and n.attrs.get("id") != id:
                continue
            if any(n.attrs.get("data-" + k.replace("_", "-")) != str(v) for k, v in data.items()):
                continue
            out.append(n)
        return out


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("root", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(text: str) -> Node:
    builder = TreeBuilder()
    builder.feed(text)
    return builder.root


# ------------------------------------------------------------------------------- synthetic run
def _ccs_frame(seed: int) -> pl.DataFrame:
    """48 heads (layers 8-11 x 12), a judge and the majority, random verdicts; one head with
    an invalid verdict; the first head gets a label that needs escaping."""
    rng = np.random.default_rng(seed)
    rows = []
    for layer in range(8, 12):
        for head in range(12):
            p = rng.uniform(0.1, 0.95)
            verdicts = [bool(v) for v in rng.random(5) < p]
            invalid = layer == 9 and head == 4
            if invalid:
                verdicts[2] = None
            label = ODD_LABEL if (layer, head) == (11, 0) else f"concept {layer}-{head}"
            texts = [f"text {layer}.{head}.{r}" for r in range(5)]
            for judge in ("judge-a", "majority"):
                rows.append(
                    {
                        "layer": layer,
                        "head": head,
                        "label": label,
                        "judge": judge,
                        "ccs": sum(bool(v) for v in verdicts),
                        "n_invalid": int(invalid),
                        "verdicts": verdicts,
                        "texts": texts,
                    }
                )
    schema = {
        "layer": pl.Int16,
        "head": pl.Int16,
        "label": pl.String,
        "judge": pl.String,
        "ccs": pl.Int8,
        "n_invalid": pl.Int8,
        "verdicts": pl.List(pl.Boolean),
        "texts": pl.List(pl.String),
    }
    return pl.DataFrame(rows, schema=schema)


def _prune_frame(seed: int, dataset: str) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    base = float(rng.uniform(40, 90))
    rows = [("original", 0, [], base), ("high", 0, ["L11.H5", "L10.H8"], base - 9.0)]
    rows.append(("low", 0, ["L8.H5"], base - 1.5))
    for s in range(3):
        rows.append(("random", s, [f"L9.H{s}", f"L10.H{s}"], base - float(rng.uniform(1, 4))))
    if dataset == "country211":
        rows.append(("concept:locations:vs:animals", 0, ["L10.H8"], base - 5.0))
        rows.append(("concept:animals:vs:locations", 0, [], base))  # empty group
    rows.append(("manual:published", 0, ["L11.H5"], base - 2.0))
    return pl.DataFrame(
        {
            "strategy": [r[0] for r in rows],
            "seed": [r[1] for r in rows],
            "heads": [r[2] for r in rows],
            "n_heads": [len(r[2]) for r in rows],
            "top1": [r[3] for r in rows],
            "top5": [min(100.0, r[3] + 10) for r in rows],
            "n_images": [500] * len(rows),
        },
        schema=RESULT_SCHEMA,
    )


def write_synthetic_run(run: Path) -> Path:
    """The files of a run with MODELS and PRESENT datasets, agreement and concept-world metrics."""
    for i, model in enumerate(MODELS):
        (run / model / "prune").mkdir(parents=True)
        ccs = _ccs_frame(seed=i)
        ccs.write_parquet(run / model / "ccs.parquet")
        ccs_at_k(ccs).write_parquet(run / model / "ccs_at_k.parquet")
        for j, dataset in enumerate(PRESENT):
            _prune_frame(10 * i + j, dataset).write_parquet(
                run / model / "prune" / f"{dataset}.parquet"
            )
    (run / "agreement").mkdir()
    pl.DataFrame(
        {
            "model": [PAPER_MODEL, OTHER_MODEL, "all"],
            "n": [50, 50, 100],
            "n_blank": [0, 2, 2],
            "accuracy": [0.9, 0.8, 0.85],
            "kappa": [0.71, 0.55, 0.63],
            "spearman_rho": [0.72, 0.56, 0.64],
            "kendall_tau": [0.72, 0.56, 0.64],
        }
    ).write_parquet(run / "agreement" / "agreement.parquet")
    (run / "conceptworld" / "model").mkdir(parents=True)
    pl.DataFrame(
        {
            "family": ["shape", "color"],
            "accuracy": [0.8125, 0.9375],
            "n_images": [64, 64],
            "chance": [0.25, 0.125],
            "steps": [300, 300],
        }
    ).write_parquet(run / "conceptworld" / "model" / "metrics.parquet")
    return run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "results" / "demo")


@pytest.fixture
def built(run_dir: Path, tmp_path: Path):
    out = build_report(
        run_dir, MODELS, DATASETS, tmp_path / "report.html", tmp_path / "assets", title="Demo"
    )
    text = out.read_text()
    return run_dir, tmp_path / "assets", text, parse(text)


def _row_of(tree: Node, node: Node) -> Node:
    while node.tag != "tr":
        node = node.parent
    return node


def _rows_with(section: Node, display: str) -> list[Node]:
    return [tr for tr in section.find_all("tr") if display in tr.text()]


# ------------------------------------------------------------------------------- tests: HTML
def test_every_section_present_and_self_contained(built):
    _, _, text, tree = built
    ids = {n.attrs.get("id") for n in tree.iter()}
    assert set(SECTIONS) <= ids
    assert not tree.find_all("link")
    # scripts (the head browser's) are inline: nothing is fetched
    assert all("src" not in s.attrs for s in tree.find_all("script"))
    for n in tree.iter():
        for attr in ("src", "href"):
            value = n.attrs.get(attr) or ""
            assert not value.startswith(("http:", "https:", "//")), (n.tag, value)
    assert tree.find_all("style")
    # the odd label was escaped: it is text, not a tag
    assert not tree.find_all("shapes")
    assert ODD_LABEL in tree.text()


def test_ccs_at_k_numbers_equal_inputs(built):
    run_dir, _, _, tree = built
    section = tree.find_all(id="ccs-at-k")[0]
    for model in MODELS:
        frame = pl.read_parquet(run_dir / model / "ccs_at_k.parquet").filter(
            pl.col("judge") == "majority"
        )
        for r in frame.iter_rows(named=True):
            (cell,) = section.find_all("span", cls="ours", model=model, k=r["k"])
            assert cell.text() == f"{r['fraction']:.3f}"
            assert float(cell.attrs["data-fraction"]) == r["fraction"]


def test_paper_values_beside_paper_model_only(built):
    _, _, _, tree = built
    values = load_paper_values()
    ccs = tree.find_all(id="ccs-at-k")[0]
    (paper_row,) = _rows_with(ccs, "B32-OpenAI-run")
    shown = [s.text() for s in paper_row.find_all("span", cls="paper")]
    assert shown == [f"({v:.3f})" for v in values.ccs_at_k("ViT-B-32-OpenAI")]
    (other_row,) = _rows_with(ccs, "Tiny-run")
    assert not other_row.find_all("span", cls="paper")

    pruning = tree.find_all(id="pruning")[0]
    original, high, low = values.pruning("ViT-B-32-OpenAI", "cifar10").values()
    cifar_table = pruning.find_all("h3", id="pruning-cifar10")[0]
    table = cifar_table.parent.children[cifar_table.parent.children.index(cifar_table) + 1]
    (row,) = _rows_with(table, "B32-OpenAI-run")
    shown = [s.text() for s in row.find_all("span", cls="paper")]
    assert shown == [f"({original:.2f})", f"({high:.2f})", f"({low:.2f})"]
    (row,) = _rows_with(table, "Tiny-run")
    assert not row.find_all("span", cls="paper")

    agreement = tree.find_all(id="agreement")[0]
    (row,) = _rows_with(agreement, "B32-OpenAI-run")
    assert "(0.757)" in [s.text() for s in row.find_all("span", cls="paper")]
    # a legend says what the grey numbers are
    assert "Grey numbers in parentheses" in tree.find_all(id="overview")[0].text()


def test_examples_per_bucket_show_the_heads_texts(built):
    run_dir, _, _, tree = built
    section = tree.find_all(id="examples")[0]
    ccs = pl.read_parquet(run_dir / PAPER_MODEL / "ccs.parquet").filter(
        (pl.col("judge") == "majority") & (pl.col("n_invalid") == 0)
    )
    table = next(t for t in section.find_all("table") if "B32-OpenAI-run" in t.parent.text())
    header = [th.text() for th in table.find_all("th")]
    n_high = ccs.filter(pl.col("ccs") == 5).height
    n_moderate = ccs.filter(pl.col("ccs") == 3).height
    n_low = ccs.filter(pl.col("ccs") <= 1).height
    assert header == [
        f"High CCS (CCS = 5): {n_high} heads",
        f"Moderate CCS (CCS = 3): {n_moderate} heads",
        f"Low CCS (CCS ≤ 1): {n_low} heads",
    ]
    first_high = (
        ccs.filter(pl.col("ccs") == 5)
        .sort(["layer", "head"], descending=[True, False])
        .row(0, named=True)
    )
    name = f"L{first_high['layer']}.H{first_high['head']}"
    (block,) = [d for d in table.find_all("div", head=name)]
    assert first_high["label"] in block.text() and "CCS 5" in block.text()
    items = block.parent.find_all("li")
    assert [li.text().rsplit(" ", 1)[0] for li in items] == first_high["texts"]
    assert all("yes" in li.classes for li in items)
    shown = {d.attrs["data-head"] for d in table.find_all("div", cls="head")}
    assert len(shown) == 3 * 3  # 3 examples in each of the 3 buckets


def test_random_mean_and_std_over_seeds(built):
    run_dir, _, _, tree = built
    pruning = tree.find_all(id="pruning")[0]
    for model in MODELS:
        for dataset in PRESENT:
            frame = pl.read_parquet(run_dir / model / "prune" / f"{dataset}.parquet")
            top1 = frame.filter(pl.col("strategy") == "random")["top1"].to_numpy()
            (cell,) = pruning.find_all(
                "span", cls="ours", model=model, dataset=dataset, strategy="random", metric="top1"
            )
            mean, std = top1.mean(), top1.std(ddof=1)
            assert cell.text() == f"{mean:.2f} ± {std:.2f}"
            assert float(cell.attrs["data-mean"]) == pytest.approx(mean, rel=1e-12)
            assert float(cell.attrs["data-std"]) == pytest.approx(std, rel=1e-12)
            assert cell.attrs["data-n-runs"] == "3"
            high = frame.filter(pl.col("strategy") == "high")["top1"][0]
            (cell,) = pruning.find_all(
                "span", cls="ours", model=model, dataset=dataset, strategy="high", metric="top1"
            )
            assert cell.text() == f"{high:.2f}"


def test_figures_embedded_and_missing_reported(built):
    _, assets, text, tree = built
    images = tree.find_all("img")
    # CCS@K, two pruning figures (cifar100 has none), one concept figure
    assert len(images) == 4
    for img in images:
        prefix = "data:image/svg+xml;base64,"
        assert img.attrs["src"].startswith(prefix)
        svg = base64.b64decode(img.attrs["src"][len(prefix) :]).decode()
        assert "<svg" in svg and "</svg>" in svg
    assert "no pruning results for cifar100" in tree.find_all(id="pruning")[0].text()
    assert "no concept-specific pruning results for cifar10" in text
    concept = tree.find_all(id="concept")[0].text()
    assert "locations heads pruned (vs animals)" in concept
    assert "0 heads: empty group" in concept
    assert "manual: published" in tree.find_all(id="pruning")[0].text()
    assert "0.8125" in tree.find_all(id="conceptworld")[0].text()
    provenance = tree.find_all(id="provenance")[0].text()
    assert str(Path("prune") / "cifar10.parquet") in provenance
    assert "paper_values.yaml" in provenance


def test_assets_written_with_captions(built):
    _, assets, _, _ = built
    paths = asset_paths(assets, DATASETS)
    assert [p.name for p in paths] == [a.name for a in report_assets(DATASETS)]
    for path in paths:
        content = path.read_text()
        if path.suffix == ".svg":
            assert "<svg" in content
        else:
            tree = parse(content)
            assert tree.find_all("h1") and tree.find_all("style")
    assert "no pruning results for cifar100" in (assets / "prune_cifar100.html").read_text()
    for asset in report_assets(DATASETS):
        assert caption_path(asset.kind).read_text().strip()
    assert caption_path("report").exists()


def test_report_of_an_empty_run_says_what_is_missing(tmp_path):
    out = build_report(
        tmp_path / "nothing", MODELS, ["cifar10"], tmp_path / "r.html", tmp_path / "a"
    )
    tree = parse(out.read_text())
    assert "no CCS@K file" in tree.find_all(id="ccs-at-k")[0].text()
    assert "no pruning results for cifar10" in tree.find_all(id="pruning")[0].text()
    assert "no agreement file" in tree.find_all(id="agreement")[0].text()
    assert not tree.find_all("img")


@pytest.mark.parametrize(
    ("relative", "column"),
    [
        (f"{PAPER_MODEL}/prune/cifar10.parquet", "top1"),
        (f"{OTHER_MODEL}/ccs_at_k.parquet", "fraction"),
        (f"{PAPER_MODEL}/ccs.parquet", "texts"),
        ("agreement/agreement.parquet", "kappa"),
    ],
)
def test_malformed_input_names_file_and_column(run_dir, tmp_path, relative, column):
    path = run_dir / relative
    pl.read_parquet(path).drop(column).write_parquet(path)
    with pytest.raises(ReportInputError) as err:
        build_report(run_dir, MODELS, DATASETS, tmp_path / "r.html", tmp_path / "a")
    assert str(path) in str(err.value) and repr(column) in str(err.value)


def test_quickgelu_arch_matches_paper_model():
    values = load_paper_values()
    assert values.model_name("ViT-B-32-quickgelu", "openai") == "ViT-B-32-OpenAI"
    assert values.model_name("ViT-L-14", "laion2b_s32b_b82k") == "ViT-L-14-LAION"
    assert values.model_name("ViT-B-32", "laion2b_s34b_b79k") is None


# ------------------------------------------------------------------------------- transcription
DATA_NAMES = {"OpenAI-400M": "OpenAI", "OpenCLIP-datacomp": "datacomp", "OpenCLIP-LAION2B": "LAION"}
DATASET_KEYS = {
    "CIFAR-10": "cifar10",
    "CIFAR-100": "cifar100",
    "FOOD-101": "food101",
    "Country-211": "country211",
    "Oxford-pets": "pets",
    "Imagenet-A": "imagenet-a",
    "Imagenet-R": "imagenet-r",
}


def _paper_tables(text: str) -> dict[int, list[list[str]]]:
    """Tab-separated lines above each 'Table N.' caption (back to the previous blank line
    run of non-table text)."""
    tables: dict[int, list[list[str]]] = {}
    block: list[list[str]] = []
    for line in text.splitlines():
        caption = re.match(r"Table (\d+)\.", line)
        if caption:
            tables[int(caption.group(1))] = block
            block = []
        elif "\t" in line:
            block.append(line.split("\t"))
        elif line.strip():
            block = []
    return tables


def _number(s: str) -> float:
    return float(s.strip())


@pytest.mark.skipif(not PAPER.exists(), reason=f"paper text not found at {PAPER}")
def test_paper_values_match_the_paper_text():
    values = load_paper_values()
    text = PAPER.read_text()
    tables = _paper_tables(text)

    def model_of(row):  # Tables 2-3: CLIP, size, patch, data
        name = f"ViT-{row[1]}-{row[2]}-{DATA_NAMES[row[3]]}"
        assert values.data["models"][name]["data"] == row[3]
        return name

    rows3 = [r for r in tables[3] if r[0] == "CLIP"]
    assert len(rows3) == 6
    assert {model_of(r): [_number(v) for v in r[4:10]] for r in rows3} == values.data["ccs_at_k"][
        "rows"
    ]

    rows2 = [r for r in tables[2] if r[0] == "CLIP"]
    expected2 = {
        model_of(r): dict(
            zip(["kappa", "spearman_rho", "kendall_tau"], map(_number, r[4:7]), strict=True)
        )
        for r in rows2
    }
    assert expected2 == values.data["agreement"]["rows"]

    seen = set()
    for number in (4, 5, 6):
        header = tables[number][0]
        datasets = [DATASET_KEYS[h.strip()] for h in header[1:] if h.strip()]
        for row in tables[number]:
            if not row[0].startswith("ViT-"):
                continue
            numbers = [_number(v) for v in row[1:] if v.strip()]
            assert len(numbers) == 3 * len(datasets), row
            for i, dataset in enumerate(datasets):
                assert values.data["pruning"][dataset]["source"] == f"Table {number}"
                published = values.pruning(row[0], dataset)
                assert list(published.values()) == numbers[3 * i : 3 * i + 3], (row[0], dataset)
                seen.add((row[0], dataset))
    assert len(seen) == 6 * 7 == sum(len(t["rows"]) for t in values.data["pruning"].values())

    # section 5.5: each number stands in a paragraph that names the model as the text does
    paragraphs = text.split("5.5. Impact of High CCS heads")[1].split("5.6.")[0].splitlines()
    for entry in values.data["concept"]:
        arch, tag = entry["model"].rsplit("-", 1)
        mention = f"{arch} ({tag.lower()})"
        numbers = [entry["original"], *entry["pruned"].values()]
        found = [p for p in paragraphs if mention in p and all(f"{n}%" in p for n in numbers)]
        assert found, (entry["model"], numbers)
