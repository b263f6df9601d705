rule extract:
    input:
        model=model_files,
        probe=probe_files(),
        code=code(
            "extract.py", "models/hooked.py", "models/loading.py", "data/images.py"
        ),
    output:
        heads=f"{RESULTS}/{{model}}/heads.parquet",
        embeddings=f"{RESULTS}/{{model}}/embeddings.parquet",
    log:
        f"{LOGS}/{{model}}/extract.log",
    conda:
        "../envs/torch.yaml"
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
    message:
        "extract per-head contributions of {wildcards.model} on the probe set"
    shell:
        "python -m clipconcepts extract --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --probe-kind {params.probe_kind} --probe-root {params.probe_root:q}"
        " --subset {params.subset} --seed {params.seed} --layers {params.layers}"
        " --batch-size {params.batch_size} --num-workers {params.num_workers}"
        " --on-bad-image {params.on_bad_image} --part-size {params.part_size}"
        " --heads-out {output.heads:q} --embeddings-out {output.embeddings:q} > {log} 2>&1"
