# LLM rules run where the API is reachable (local rules) and share the `llm` resource budget.


rule label:
    input:
        textspans=rules.textspan.output[0],
        code=code(
            "labelling.py",
            "llm/backends.py",
            "llm/http.py",
            "llm/errors.py",
            "llm/cache.py",
            "llm/usage.py",
        ),
    output:
        labels=f"{RESULTS}/{{model}}/labels.parquet",
        # calls, answers reused from the cache, tokens; the prompts in its metadata
        usage=f"{RESULTS}/{{model}}/llm_usage/label.parquet",
    log:
        f"{LOGS}/{{model}}/label.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    resources:
        llm=1,
    params:
        labeller=config["llm"]["labeller"],
        backend=json.dumps(llm_backend_spec(config["llm"]["labeller"])),
        prompt=prompt_hash("label"),
        cache=f"{RESULTS}/llm_cache",
        concurrency=config["llm"].get("max_concurrency", 4),
        retry_invalid=config["llm"].get("retry_invalid", False),
        max_invalid=config["llm"].get("max_invalid_fraction", 0.1),
    message:
        "label every head of {wildcards.model} with {params.labeller}"
    shell:
        "python -m clipconcepts label --textspans {input.textspans:q} --backend {params.backend:q}"
        " --cache-dir {params.cache:q} --max-concurrency {params.concurrency}"
        " --retry-invalid {params.retry_invalid} --max-invalid-fraction {params.max_invalid}"
        " --out {output.labels:q} --usage-out {output.usage:q} > {log} 2>&1"


rule judge:
    input:
        labels=rules.label.output[0],
        textspans=rules.textspan.output[0],
        code=code(
            "judging.py",
            "llm/backends.py",
            "llm/http.py",
            "llm/errors.py",
            "llm/cache.py",
            "llm/usage.py",
        ),
    output:
        verdicts=f"{RESULTS}/{{model}}/verdicts.parquet",
        usage=f"{RESULTS}/{{model}}/llm_usage/judge.parquet",
    log:
        f"{LOGS}/{{model}}/judge.log",
    localrule: True
    conda:
        "../envs/llm.yaml"
    resources:
        llm=1,
    params:
        judges=json.dumps([llm_backend_spec(name) for name in config["llm"]["judges"]]),
        mode=config["llm"].get("judge_mode", "per_text"),
        prompt=prompt_hash("judge_text", "judge_head"),
        cache=f"{RESULTS}/llm_cache",
        concurrency=config["llm"].get("max_concurrency", 4),
        retry_invalid=config["llm"].get("retry_invalid", False),
        max_invalid=config["llm"].get("max_invalid_fraction", 0.1),
    message:
        "judge the texts of every head of {wildcards.model} ({params.mode})"
    shell:
        "python -m clipconcepts judge --labels {input.labels:q} --textspans {input.textspans:q}"
        " --judges {params.judges:q} --mode {params.mode} --cache-dir {params.cache:q}"
        " --max-concurrency {params.concurrency} --retry-invalid {params.retry_invalid}"
        " --max-invalid-fraction {params.max_invalid} --out {output.verdicts:q}"
        " --usage-out {output.usage:q} > {log} 2>&1"


# Not part of the run: `snakemake --configfile ... -f llm_estimate` prints (in its log) and
# writes the calls, tokens and cost labelling and judging every model will make, asking
# nothing (judging before labelling: labels assumed). It needs the models' TEXTSPAN texts.
rule llm_estimate:
    input:
        textspans=per_model(f"{RESULTS}/{{model}}/textspans.parquet"),
        code=code("llm/usage.py", "llm_prices.py", "labelling.py", "judging.py"),
    output:
        f"{RESULTS}/llm_estimate.parquet",
    log:
        f"{LOGS}/llm_estimate.log",
    # light (hashes requests, reads the cache): no cluster job for it
    localrule: True
    conda:
        "../envs/llm.yaml"
    params:
        models=" ".join(HEAD_MODELS),
        labeller=json.dumps(llm_backend_spec(config["llm"]["labeller"])),
        judges=json.dumps([llm_backend_spec(name) for name in config["llm"]["judges"]]),
        mode=config["llm"].get("judge_mode", "per_text"),
        prompt=prompt_hash("label", "judge_text", "judge_head"),
        cache=f"{RESULTS}/llm_cache",
        retry_invalid=config["llm"].get("retry_invalid", False),
        prices=llm_prices(),
        currency=config["llm"].get("currency", "USD"),
    message:
        "estimate the LLM calls, tokens and cost of labelling and judging (asks nothing)"
    shell:
        "python -m clipconcepts llm-estimate --textspans {input.textspans:q}"
        " --models {params.models} --labeller {params.labeller:q} --judges {params.judges:q}"
        " --mode {params.mode} --cache-dir {params.cache:q}"
        " --retry-invalid {params.retry_invalid} --prices {params.prices:q}"
        " --currency {params.currency:q} --out {output:q} > {log} 2>&1"


rule ccs:
    input:
        verdicts=rules.judge.output[0],
        labels=rules.label.output[0],
        textspans=rules.textspan.output[0],
        code=code("ccs.py"),
    output:
        ccs=f"{RESULTS}/{{model}}/ccs.parquet",
        at_k=f"{RESULTS}/{{model}}/ccs_at_k.parquet",
        groups=f"{RESULTS}/{{model}}/head_groups.parquet",
    log:
        f"{LOGS}/{{model}}/ccs.log",
    conda:
        "../envs/llm.yaml"
    message:
        "CCS and CCS@K of {wildcards.model}"
    shell:
        "python -m clipconcepts ccs --verdicts {input.verdicts:q} --labels {input.labels:q}"
        " --textspans {input.textspans:q} --ccs-out {output.ccs:q}"
        " --ccs-at-k-out {output.at_k:q} --groups-out {output.groups:q} > {log} 2>&1"


rule annotation_sheet:
    input:
        ccs=per_model(f"{RESULTS}/{{model}}/ccs.parquet"),
        code=code("agreement.py"),
    output:
        f"{RESULTS}/agreement/annotation_sheet.csv",
    log:
        f"{LOGS}/annotation_sheet.log",
    conda:
        "../envs/llm.yaml"
    params:
        models=" ".join(HEAD_MODELS),
        n=knob("agreement", "n", 50),
        seed=knob("agreement", "seed", 0),
    message:
        "sample text-label pairs for human annotation"
    shell:
        "python -m clipconcepts annotation-sheet --ccs {input.ccs:q} --models {params.models}"
        " --n {params.n} --seed {params.seed} --out {output:q} > {log} 2>&1"


rule agreement:
    input:
        sheet=knob("agreement", "sheet", None) or [],
        code=code("agreement.py"),
    output:
        f"{RESULTS}/agreement/agreement.parquet",
    log:
        f"{LOGS}/agreement.log",
    conda:
        "../envs/llm.yaml"
    message:
        "agreement between the human annotation and the LLM judge"
    shell:
        "python -m clipconcepts agreement --sheet {input.sheet:q} --out {output:q} > {log} 2>&1"
