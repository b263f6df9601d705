rule extract:
    input:
        model=model_files,
        probe=probe_files(),
        code=code(
            "extract.py", "models/hooked.py", "models/loading.py", "data/images.py"
        ),
    output:
        heads=extract_output("heads"),
        embeddings=extract_output("embeddings"),
    log:
        extract_output("extract", ".log", root=LOGS),
    wildcard_constraints:
        shard=r"\d{4}",
    conda:
        "../envs/torch.yaml"
    threads: max(2, knob("extract", "num_workers", 0))
    resources:
        mem_mb=16000,
        runtime=runtime(360),
        gpu=gpus(),
    params:
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        probe_kind=probe_source()[0],
        probe_root=lambda wildcards, input: (
            Path(input.probe[0]).parent if input.probe else probe_source()[1]
        ),
        subset=config["probe"].get("subset") or 0,
        seed=config["probe"].get("seed", 0),
        layers=" ".join(str(layer) for layer in config["layers"]),
        batch_size=knob("extract", "batch_size", 256),
        num_workers=knob("extract", "num_workers", 0),
        on_bad_image=knob("extract", "on_bad_image", "fail"),
        part_size=knob("extract", "part_size", 10000),
        shard=lambda wildcards: int(wildcards.get("shard", 0)),
        shards=SHARDS,
        which=lambda wildcards: (
            f" (image range {int(wildcards.shard) + 1} of {SHARDS})"
            if SHARDS > 1
            else ""
        ),
    message:
        "extract per-head contributions of {wildcards.model} on the probe set{params.which}"
    shell:
        "python -m clipconcepts extract --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --probe-kind {params.probe_kind} --probe-root {params.probe_root:q}"
        " --subset {params.subset} --seed {params.seed} --layers {params.layers}"
        " --batch-size {params.batch_size} --num-workers {params.num_workers}"
        " --on-bad-image {params.on_bad_image} --part-size {params.part_size}"
        " --shard {params.shard} --shards {params.shards}"
        " --heads-out {output.heads:q} --embeddings-out {output.embeddings:q} > {log} 2>&1"
