rule report:
    input:
        ccs=per_model(f"{RESULTS}/{{model}}/ccs.parquet"),
        ccs_at_k=per_model(f"{RESULTS}/{{model}}/ccs_at_k.parquet"),
        prune=expand(
            f"{RESULTS}/{{model}}/prune/{{dataset}}.parquet",
            model=MODELS,
            dataset=DATASETS,
        ),
        agreement=(
            [rules.agreement.output[0]] if knob("agreement", "sheet", None) else []
        ),
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
    conda:
        "../envs/report.yaml"
    params:
        run_dir=lambda wildcards, output: Path(output.html).parent,
        assets_dir=lambda wildcards, output: Path(output.assets[0]).parent,
        models=report_models(),
        datasets=" ".join(DATASETS),
        title=knob("report", "title", f"clipconcepts: run {RUN}"),
        n_examples=knob("report", "n_examples", 3),
    message:
        "the results report of run {RUN}"
    shell:
        "python -m clipconcepts report --run-dir {params.run_dir:q} --models {params.models:q}"
        " --datasets {params.datasets} --title {params.title:q} --n-examples {params.n_examples}"
        " --out {output.html:q} --assets-dir {params.assets_dir:q} > {log} 2>&1"
