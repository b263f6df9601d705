# Zero-shot text-video retrieval under head pruning (CCS paper, section 5.6, Figure 5): per model
# x video set, every prune strategy from one decode of the videos (docs/video.md). The concept
# world's clips (objects moving, written as mp4) are generated here when a config names them.


rule conceptworld_videos:
    input:
        code=code(
            "video/conceptworld.py",
            "video/decode.py",
            "conceptworld/generator.py",
            "conceptworld/world.py",
        ),
    output:
        f"{CONCEPTWORLD}/data/clips/manifest.parquet",
    log:
        f"{LOGS}/conceptworld/clips.log",
    conda:
        "../envs/torch.yaml"
    resources:
        mem_mb=2000,
        runtime=runtime(30),
    params:
        out_dir=lambda wildcards, output: Path(output[0]).parent,
        n_videos=video_clip_knob("n_videos", 200),
        n_frames=video_clip_knob("n_frames", 16),
        fps=video_clip_knob("fps", 8),
        seed=video_clip_knob("seed", knob("conceptworld", "seed", 0)),
    message:
        "write {params.n_videos} concept-world clips of {params.n_frames} frames (mp4)"
    shell:
        "python -m clipconcepts conceptworld-videos --out-dir {params.out_dir:q}"
        " --n-videos {params.n_videos} --n-frames {params.n_frames} --fps {params.fps}"
        " --seed {params.seed} > {log} 2>&1"


rule video_eval:
    input:
        model=model_files,
        data=video_set_files,
        groups=rules.ccs.output.groups,
        labels=rules.label.output[0],
        ccs=rules.ccs.output.ccs,
        code=code(
            "video/cli.py",
            "video/datasets.py",
            "video/decode.py",
            "video/encode.py",
            "video/metrics.py",
            "video/evaluate.py",
            "evaluate/strategies.py",
            "models/hooked.py",
        ),
    output:
        prune=f"{RESULTS}/{{model}}/video/{{video_set}}.parquet",
        retrieval=f"{RESULTS}/{{model}}/video/{{video_set}}.retrieval.parquet",
        # every query's rank per prune set and direction: claim (d)'s paired bootstrap
        outcomes=f"{RESULTS}/{{model}}/video/{{video_set}}.items.parquet",
    log:
        f"{LOGS}/{{model}}/video_{{video_set}}.log",
    conda:
        "../envs/torch.yaml"
    threads: max(2, knob("video", "num_workers", 0))
    resources:
        mem_mb=16000,
        runtime=runtime(240),
        gpu=gpus(),
    params:
        plan=lambda wildcards: " ".join(
            strategy_plan("video", video_concept_pairs(wildcards.video_set))
        ),
        arch=model_arch,
        pretrained=model_pretrained,
        device=config.get("device", "cuda"),
        precision=config.get("precision", "fp32"),
        spec=video_spec,
        layers=" ".join(str(layer) for layer in config["layers"]),
        strategies=" ".join(knob("video", "strategies", PRUNE_STRATEGIES)),
        seeds=" ".join(str(s) for s in knob("video", "random_seeds", [0, 1, 2])),
        groups=json.dumps(knob("prune", "concept_groups", {})),
        pairs=lambda wildcards: json.dumps(video_concept_pairs(wildcards.video_set)),
        concept_heads=knob("prune", "concept_heads", "high"),
        manual=json.dumps(knob("prune", "manual", {})),
        batch_size=knob("video", "batch_size", 16),
        frame_batch_size=knob("video", "frame_batch_size", 256),
        num_workers=knob("video", "num_workers", 0),
        sets_per_pass=knob("video", "sets_per_pass", 8),
        ties=knob("video", "ties", "pessimistic"),
        protocol=knob("video", "protocol", "ccs"),
    message:
        "zero-shot video retrieval of {wildcards.model} on {wildcards.video_set}: {params.plan}"
    shell:
        "python -m clipconcepts video-eval --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --dataset {wildcards.video_set} --dataset-spec {params.spec:q}"
        " --head-groups {input.groups:q} --labels {input.labels:q} --ccs {input.ccs:q}"
        " --layers {params.layers} --strategies {params.strategies} --random-seeds {params.seeds}"
        " --concept-groups {params.groups:q} --concept-pairs {params.pairs:q}"
        " --concept-heads {params.concept_heads} --manual {params.manual:q}"
        " --batch-size {params.batch_size} --frame-batch-size {params.frame_batch_size}"
        " --num-workers {params.num_workers} --sets-per-pass {params.sets_per_pass}"
        " --ties {params.ties} --protocol {params.protocol}"
        " --out {output.prune:q} --retrieval-out {output.retrieval:q}"
        " --items-out {output.outcomes:q}"
        " > {log} 2>&1"
