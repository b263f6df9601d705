# Mutual knowledge of the image and text encoders (Sammani & Deligiannis, NeurIPS 2024): a
# descriptor bank per dataset, then per model x dataset the visual concepts of every image, their
# mutual descriptors, and the mutual information with the class's descriptors (docs/mutual.md).


rule mutual_descriptors:
    input:
        data=mutual_set_files,
        code=code(
            "mutual/descriptors.py",
            "conceptworld/descriptors.py",
            "llm/backends.py",
            "llm/http.py",
            "llm/cache.py",
        ),
    output:
        # source=llm: also the LLM usage table, `usage` (rules/helpers/llm.smk)
        **descriptor_usage_output(),
        bank=f"{RESULTS}/mutual/descriptors/{{mutual_set}}.parquet",
    log:
        f"{LOGS}/mutual/descriptors_{{mutual_set}}.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    resources:
        llm=1,
    params:
        source=knob("mutual", "descriptors", {}).get("source", "llm"),
        path=knob("mutual", "descriptors", {}).get("path") or "",
        backend=lambda wildcards: (
            json.dumps(mutual_descriptor_backend())
            if knob("mutual", "descriptors", {}).get("source", "llm") == "llm"
            else ""
        ),
        prompt=prompt_hash("describe_class"),
        spec=mutual_set_spec,
        cache=f"{RESULTS}/llm_cache",
        concurrency=config["llm"].get("max_concurrency", 4),
        retry_invalid=config["llm"].get("retry_invalid", False),
        max_invalid=config["llm"].get("max_invalid_fraction", 0.1),
        usage=lambda wildcards, output: output.get("usage", ""),
    message:
        "descriptor bank of {wildcards.mutual_set} ({params.source})"
    shell:
        "python -m clipconcepts mutual-descriptors --source {params.source}"
        " --path={params.path:q} --backend={params.backend:q}"
        " --dataset {wildcards.mutual_set} --dataset-spec {params.spec:q}"
        " --cache-dir {params.cache:q} --max-concurrency {params.concurrency}"
        " --retry-invalid {params.retry_invalid} --max-invalid-fraction {params.max_invalid}"
        " --usage-out={params.usage:q} --out {output.bank:q} > {log} 2>&1"


rule mutual:
    input:
        model=model_files,
        data=mutual_set_files,
        descriptors=rules.mutual_descriptors.output.bank,
        code=code(
            "mutual/cli.py",
            "mutual/run.py",
            "mutual/per_class.py",
            "mutual/foreground.py",
            "mutual/concepts.py",
            "mutual/visual_prompts.py",
            "mutual/optimal_transport.py",
            "mutual/information.py",
            "mutual/schemas.py",
            "mutual/evaluation.py",
            "mutual/faithfulness.py",
            "mutual/faithfulness_truth.py",
            "mutual/augmented.py",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        images=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/images.parquet",
        summary=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/summary.parquet",
        # the evaluations (docs/mutual.md): Table 1, Table 2, the concept world's region check
        faithfulness=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/faithfulness.parquet",
        faithfulness_summary=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/faithfulness_summary.parquet",
        augmented=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/augmented.parquet",
        faithfulness_truth=f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/faithfulness_truth.parquet",
    log:
        f"{LOGS}/{{model}}/mutual_{{mutual_set}}.log",
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=runtime(1440),  # ImageNet val x a large ViT: the explanations and Tables 1-2
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        spec=mutual_set_spec,
        templates=json.dumps(knob("mutual", "templates", "mutual8")),
        descriptor_template=knob("mutual", "descriptor_template", "a photo showing {}"),
        settings=mutual_settings(),
        classes=knob("mutual", "classes", None) or "",
        per_class=knob("mutual", "images_per_class", None) or "",
        n_examples=knob("mutual", "n_examples", 4),
        crf="--crf" if knob("mutual", "crf", False) else "",
        faithfulness=mutual_faithfulness_settings(),
        # a function: the prompt's {classname} and {descriptor} are not wildcards
        augmented=lambda wildcards: mutual_augmented_settings(),
        manifest=lambda wildcards: (mutual_set_files(wildcards) or [""])[0],
    message:
        "mutual knowledge of {wildcards.model} on {wildcards.mutual_set}"
    shell:
        "python -m clipconcepts mutual --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --dataset {wildcards.mutual_set} --dataset-spec {params.spec:q}"
        " --templates {params.templates:q} --descriptors {input.descriptors:q}"
        " --descriptor-template {params.descriptor_template:q} --settings {params.settings:q}"
        " --classes={params.classes} --images-per-class={params.per_class}"
        " --n-examples {params.n_examples} {params.crf}"
        " --faithfulness {params.faithfulness:q} --augmented {params.augmented:q}"
        " --manifest={params.manifest:q}"
        " --out-images {output.images:q} --out-summary {output.summary:q}"
        " --out-faithfulness {output.faithfulness:q}"
        " --out-faithfulness-summary {output.faithfulness_summary:q}"
        " --out-augmented {output.augmented:q}"
        " --out-faithfulness-truth {output.faithfulness_truth:q} > {log} 2>&1"


rule mutual_truth:
    input:
        images=rules.mutual.output.images,
        descriptors=rules.mutual_descriptors.output.bank,
        data=mutual_set_files,
        code=code("mutual/descriptor_truth.py", "mutual/schemas.py"),
    output:
        f"{RESULTS}/{{model}}/mutual/{{mutual_set}}/truth.parquet",
    log:
        f"{LOGS}/{{model}}/mutual_truth_{{mutual_set}}.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime(10),
    message:
        "concept world: mutual descriptors of {wildcards.model} on {wildcards.mutual_set} vs the truth"
    shell:
        "python -m clipconcepts mutual-truth --images {input.images:q}"
        " --descriptors {input.descriptors:q} --manifest {input.data[0]:q} --out {output:q}"
        " > {log} 2>&1"
