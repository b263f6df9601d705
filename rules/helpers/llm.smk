# Helpers of rules/llm.smk (what the LLM steps spend: their usage tables, the price table):
# included by the Snakefile after common.smk and before the rules, so that every rule file's
# input functions and sets are defined.


def textbank_usage_output():
    """The text bank's `usage` output (its LLM usage table): only when an LLM generates it."""
    if config["textbank"]["source"] != "generate":
        return {}
    return {"usage": f"{RESULTS}/llm_usage/textbank.parquet"}


def descriptor_usage_output():
    """A mutual set's descriptor bank's `usage` output: only when an LLM writes the bank."""
    if (knob("mutual", "descriptors", {}) or {}).get("source", "llm") != "llm":
        return {}
    return {"usage": f"{RESULTS}/llm_usage/descriptors_{{mutual_set}}.parquet"}


def llm_usage_files():
    """Every LLM usage table of the run (the report's LLM usage section)."""
    files = per_model(f"{RESULTS}/{{model}}/llm_usage/label.parquet")
    files += per_model(f"{RESULTS}/{{model}}/llm_usage/judge.parquet")
    if HEAD_MODELS:
        files += list(textbank_usage_output().values())
    if mutual_models():
        files += expand(
            list(descriptor_usage_output().values()), mutual_set=MUTUAL_SETS
        )
    return files


def llm_prices():
    """`llm.prices` as JSON (a price change reruns only the report and the estimate)."""
    prices = config["llm"].get("prices") or {}
    unknown = sorted(set(prices) - set(config["llm"]["backends"]))
    if unknown:
        raise ValueError(
            f"config key llm.prices names {', '.join(unknown)}, not in llm.backends "
            f"({', '.join(config['llm']['backends'])})"
        )
    return json.dumps(prices, sort_keys=True)
