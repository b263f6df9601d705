# Helpers of rules/report.smk (the report: its models, OOD sets, assets, claims and head browser): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


def report_models():
    """Model keys with their arch and pretrained tag (the report matches them to the papers)."""
    return json.dumps(
        {
            key: {"arch": spec["arch"], "pretrained": spec.get("pretrained") or ""}
            for key, spec in config["models"].items()
        },
        sort_keys=True,
    )


def report_dataset_kinds():
    """Dataset -> its kind (the report's setup section says which set ran)."""
    kinds = {key: spec["kind"] for key, spec in section("datasets").items()}
    return json.dumps(kinds, sort_keys=True)


def ood_datasets():
    """Datasets flagged `ood: true`: the report tests the paper's OOD claim on them."""
    return [key for key, spec in section("datasets").items() if spec.get("ood", False)]


def conceptworld_dataset_families():
    """The concept world's in-domain datasets -> the family their classes are (the report's
    CCS-vs-truth section reads each head's true effect on its own family's set)."""
    return {
        key: spec["family"]
        for key, spec in section("datasets").items()
        if spec["kind"] == "conceptworld" and spec.get("family") and not spec.get("ood")
    }


# The report's standalone files (rules/report.smk), known once every stage's sets are: the
# attribution and video sets count only where their stage has models to run (else the report
# says the stage did not run).
REPORT_ATTRIBUTION_SETS = ATTRIBUTION_SETS if HEAD_MODELS else []
REPORT_VIDEO_SETS = VIDEO_SETS if video_models() else []
REPORT_ASSETS = load_light_module("report/assets.py").report_assets(
    DATASETS, MUTUAL_SETS, REPORT_ATTRIBUTION_SETS, REPORT_VIDEO_SETS
)


def claims_knob(key, default):
    """A knob of `report.claims` (the claims section's statistics)."""
    return (section("report").get("claims") or {}).get(key, default)


# The claims' intervals need the random arms' seed-to-seed spread: refuse fewer than 3 seeds
# before anything runs (the report would call every such case not testable).
if claims_knob("enabled", True):
    for _stage, _used in (
        ("prune", bool(HEAD_MODELS)),
        ("video", bool(REPORT_VIDEO_SETS)),
    ):
        _seeds = knob(_stage, "random_seeds", [0, 1, 2])
        if _used and len(set(_seeds)) < 3:
            raise ValueError(
                f"config key {_stage}.random_seeds needs at least 3 distinct seeds while the "
                f"claims section is on (report.claims.enabled), got {_seeds}: add seeds, or "
                "set report.claims.enabled: false"
            )


# The report's head browser (rules/head_browser.smk): its thumbnails' knobs and what it reads.
def head_images_knob(key, default):
    """A knob of `report.head_images`."""
    return (knob("report", "head_images", {}) or {}).get(key, default)


def head_browser_inputs():
    """What the report's head browser reads per head-level model, and its code."""
    return (
        per_model(f"{RESULTS}/{{model}}/head_images.parquet")
        + per_model(f"{RESULTS}/{{model}}/textspans.parquet")
        + per_model(f"{RESULTS}/{{model}}/head_groups.parquet")
        + code(
            "report/head_browser.py",
            "report/head_browser.js",
            "report/head_inputs.py",
            "report/head_links.py",
            "report/head_images.py",
            "report/style.css",
        )
    )
