"""The extraction stage's steps: per-head contributions on the probe set, the text bank, its
embedding by the model, and TEXTSPAN."""

from __future__ import annotations

import logging

from clipconcepts.llm.factory import backend_from_spec, open_cache
from clipconcepts.steps import (
    add_llm_policy_args,
    add_llm_usage_args,
    add_model_args,
    json_arg,
    load_model,
)

log = logging.getLogger("clipconcepts")


# ---------------------------------------------------------------------------- extract
def _extract_args(p):
    add_model_args(p)
    p.add_argument("--probe-kind", required=True)
    p.add_argument("--probe-root", required=True)
    p.add_argument("--subset", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, nargs="+", required=True)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail")
    p.add_argument("--part-size", type=int, default=10_000)
    p.add_argument("--shard", type=int, default=0, help="this job's image range (0-based)")
    p.add_argument("--shards", type=int, default=1, help="image ranges the probe set is split in")
    p.add_argument("--heads-out", required=True)
    p.add_argument("--embeddings-out", required=True)


def _extract(args):
    from clipconcepts.data import build_image_records
    from clipconcepts.extract import extract_heads, shard_records

    clip = load_model(args)
    records = build_image_records(args.probe_kind, args.probe_root).subset(
        args.subset or None, args.seed
    )
    records = shard_records(records, args.shard, args.shards)
    log.info("%r on %d probe images from %s", clip, len(records), args.probe_root)
    if args.shards > 1:
        log.info("shard %d of %d (0-based)", args.shard, args.shards)
    extract_heads(
        clip,
        records,
        args.layers,
        args.heads_out,
        args.embeddings_out,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        on_bad_image=args.on_bad_image,
        part_size=args.part_size,
    )


def _textbank_args(p):
    p.add_argument(
        "--source",
        choices=["default", "file", "generate", "conceptworld", "authors"],
        required=True,
    )
    p.add_argument(
        "--path", default=None, help="source=file, authors (downloaded): one description per line"
    )
    p.add_argument("--url", default=None, help="source=authors: where the file came from")
    p.add_argument("--sha256", default=None, help="source=authors: the file's SHA-256")
    p.add_argument("--generate-n", type=int, default=3000)
    p.add_argument("--generate-batch", type=int, default=50)
    p.add_argument(
        "--backend", type=json_arg, default=None, help="source=generate: LLM spec (JSON)"
    )
    p.add_argument("--cache-dir", default=None)
    add_llm_policy_args(p)
    add_llm_usage_args(p)  # source=generate: the usage table, the dry run
    p.add_argument("--out", required=True)


def _textbank(args):
    from clipconcepts import textbank

    if args.dry_run and args.source != "generate":
        print(f"LLM estimate (dry run): text bank source {args.source} asks no LLM", flush=True)
        return
    path = None  # the file a bank is read from (its digest and lines go to the provenance)
    if args.source == "default":
        entries = textbank.default_textbank()
    elif args.source == "file":
        if not args.path:
            raise ValueError("textbank.source=file needs the config key textbank.path")
        path = _checked_file(args.path, args.sha256) if args.sha256 else args.path
        entries = textbank.read_textbank_file(path)
    elif args.source == "authors":
        if not args.path:
            raise ValueError(
                "textbank.source=authors needs the downloaded file (rule textbank_download)"
            )
        path = _checked_file(args.path, args.sha256)
        entries = textbank.read_textbank_file(path)
    elif args.source == "conceptworld":
        from clipconcepts.conceptworld.textbank import conceptworld_textbank

        entries = [textbank.TextBankEntry(t, f) for t, f in conceptworld_textbank()]
    else:
        from clipconcepts.llm.bank import generate_bank

        if args.backend is None or not args.cache_dir:
            raise ValueError("textbank.source=generate needs an LLM backend and a cache dir")
        backend = backend_from_spec(args.backend)
        if args.dry_run:
            _textbank_estimate(args, backend)
            return
        with open_cache(args.cache_dir, args.retry_invalid) as cache:
            texts = generate_bank(
                backend,
                cache,
                args.generate_n,
                args.generate_batch,
                max_invalid_fraction=args.max_invalid_fraction,
            )
        if args.usage_out:
            from clipconcepts.llm.bank import bank_prompts
            from clipconcepts.llm.usage import write_usage

            write_usage(args.usage_out, "textbank", [backend], cache.stats, bank_prompts())
        entries = [textbank.TextBankEntry(t, None) for t in texts]
    provenance = textbank.bank_provenance(entries, args.source, path=path, url=args.url or None)
    textbank.write_textbank(entries, args.out, provenance)
    log.info("text bank (%s): %d descriptions -> %s", args.source, len(entries), args.out)
    log.info("provenance: %s", provenance)


def _checked_file(path, sha256):
    """A bank file whose digest is `textbank.sha256` (the downloaded authors' file is checked
    again here; a `source: file` bank when the key is set)."""
    from clipconcepts.textbank_download import SHA256_KEY, check_sha256, file_sha256

    expected, got = check_sha256(sha256), file_sha256(path)
    if got != expected:
        raise ValueError(
            f"{path}: SHA-256 {got} differs from the config key {SHA256_KEY} ({expected}); "
            "fix the key, or replace the file (source authors: delete it, and the next run "
            "downloads it again)"
        )
    return path


def _textbank_download_args(p):
    p.add_argument("--url", required=True, help="textbank.url")
    p.add_argument("--sha256", required=True, help="textbank.sha256: the file's SHA-256")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds without an answer")
    p.add_argument("--out", required=True)


def _textbank_download(args):
    from clipconcepts.textbank_download import download_checked

    kept = download_checked(args.url, args.sha256, args.out, timeout=args.timeout)
    log.info("text bank file: %d bytes, SHA-256 %s -> %s", kept.n_bytes, kept.sha256, kept.path)


def _textbank_estimate(args, backend) -> None:
    """`textbank --source generate --dry-run`: the calls generating the bank would make."""
    from clipconcepts.llm.bank import bank_requests
    from clipconcepts.llm.factory import read_cache
    from clipconcepts.llm.usage import estimate_requests, print_estimate

    requests = bank_requests(args.generate_n, args.generate_batch)
    cache = read_cache(args.cache_dir, args.retry_invalid)
    estimate = estimate_requests("textbank", backend, requests, cache)
    print_estimate([("", estimate)], args.prices, args.currency)


def _embed_texts_args(p):
    add_model_args(p)
    p.add_argument("--textbank", required=True)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--out", required=True)


def _embed_texts(args):
    import pyarrow as pa

    from clipconcepts.io import fixed_list, write_table
    from clipconcepts.textbank import read_textbank_parquet

    clip = load_model(args)
    entries = read_textbank_parquet(args.textbank)
    emb = clip.encode_text([e.text for e in entries], normalize=True, batch_size=args.batch_size)
    table = pa.table(
        {
            "text_id": pa.array(range(len(entries)), pa.int32()),
            "text": [e.text for e in entries],
            "family": pa.array([e.family for e in entries], pa.string()),
            "embedding": fixed_list(emb.cpu().numpy()),
        }
    )
    write_table(table, args.out)
    log.info("embedded %d texts with %r -> %s", len(entries), clip, args.out)


def _textspan_args(p):
    p.add_argument("--heads", nargs="+", required=True, help="heads file, or every shard")
    p.add_argument("--embeddings", nargs="+", default=None, help="embeddings file or shards")
    p.add_argument("--texts", required=True)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--rank", type=int, default=80)
    p.add_argument(
        "--normalize",
        choices=["embedding_norm", "none"],
        default="embedding_norm",
        help="divide each image's contributions by its embedding norm (the reference's), or not",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", required=True)


def _textspan(args):
    from clipconcepts.textspan_step import run_textspan

    run_textspan(
        args.heads,
        args.embeddings,
        args.texts,
        args.out,
        iters=args.iters,
        rank=args.rank,
        normalize=args.normalize,
        device=args.device,
    )


# step name -> (help, add_args(parser), run(args))
STEPS = {
    "extract": (
        "per-head direct contributions of the CLS token on the probe set",
        _extract_args,
        _extract,
    ),
    "textbank": (
        "resolve the text bank (default, file, the authors', LLM-generated)",
        _textbank_args,
        _textbank,
    ),
    "textbank-download": (
        "download a text-bank file (textbank.source: authors), kept only if its SHA-256 matches",
        _textbank_download_args,
        _textbank_download,
    ),
    "embed-texts": (
        "embed the text bank (no template, L2-normalised)",
        _embed_texts_args,
        _embed_texts,
    ),
    "textspan": ("TEXTSPAN: the texts that span each head's output", _textspan_args, _textspan),
}
