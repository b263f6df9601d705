# clipconcepts: what CLIP's attention heads encode, and how much each matters.
# The table of contents of the workflow; every step lives in rules/, all logic in src/clipconcepts.


# The papers' setup unless a config is given (--configfile replaces it rather than merging into it).
if not config:

    configfile: "config/config.yaml"


include: "rules/common.smk"
# each stage's helpers (input functions, sets, settings), in pipeline order
include: "rules/helpers/conceptworld.smk"
include: "rules/helpers/extract.smk"
include: "rules/helpers/textspan.smk"
include: "rules/helpers/llm.smk"
include: "rules/helpers/prune.smk"
include: "rules/helpers/mutual.smk"
include: "rules/helpers/attribution.smk"
include: "rules/helpers/video.smk"
include: "rules/helpers/report.smk"


wildcard_constraints:
    model="|".join(map(re.escape, MODELS)),
    dataset="|".join(map(re.escape, config.get("datasets") or {})) or "NONE",
    run=RUN,
    mutual_set="|".join(map(re.escape, MUTUAL_SETS)) or "NONE",
    video_set="|".join(map(re.escape, VIDEO_SETS)) or "NONE",


include: "rules/conceptworld.smk"
include: "rules/extract.smk"
include: "rules/textspan.smk"
include: "rules/llm.smk"
include: "rules/prune.smk"
include: "rules/mutual.smk"
include: "rules/video.smk"
include: "rules/attribution.smk"
include: "rules/head_browser.smk"
include: "rules/report.smk"


onstart:
    print(
        f"clipconcepts: run '{RUN}' with models {', '.join(MODELS)} -> {RESULTS}/"
    )
    if set(MODELS) - set(HEAD_MODELS):
        others = ", ".join(m for m in MODELS if m not in HEAD_MODELS)
        print(
            f"clipconcepts: {others}: not ViTs, so the mutual stage only (no head analysis)"
        )


onsuccess:
    print(f"clipconcepts: done. Results under {RESULTS}/, logs under {LOGS}/")


onerror:
    print(f"clipconcepts: a job failed; its log under {LOGS}/ names the cause.")


rule all:
    default_target: True
    input:
        all_targets(),
