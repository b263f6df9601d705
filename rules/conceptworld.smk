# The concept world: a small CLIP trained offline on synthetic images with planted concepts, and
# datasets and a text bank in the same formats as the real ones. Used when a config names it.


rule concept_clip:
    input:
        concept_clip_inputs,
    output:
        config=f"{CONCEPTWORLD}/model/conceptworld-vit.json",
        checkpoint=f"{CONCEPTWORLD}/model/checkpoint.pt",
        metrics=f"{CONCEPTWORLD}/model/metrics.parquet",
    log:
        f"{LOGS}/conceptworld/concept_clip.log",
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=runtime(120),
    params:
        out_dir=lambda wildcards, output: Path(output.checkpoint).parent,
        source=knob("conceptworld", "model", "shipped"),
        steps=knob("conceptworld", "train_steps", 6000),
        batch_size=knob("conceptworld", "train_batch_size", 64),
        lr=knob("conceptworld", "lr", 1e-3),
        seed=knob("conceptworld", "seed", 0),
        eval_n=knob("conceptworld", "eval_images_per_family", 1000),
        checkpoint_every=knob("conceptworld", "checkpoint_every", 50),
    message:
        "the concept-world CLIP ({params.source}; recipe {params.steps} steps of {params.batch_size})"
    shell:
        "python -m clipconcepts concept-clip --source {params.source} --out-dir {params.out_dir:q}"
        " --steps {params.steps} --batch-size {params.batch_size} --lr {params.lr}"
        " --seed {params.seed} --eval-images-per-family {params.eval_n} --threads {threads}"
        " --checkpoint-every {params.checkpoint_every} > {log} 2>&1"


rule conceptworld_data:
    input:
        code=code(
            "conceptworld/datasets.py",
            "conceptworld/generator.py",
            "conceptworld/world.py",
            "conceptworld/model.py",
        ),
    output:
        probe=f"{CONCEPTWORLD}/data/probe/manifest.parquet",
        families=expand(
            f"{CONCEPTWORLD}/data/{{family}}/manifest.parquet",
            family=CONCEPTWORLD_FAMILIES,
        ),
        ood=expand(
            f"{CONCEPTWORLD}/data/{{family}}-outlined/manifest.parquet",
            family=CONCEPTWORLD_FAMILIES,
        ),
    log:
        f"{LOGS}/conceptworld/data.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=4000,
        runtime=runtime(60),
    params:
        out_dir=lambda wildcards, output: Path(output.probe).parent.parent,
        n_probe=knob("conceptworld", "n_probe", 2000),
        n_per_family=knob("conceptworld", "n_per_family", 500),
        seed=knob("conceptworld", "seed", 0),
    message:
        "write the concept-world probe set and two zero-shot sets per family (filled, outlined)"
    shell:
        "python -m clipconcepts conceptworld-data --out-dir {params.out_dir:q}"
        " --n-probe {params.n_probe} --n-per-family {params.n_per_family}"
        " --seed {params.seed} > {log} 2>&1"


rule head_truth:
    input:
        model=model_files,
        probe=f"{CONCEPTWORLD}/data/probe/manifest.parquet",
        code=code("conceptworld/groundtruth.py", "conceptworld/cli.py"),
    output:
        truth=f"{RESULTS}/{{model}}/head_truth.parquet",
        # per family: in how many directions the whole model (all heads together) writes it
        family_dims=f"{RESULTS}/{{model}}/family_dims.parquet",
    log:
        f"{LOGS}/{{model}}/head_truth.log",
    conda:
        "../envs/torch.yaml"
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        probe=lambda wildcards, input: Path(input.probe).parent,
        n_images=knob("conceptworld", "n_probe", 2000),
    message:
        "ground truth of {wildcards.model}: the family each head writes most"
    shell:
        "python -m clipconcepts head-truth --arch {params.arch:q}"
        " --pretrained {params.pretrained:q} --probe {params.probe:q}"
        " --n-images {params.n_images} --out {output.truth:q}"
        " --family-dims {output.family_dims:q} > {log} 2>&1"
