rule classifier:
    input:
        model=model_files,
        data=dataset_files,
        code=code(
            "evaluate/classifier.py",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        f"{RESULTS}/{{model}}/classifiers/{{dataset}}.parquet",
    log:
        f"{LOGS}/{{model}}/classifier_{{dataset}}.log",
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=runtime(60),
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        spec=dataset_spec,
        templates=knob("prune", "templates", "ccs"),
        batch_size=knob("prune", "batch_size", 256),
    message:
        "zero-shot classifier of {wildcards.model} for {wildcards.dataset}"
    shell:
        "python -m clipconcepts classifier --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --dataset {wildcards.dataset} --dataset-spec {params.spec:q} --templates {params.templates}"
        " --batch-size {params.batch_size} --out {output:q} > {log} 2>&1"


rule prune_eval:
    input:
        model=model_files,
        data=dataset_files,
        classifier=rules.classifier.output[0],
        groups=rules.ccs.output.groups,
        labels=rules.label.output[0],
        ccs=rules.ccs.output.ccs,
        code=code(
            "evaluate/prune.py",
            "evaluate/strategies.py",
            "published_heads.py",
            "data/zeroshot_ccs_published_heads.json",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        summary=f"{RESULTS}/{{model}}/prune/{{dataset}}.parquet",
        # every image's outcome per prune set: the claims' paired bootstrap
        outcomes=f"{RESULTS}/{{model}}/prune/{{dataset}}.items.parquet",
    log:
        f"{LOGS}/{{model}}/prune_{{dataset}}.log",
    conda:
        "../envs/torch.yaml"
    threads: max(2, knob("prune", "num_workers", 0))
    resources:
        mem_mb=16000,
        runtime=runtime(360),
        gpu=gpus(),
    params:
        plan=lambda wildcards: " ".join(
            strategy_plan("prune", concept_pairs(wildcards.dataset))
        ),
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        spec=dataset_spec,
        templates=knob("prune", "templates", "ccs"),
        layers=" ".join(str(layer) for layer in config["layers"]),
        strategies=" ".join(knob("prune", "strategies", PRUNE_STRATEGIES)),
        seeds=" ".join(str(s) for s in knob("prune", "random_seeds", [0, 1, 2])),
        groups=json.dumps(knob("prune", "concept_groups", {})),
        pairs=lambda wildcards: json.dumps(concept_pairs(wildcards.dataset)),
        concept_heads=knob("prune", "concept_heads", "high"),
        manual=json.dumps(knob("prune", "manual", {})),
        batch_size=knob("prune", "batch_size", 256),
        num_workers=knob("prune", "num_workers", 0),
        sets_per_pass=knob("prune", "sets_per_pass", 8),
    message:
        "pruned zero-shot accuracy of {wildcards.model} on {wildcards.dataset}: {params.plan}"
    shell:
        "python -m clipconcepts prune-eval --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --dataset {wildcards.dataset} --dataset-spec {params.spec:q} --templates {params.templates}"
        " --classifier {input.classifier:q} --head-groups {input.groups:q}"
        " --labels {input.labels:q} --ccs {input.ccs:q} --layers {params.layers}"
        " --strategies {params.strategies} --random-seeds {params.seeds}"
        " --concept-groups {params.groups:q} --concept-pairs {params.pairs:q}"
        " --concept-heads {params.concept_heads} --manual {params.manual:q}"
        " --batch-size {params.batch_size} --num-workers {params.num_workers}"
        " --sets-per-pass {params.sets_per_pass} --out {output.summary:q}"
        " --items-out {output.outcomes:q} > {log} 2>&1"
