REPORT_ASSETS = load_light_module("report/assets.py").report_assets(DATASETS)


def report_models():
    """Model keys with their arch and pretrained tag (the report matches them to the papers)."""
    return json.dumps(
        {
            key: {"arch": spec["arch"], "pretrained": spec.get("pretrained") or ""}
            for key, spec in config["models"].items()
        },
        sort_keys=True,
    )


rule report:
    message:
        "the results report of run {RUN}"
    input:
        ccs=per_model(f"{RESULTS}/{{model}}/ccs.parquet"),
        ccs_at_k=per_model(f"{RESULTS}/{{model}}/ccs_at_k.parquet"),
        prune=expand(f"{RESULTS}/{{model}}/prune/{{dataset}}.parquet", model=MODELS, dataset=DATASETS),
        agreement=[rules.agreement.output[0]] if knob("agreement", "sheet", None) else [],
        metrics=[rules.train_concept_clip.output.metrics] if uses_conceptworld() else [],
        code=code(
            "report/html.py",
            "report/tables.py",
            "report/figures.py",
            "report/inputs.py",
            "report/paper.py",
            "report/paper_values.yaml",
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
    params:
        models=report_models(),
        datasets=" ".join(DATASETS),
        title=knob("report", "title", f"clipconcepts: run {RUN}"),
        n_examples=knob("report", "n_examples", 3),
    conda:
        "../envs/report.yaml"
    shell:
        "python -m clipconcepts report --run-dir {RESULTS:q} --models {params.models:q}"
        " --datasets {params.datasets} --title {params.title:q} --n-examples {params.n_examples}"
        " --out {output.html:q} --assets-dir {RESULTS}/report > {log} 2>&1"
