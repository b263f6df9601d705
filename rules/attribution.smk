# Head attribution (Dreyer et al. 2025, for heads): attribution patching and the direct effect
# per image, the true effect of ablating each head, deletion curves, and how faithful each view
# is (docs/attribution.md). One job per model and step, over the stage's datasets. The torch
# steps take 2 CPU threads beside a GPU, 1 on CPU (`device: cpu`): on small models a second
# thread costs more in synchronisation than it computes, 3x the CPU time on a busy machine
# (`--set-threads attribution_ablation=N` for a large model on a CPU node).


rule attribution_scores:
    input:
        model=model_files,
        data=attribution_data_files,
        classifiers=attribution_classifiers,
        code=code(
            "attribution/cli.py",
            "attribution/scores.py",
            "attribution/patching.py",
            "attribution/targets.py",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        attribution_files("scores"),
    log:
        f"{LOGS}/{{model}}/attribution_scores.log",
    conda:
        "../envs/torch.yaml"
    threads: 2 if gpus() else 1
    resources:
        mem_mb=16000,
        runtime=runtime(120),
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        datasets=" ".join(ATTRIBUTION_SETS),
        specs=attribution_dataset_specs(),
        templates=knob("prune", "templates", "ccs"),
        n_images=knob("attribution", "n_images", 500) or "",
        seed=knob("attribution", "seed", 0),
        target=knob("attribution", "target", "truth"),
        prompt=knob("attribution", "prompt", None) or "",
        baselines=" ".join(knob("attribution", "baselines", ["zero", "mean"])),
        batch_size=knob("attribution", "batch_size", 32),
    message:
        "attribution patching and direct effects of {wildcards.model}'s heads on {params.datasets}"
    shell:
        "python -m clipconcepts attribution-scores --arch {params.arch:q}"
        " --pretrained={params.pretrained:q} --device {params.device}"
        " --precision {params.precision} --datasets {params.datasets}"
        " --dataset-specs {params.specs:q} --templates {params.templates}"
        " --classifiers {input.classifiers:q} --n-images={params.n_images}"
        " --seed {params.seed} --target {params.target} --prompt={params.prompt:q}"
        " --baselines {params.baselines} --batch-size {params.batch_size}"
        " --threads {threads} --out {output:q} > {log} 2>&1"


rule attribution_ablation:
    input:
        model=model_files,
        data=attribution_data_files,
        classifiers=attribution_classifiers,
        code=code(
            "attribution/cli.py",
            "attribution/ablation.py",
            "attribution/patching.py",
            "attribution/targets.py",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        attribution_files("ablation"),
    log:
        f"{LOGS}/{{model}}/attribution_ablation.log",
    conda:
        "../envs/torch.yaml"
    threads: 2 if gpus() else 1
    resources:
        mem_mb=16000,
        runtime=runtime(360),
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        datasets=" ".join(ATTRIBUTION_SETS),
        specs=attribution_dataset_specs(),
        templates=knob("prune", "templates", "ccs"),
        n_images=knob("attribution", "n_images", 500) or "",
        seed=knob("attribution", "seed", 0),
        target=knob("attribution", "target", "truth"),
        prompt=knob("attribution", "prompt", None) or "",
        baselines=" ".join(knob("attribution", "baselines", ["zero", "mean"])),
        batch_size=knob("attribution", "batch_size", 32),
        layers=knob("attribution", "layers", "last4"),
        sets_per_pass=knob("attribution", "sets_per_pass", 8),
    message:
        "true effect of ablating {wildcards.model}'s heads ({params.layers}) on {params.datasets}"
    shell:
        "python -m clipconcepts attribution-ablation --arch {params.arch:q}"
        " --pretrained={params.pretrained:q} --device {params.device}"
        " --precision {params.precision} --datasets {params.datasets}"
        " --dataset-specs {params.specs:q} --templates {params.templates}"
        " --classifiers {input.classifiers:q} --n-images={params.n_images}"
        " --seed {params.seed} --target {params.target} --prompt={params.prompt:q}"
        " --baselines {params.baselines} --batch-size {params.batch_size}"
        " --layers {params.layers} --sets-per-pass {params.sets_per_pass}"
        " --threads {threads} --out {output:q} > {log} 2>&1"


rule attribution_deletion:
    input:
        model=model_files,
        data=attribution_data_files,
        classifiers=attribution_classifiers,
        scores=rules.attribution_scores.output,
        ablation=rules.attribution_ablation.output,
        ccs=rules.ccs.output.ccs,
        code=code(
            "attribution/cli.py",
            "attribution/deletion.py",
            "attribution/targets.py",
            "data/zeroshot.py",
            "data/images.py",
            "models/hooked.py",
        ),
    output:
        attribution_files("deletion"),
    log:
        f"{LOGS}/{{model}}/attribution_deletion.log",
    conda:
        "../envs/torch.yaml"
    threads: 2 if gpus() else 1
    resources:
        mem_mb=16000,
        runtime=runtime(120),
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        datasets=" ".join(ATTRIBUTION_SETS),
        specs=attribution_dataset_specs(),
        templates=knob("prune", "templates", "ccs"),
        n_images=knob("attribution", "n_images", 500) or "",
        seed=knob("attribution", "seed", 0),
        target=knob("attribution", "target", "truth"),
        prompt=knob("attribution", "prompt", None) or "",
        batch_size=knob("attribution", "batch_size", 32),
        layers=knob("attribution", "layers", "last4"),
        num_steps=knob("attribution", "num_steps", 5),
        subsets=knob("attribution", "subsets", 9),
        sets_per_pass=knob("attribution", "sets_per_pass", 8),
    message:
        "deletion curves of {wildcards.model} ({params.num_steps} steps) on {params.datasets}"
    shell:
        "python -m clipconcepts attribution-deletion --arch {params.arch:q}"
        " --pretrained={params.pretrained:q} --device {params.device}"
        " --precision {params.precision} --datasets {params.datasets}"
        " --dataset-specs {params.specs:q} --templates {params.templates}"
        " --classifiers {input.classifiers:q} --n-images={params.n_images}"
        " --seed {params.seed} --target {params.target} --prompt={params.prompt:q}"
        " --batch-size {params.batch_size} --scores {input.scores:q}"
        " --ablation {input.ablation:q} --ccs {input.ccs:q} --layers {params.layers}"
        " --num-steps {params.num_steps} --subsets {params.subsets}"
        " --sets-per-pass {params.sets_per_pass} --threads {threads}"
        " --out {output:q} > {log} 2>&1"


rule attribution_heads:
    input:
        scores=rules.attribution_scores.output,
        ablation=rules.attribution_ablation.output,
        ccs=rules.ccs.output.ccs,
        code=code("attribution/cli.py", "attribution/tables.py"),
    output:
        attribution_files("heads"),
    log:
        f"{LOGS}/{{model}}/attribution_heads.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=runtime(30),
    params:
        datasets=" ".join(ATTRIBUTION_SETS),
    message:
        "per-head table of every attribution view of {wildcards.model}"
    shell:
        "python -m clipconcepts attribution-heads --datasets {params.datasets}"
        " --scores {input.scores:q} --ablation {input.ablation:q} --ccs {input.ccs:q}"
        " --out {output:q} > {log} 2>&1"


rule attribution_faithfulness:
    input:
        scores=rules.attribution_scores.output,
        ablation=rules.attribution_ablation.output,
        heads=rules.attribution_heads.output,
        code=code("attribution/cli.py", "attribution/tables.py"),
    output:
        attribution_files("correlations"),
    log:
        f"{LOGS}/{{model}}/attribution_faithfulness.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=runtime(30),
    params:
        datasets=" ".join(ATTRIBUTION_SETS),
        seed=knob("attribution", "seed", 0),
    message:
        "faithfulness of {wildcards.model}'s attribution views to the true effect"
    shell:
        "python -m clipconcepts attribution-faithfulness --datasets {params.datasets}"
        " --scores {input.scores:q} --ablation {input.ablation:q} --heads {input.heads:q}"
        " --seed {params.seed} --out {output:q} > {log} 2>&1"


rule attribution_reliance:
    input:
        scores=rules.attribution_scores.output,
        ablation=rules.attribution_ablation.output,
        heads=rules.attribution_heads.output,
        classifiers=attribution_classifiers,
        code=code(
            "attribution/cli.py",
            "attribution/reliance.py",
            "evaluate/strategies.py",
            "conceptworld/lexicon.py",
            "textbank.py",
        ),
    output:
        attribution_files("reliance"),
    log:
        f"{LOGS}/{{model}}/attribution_reliance.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=runtime(30),
    params:
        datasets=" ".join(ATTRIBUTION_SETS),
        groups=json.dumps(knob("prune", "concept_groups", {}), sort_keys=True),
        lexicons=attribution_lexicons(),
        top_k=knob("attribution", "top_k", 5),
        prompt=knob("attribution", "prompt", None) or "",
    message:
        "unexpected reliance: {wildcards.model}'s top-attributed heads per class"
    shell:
        "python -m clipconcepts attribution-reliance --datasets {params.datasets}"
        " --scores {input.scores:q} --ablation {input.ablation:q} --heads {input.heads:q}"
        " --classifiers {input.classifiers:q} --concept-groups {params.groups:q}"
        " --lexicons {params.lexicons:q} --top-k {params.top_k} --prompt={params.prompt:q}"
        " --out {output:q} > {log} 2>&1"


rule attribution_truth:
    input:
        heads=[
            f"{RESULTS}/{{model}}/attribution/{d}/heads.parquet"
            for d in attribution_truth_sets()
        ],
        truth=rules.head_truth.output.truth,
        code=code(
            "attribution/cli.py",
            "attribution/truth_precision.py",
            "attribution/tables.py",
        ),
    output:
        [
            f"{RESULTS}/{{model}}/attribution/{d}/truth.parquet"
            for d in attribution_truth_sets()
        ],
    log:
        f"{LOGS}/{{model}}/attribution_truth.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime(30),
    params:
        datasets=" ".join(attribution_truth_sets()),
        families=json.dumps(
            {d: config["datasets"][d].get("family") for d in attribution_truth_sets()},
            sort_keys=True,
        ),
        seed=knob("attribution", "seed", 0),
    message:
        "concept world: precision@k of {wildcards.model}'s attribution views vs the head truth"
    shell:
        "python -m clipconcepts attribution-truth --datasets {params.datasets}"
        " --heads {input.heads:q} --head-truth {input.truth:q} --families {params.families:q}"
        " --seed {params.seed} --out {output:q} > {log} 2>&1"
