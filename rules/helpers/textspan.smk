# Helpers of rules/textspan.smk (the text bank's knobs): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


def textbank_params():
    bank = config["textbank"]
    backend = (
        llm_backend_spec(config["llm"]["labeller"])
        if bank["source"] == "generate"
        else None
    )
    # the LLM knobs only matter when generating: other sources do not rerun on them
    llm = config["llm"] if backend else {}
    return {
        "source": bank["source"],
        "path": bank.get("path") or "",
        "n": bank.get("generate_n", 3000),
        "batch": bank.get("generate_batch", 50),
        "backend": json.dumps(backend) if backend else "",
        "retry_invalid": llm.get("retry_invalid", False),
        "max_invalid": llm.get("max_invalid_fraction", 0.1),
    }
