# The report's head browser: per analysed head, the probe images whose contribution from the
# head projects most and least on its first TEXTSPAN direction, as small thumbnails
# (report/head_images.py). The report rule reads them with the TEXTSPAN texts and head groups.
# Its helpers (head_images_knob, head_browser_inputs) are in rules/common.smk.


rule head_images:
    input:
        heads=extract_files("heads"),
        embeddings=extract_files("embeddings"),
        textspans=rules.textspan.output[0],
        texts=rules.embed_texts.output[0],
        probe=probe_files(),
        code=code(
            "report/head_images.py", "data/images.py", "textspan_step.py", "io.py"
        ),
    output:
        f"{RESULTS}/{{model}}/head_images.parquet",
    log:
        f"{LOGS}/{{model}}/head_images.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=runtime(60),
    params:
        probe_kind=probe_source()[0],
        probe_root=lambda wildcards, input: (
            Path(input.probe[0]).parent if input.probe else probe_source()[1]
        ),
        n_images=head_images_knob("n_images", 8),
        thumbnail_px=head_images_knob("thumbnail_px", 64),
        thumbnail_format=head_images_knob("thumbnail_format", "auto"),
        normalize=knob("textspan", "normalize", "embedding_norm"),
    message:
        "the probe images each head of {wildcards.model} writes most and least along its first "
        "TEXTSPAN direction"
    shell:
        "python -m clipconcepts head-images --heads {input.heads:q}"
        " --embeddings {input.embeddings:q} --textspans {input.textspans:q}"
        " --texts {input.texts:q} --probe-kind {params.probe_kind}"
        " --probe-root {params.probe_root:q} --n-images {params.n_images}"
        " --thumbnail-px {params.thumbnail_px} --thumbnail-format {params.thumbnail_format}"
        " --normalize {params.normalize} --out {output:q} > {log} 2>&1"
