# Helpers of rules/video.smk (video retrieval: its sets, models and files): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


# Zero-shot video retrieval (rules/video.smk): its own test sets (`video.datasets`, wildcard
# `video_set`), on the head-level models (`video.models`, default all of them: the strategies
# need their CCS head groups).
VIDEO_SETS = list(knob("video", "datasets", {}) or {})


def video_models():
    chosen = knob("video", "models", None)
    if not VIDEO_SETS:
        return []
    if chosen is None:
        return HEAD_MODELS
    unknown = [m for m in chosen if m not in HEAD_MODELS]
    if unknown:
        raise ValueError(
            f"config key video.models names {', '.join(unknown)}, not among the head-level "
            f"models ({', '.join(HEAD_MODELS)})"
        )
    return list(dict.fromkeys(chosen))


def video_clip_knob(key, default):
    """A knob of the concept-world clips (`video.conceptworld`)."""
    return (knob("video", "conceptworld", {}) or {}).get(key, default)


def video_spec(wildcards):
    """A video set's entry as JSON with the section's defaults (concept-world clips: the
    generated folder)."""
    spec = dict(section("video")["datasets"][wildcards.video_set])
    spec.setdefault("sampling", knob("video", "sampling", "uniform"))
    spec.setdefault("on_bad_video", knob("video", "on_bad_video", "fail"))
    if spec["kind"] == "conceptworld":
        spec.setdefault("root", f"{CONCEPTWORLD}/data/clips")
    return json.dumps(spec, sort_keys=True)


def video_set_files(wildcards):
    spec = section("video")["datasets"][wildcards.video_set]
    if spec["kind"] == "conceptworld":
        return [f"{CONCEPTWORLD}/data/clips/manifest.parquet"]
    return []


def video_concept_pairs(video_set):
    return (knob("video", "concept_pairs", {}) or {}).get(video_set, [])


def video_outputs(kind="prune"):
    """Every model x video set's table: kind = prune (`{model}/video/{set}.parquet`, the prune
    schema: the report's claim (d)), retrieval (`.retrieval.parquet`, every metric) or items
    (`.items.parquet`, every query's rank: claim (d)'s paired bootstrap).
    """
    suffix = {
        "prune": ".parquet",
        "retrieval": ".retrieval.parquet",
        "items": ".items.parquet",
    }[kind]
    return expand(
        f"{RESULTS}/{{model}}/video/{{video_set}}{suffix}",
        model=video_models(),
        video_set=VIDEO_SETS,
    )
