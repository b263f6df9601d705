# Helpers of rules/extract.smk (extraction: the output files of one or several shards): included by the Snakefile after common.smk and
# before the rules, so that every rule file's input functions and sets are defined.


# Extraction writes one heads and one embeddings file per model or, with `extract.shards: N` > 1,
# one pair per image range: {model}/heads/part-0000.parquet ... (each shard its own job, wildcard
# `shard`). Readers take a model's files as one Parquet dataset, never a merged copy.
SHARDS = knob("extract", "shards", 1)
SHARD_IDS = [f"{i:04d}" for i in range(SHARDS)]


def extract_output(kind, suffix=".parquet", root=RESULTS):
    """Output (or log) pattern of `extract` for kind = heads | embeddings | extract (the log)."""
    if SHARDS == 1:
        return f"{root}/{{model}}/{kind}{suffix}"
    return f"{root}/{{model}}/{kind}/part-{{shard}}{suffix}"


def model_extract_files(kind, model):
    """A model's `kind` files (heads | embeddings): the one file, or its shards in order."""
    return [
        extract_output(kind).format(model=model, shard=shard) for shard in SHARD_IDS
    ]


def extract_files(kind):
    """Input function: the `kind` files of the job's model."""
    return lambda wildcards: model_extract_files(kind, wildcards.model)
