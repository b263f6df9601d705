rule report:
    input:
        ccs=per_model(f"{RESULTS}/{{model}}/ccs.parquet"),
        ccs_at_k=per_model(f"{RESULTS}/{{model}}/ccs_at_k.parquet"),
        prune=expand(
            f"{RESULTS}/{{model}}/prune/{{dataset}}.parquet",
            model=HEAD_MODELS,
            dataset=DATASETS,
        ),
        # every image's outcome per prune set: the claims' paired bootstrap
        prune_items=expand(
            f"{RESULTS}/{{model}}/prune/{{dataset}}.items.parquet",
            model=HEAD_MODELS,
            dataset=DATASETS,
        ),
        agreement=(
            [rules.agreement.output[0]] if knob("agreement", "sheet", None) else []
        ),
        metrics=[rules.concept_clip.output.metrics] if uses_conceptworld() else [],
        # per concept-world model: the heads' true families (rule head_truth) and the labels
        head_truth=expand(
            f"{RESULTS}/{{model}}/head_truth.parquet", model=conceptworld_models()
        ),
        family_dims=expand(
            f"{RESULTS}/{{model}}/family_dims.parquet", model=conceptworld_models()
        ),
        labels=expand(
            f"{RESULTS}/{{model}}/labels.parquet", model=conceptworld_models()
        ),
        # video retrieval under pruning ({model}/video/{set}.parquet, prune schema): claim (d)
        video=video_outputs("prune"),
        video_items=video_outputs("items"),
        # every retrieval metric per strategy and direction (Figure 5's section)
        video_retrieval=video_outputs("retrieval"),
        # head attribution (rules/attribution.smk): the tables the report reads
        attribution=attribution_outputs(),
        mutual=mutual_outputs("summary") + mutual_outputs("images"),
        mutual_truth=mutual_outputs("truth"),
        mutual_evaluations=mutual_outputs("faithfulness_summary")
        + mutual_outputs("augmented")
        + mutual_outputs("faithfulness_truth"),
        # the head browser (rules/head_browser.smk): thumbnails, TEXTSPAN texts, head groups
        head_browser=head_browser_inputs(),
        # what the LLM steps spent, and the prompts they recorded (rules/helpers/llm.smk)
        llm_usage=llm_usage_files(),
        # the setup section names the text bank (its provenance) and the datasets' classes; the
        # CCS-vs-truth section reads its texts' families (concept world)
        textbank=[f"{RESULTS}/textbank.parquet"] if HEAD_MODELS else [],
        code=code(
            "report/cli.py",
            "report/html.py",
            "report/tables.py",
            "report/figures.py",
            "report/inputs.py",
            "report/paper.py",
            "report/paper_values.yaml",
            "report/claims.py",
            "report/claims_html.py",
            "report/effects.py",
            "report/verdicts.py",
            "report/label_truth.py",
            "report/ccs_truth.py",
            "report/mutual_inputs.py",
            "report/mutual_tables.py",
            "report/mutual_figures.py",
            "report/mutual_faithfulness.py",
            "mutual/schemas.py",
            "report/attribution_inputs.py",
            "report/attribution_tables.py",
            "report/attribution_figures.py",
            "report/video_inputs.py",
            "report/video_tables.py",
            "report/video_figures.py",
            "report/attribution_video_sections.py",
            "report/llm_usage.py",
            "llm_prices.py",
            "report/setup_tables.py",
            "published_heads.py",
            "data/zeroshot_ccs_published_heads.json",
            "textbank.py",
            "attribution/schemas.py",
            "schemas.py",
        )
        + (
            code("conceptworld/lexicon.py", "conceptworld/world.py")
            if conceptworld_models()
            else []
        ),
    output:
        html=report(
            f"{RESULTS}/report.html",
            caption="../src/clipconcepts/report/captions/report.rst",
            category="Report",
        ),
        assets=[
            report(
                f"{RESULTS}/report/{asset.name}",
                caption=str(asset.caption),
                category=asset.category,
                subcategory=asset.subcategory,
            )
            for asset in REPORT_ASSETS
        ],
    log:
        f"{LOGS}/report.log",
    conda:
        "../envs/report.yaml"
    params:
        run_dir=lambda wildcards, output: Path(output.html).parent,
        assets_dir=lambda wildcards, output: Path(output.assets[0]).parent,
        models=report_models(),
        datasets=" ".join(DATASETS),
        title=knob("report", "title", f"clipconcepts: run {RUN}"),
        n_examples=knob("report", "n_examples", 3),
        ood=" ".join(ood_datasets()),
        concept_pairs=json.dumps(knob("prune", "concept_pairs", {}), sort_keys=True),
        claims_enabled="" if claims_knob("enabled", True) else "--no-claims",
        claims_bootstrap=claims_knob("bootstrap", 2000),
        claims_level=claims_knob("level", 0.95),
        claims_min_effect=claims_knob("min_effect", 1.0),
        claims_seed=claims_knob("seed", 0),
        mutual_sets=" ".join(MUTUAL_SETS),
        attribution_sets=" ".join(REPORT_ATTRIBUTION_SETS),
        video_sets=" ".join(REPORT_VIDEO_SETS),
        dataset_families=json.dumps(conceptworld_dataset_families(), sort_keys=True),
        llm_prices=llm_prices(),
        llm_currency=config["llm"].get("currency", "USD"),
        dataset_kinds=report_dataset_kinds(),
        prune_strategies=" ".join(knob("prune", "strategies", PRUNE_STRATEGIES)),
    message:
        "the results report of run {RUN}"
    shell:
        "python -m clipconcepts report --run-dir {params.run_dir:q} --models {params.models:q}"
        " --datasets {params.datasets} --title {params.title:q} --n-examples {params.n_examples}"
        " --ood-datasets {params.ood} --concept-pairs {params.concept_pairs:q}"
        " --video {input.video:q} --claims-bootstrap {params.claims_bootstrap}"
        " --claims-level {params.claims_level} --claims-min-effect {params.claims_min_effect}"
        " --claims-seed {params.claims_seed} {params.claims_enabled} --mutual-sets {params.mutual_sets}"
        " --attribution-sets {params.attribution_sets} --video-sets {params.video_sets}"
        " --dataset-families {params.dataset_families:q}"
        " --llm-usage {input.llm_usage:q} --llm-prices {params.llm_prices:q}"
        " --llm-currency {params.llm_currency:q}"
        " --dataset-kinds {params.dataset_kinds:q} --prune-strategies {params.prune_strategies}"
        " --out {output.html:q} --assets-dir {params.assets_dir:q} > {log} 2>&1"
