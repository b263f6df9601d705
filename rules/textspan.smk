rule textbank_download:
    input:
        code=code("textbank_download.py"),
    output:
        TEXTBANK_AUTHORS_FILE,
    log:
        f"{LOGS}/textbank_download.log",
    # on the machine that runs Snakemake (compute nodes may have no internet)
    localrule: True
    conda:
        "../envs/llm.yaml"
    params:
        url=textbank_url(),
        sha256=knob("textbank", "sha256", ""),
        timeout=knob("textbank", "timeout_s", 60),
    message:
        "download the text bank {params.url} (SHA-256 checked)"
    shell:
        "python -m clipconcepts textbank-download --url {params.url:q}"
        " --sha256={params.sha256:q} --timeout {params.timeout} --out {output:q} > {log} 2>&1"


rule textbank:
    input:
        files=textbank_files(),
        code=code("textbank.py", "llm/bank.py", "textbank_download.py")
        + (
            code("conceptworld/textbank.py")
            if config["textbank"]["source"] == "conceptworld"
            else []
        ),
    output:
        # source=generate: also the LLM usage table, `usage` (rules/helpers/llm.smk)
        **textbank_usage_output(),
        bank=f"{RESULTS}/textbank.parquet",
    log:
        f"{LOGS}/textbank.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    resources:
        llm=1,
    params:
        **textbank_params(),
        cache=f"{RESULTS}/llm_cache",
        usage=lambda wildcards, output: output.get("usage", ""),
    message:
        "resolve the text bank ({params.source})"
    shell:
        "python -m clipconcepts textbank --source {params.source} --path={params.path:q}"
        " --url={params.url:q} --sha256={params.sha256:q}"
        " --generate-n {params.n} --generate-batch {params.batch}"
        " --backend={params.backend:q} --cache-dir {params.cache:q}"
        " --retry-invalid {params.retry_invalid} --max-invalid-fraction {params.max_invalid}"
        " --usage-out={params.usage:q} --out {output.bank:q} > {log} 2>&1"


rule embed_texts:
    input:
        bank=rules.textbank.output.bank,
        model=model_files,
        code=code("models/hooked.py", "models/loading.py"),
    output:
        f"{RESULTS}/{{model}}/texts.parquet",
    log:
        f"{LOGS}/{{model}}/embed_texts.log",
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
        batch_size=knob("textspan", "batch_size", 512),
    message:
        "embed the text bank with {wildcards.model}"
    shell:
        "python -m clipconcepts embed-texts --arch {params.arch:q} --pretrained={params.pretrained:q}"
        " --device {params.device} --precision {params.precision}"
        " --textbank {input.bank:q} --batch-size {params.batch_size} --out {output:q} > {log} 2>&1"


rule textspan:
    input:
        heads=extract_files("heads"),
        embeddings=extract_files("embeddings"),
        texts=rules.embed_texts.output[0],
        code=code("textspan.py", "textspan_step.py", "extract.py"),
    output:
        f"{RESULTS}/{{model}}/textspans.parquet",
    log:
        f"{LOGS}/{{model}}/textspan.log",
    conda:
        "../envs/torch.yaml"
    threads: 2
    resources:
        # streamed: 1.6 GB peak for ViT-L-14 x 50k images (bench/textspan_memory.py)
        mem_mb=8000,
        runtime=runtime(120),
        gpu=gpus(),
    params:
        iters=knob("textspan", "texts_per_head", 5),
        rank=knob("textspan", "rank", 80),
        normalize=knob("textspan", "normalize", "embedding_norm"),
        device=config.get("device", "cuda"),
    message:
        "TEXTSPAN for every analysed head of {wildcards.model} (normalize: {params.normalize})"
    shell:
        "python -m clipconcepts textspan --heads {input.heads:q}"
        " --embeddings {input.embeddings:q} --texts {input.texts:q}"
        " --iters {params.iters} --rank {params.rank} --normalize {params.normalize}"
        " --device {params.device}"
        " --out {output:q} > {log} 2>&1"
