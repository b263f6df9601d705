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
    authors = bank["source"] == "authors"
    return {
        "source": bank["source"],
        # the file read (textbank_files(): textbank.path, or the authors' file downloaded)
        "path": lambda wildcards, input: input.files[0] if input.files else "",
        "url": textbank_url() if authors else "",
        "sha256": bank.get("sha256") or "",
        "n": bank.get("generate_n", 3000),
        "batch": bank.get("generate_batch", 50),
        "backend": json.dumps(backend) if backend else "",
        "retry_invalid": llm.get("retry_invalid", False),
        "max_invalid": llm.get("max_invalid_fraction", 0.1),
    }


# textbank.source: authors (the TEXTSPAN authors' 3,498 descriptions): the local rule
# textbank_download fetches the file on the machine that runs Snakemake, checks
# textbank.sha256 and keeps it here, under the run's results.
TEXTBANK_AUTHORS_FILE = f"{RESULTS}/textbank/authors.txt"


def textbank_url():
    """textbank.url, by default the authors' file pinned to a commit (textbank_download.py)."""
    default = load_light_module("textbank_download.py").AUTHORS_URL
    return config["textbank"].get("url") or default


def textbank_files():
    """The file a text bank is read from: textbank.path (file) or the downloaded one (authors)."""
    source = config["textbank"]["source"]
    if source == "file":
        return [config["textbank"]["path"]]
    return [TEXTBANK_AUTHORS_FILE] if source == "authors" else []
