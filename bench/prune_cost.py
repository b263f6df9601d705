"""Benchmark: S prune strategies with a shared prefix vs one unpruned zero-shot evaluation.

On the same in-memory images, in one process: the baseline is a plain unpruned evaluation
(open_clip's own `visual` forward per batch, normalise, logits, top-k); the shared run is
`evaluate_prune_sets` over S realistic prune sets (original, high, low, 3 random, 2 concept:
the CCS authors' published ViT-B-32 lists, with the random sets drawn by `resolve_prune_sets`),
where the layers before the first pruned layer run once per batch. Prints the naive ratio S
(every strategy a separate full pass) and ends with `ratio R goal G`, where R = shared time /
unpruned time and G = 1 + S*k/L + 0.3 for k pruned layers of L (k = L - first pruned layer).

Default: a random-init ViT-B-32 at 224 px, 16 images in one batch, median of 3 runs
(about a minute on 2 CPU cores); `--device cuda` for a GPU.
"""

from __future__ import annotations

import statistics

import polars as pl
import torch

from benchlib import model_parser, timed
from clipconcepts.evaluate import (
    evaluate_prune_sets,
    published_head_lists,
    resolve_prune_sets,
    topk_correct,
)
from clipconcepts.evaluate.strategies import parse_head
from clipconcepts.models import load_clip


def prune_sets(n_layers: int, n_heads: int):
    """original, high, low, random x3, concept x2 over the last 4 layers (S = 8)."""
    layers = list(range(n_layers - 4, n_layers))
    lists = published_head_lists("ViT-B-32", "openai")  # 12 layers x 12 heads
    shift = n_layers - 12

    def heads(names):
        return [(layer + shift, head % n_heads) for layer, head in map(parse_head, names)]

    groups = [("high", *h) for h in heads(lists["high"])]
    groups += [("low", *h) for h in heads(lists["low"])]
    labels = [(*h, "locations") for h in heads(lists["locations"])]
    labels += [(*h, "objects") for h in heads(lists["objects"])]
    return resolve_prune_sets(
        ["original", "high", "low", "random", "concept"],
        pl.DataFrame(groups, schema=["group", "layer", "head"], orient="row"),
        pl.DataFrame(labels, schema=["layer", "head", "label"], orient="row"),
        layers=layers,
        n_heads=n_heads,
        random_seeds=[0, 1, 2],
        concept_groups={"locations": ["location"], "objects": ["object"]},
        concept_pairs=[("locations", "objects")],
    )


@torch.no_grad()
def unpruned_evaluation(clip, batches, classifier) -> torch.Tensor:
    """The plain zero-shot evaluation every strategy would otherwise repeat."""
    correct = torch.zeros(2, dtype=torch.long, device=clip.device)
    for images, labels in batches:
        emb = clip.visual(images.to(clip.device)).float()
        emb = emb / emb.norm(dim=-1, keepdim=True)
        correct += topk_correct(emb @ classifier.T, labels.to(clip.device), ks=(1, 5))
    return correct.cpu()


def main() -> None:
    parser = model_parser(__doc__.splitlines()[0], images=16, batch_size=16, classes=100)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    clip = load_clip(args.arch, None, device=args.device, precision=args.precision)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, size, size, generator=gen)
    labels = torch.randint(0, args.classes, (args.images,), generator=gen)
    batches = [
        (images[i : i + args.batch_size], labels[i : i + args.batch_size])
        for i in range(0, args.images, args.batch_size)
    ]
    classifier = torch.nn.functional.normalize(
        torch.randn(args.classes, clip.embed_dim, generator=gen), dim=-1
    ).to(clip.device)
    sets = prune_sets(clip.n_layers, clip.n_heads)
    first = min(layer for s in sets for layer, _ in s.heads)
    S, L, k = len(sets), clip.n_layers, clip.n_layers - first
    print(
        f"{clip!r}; {args.images} images of {size}px in batches of {args.batch_size}; "
        f"threads={torch.get_num_threads()}"
    )
    print("prune sets: " + ", ".join(f"{s.strategy}/{s.seed}({s.n_heads})" for s in sets))

    def shared():
        return evaluate_prune_sets(
            clip, batches, classifier, sets, sets_per_pass=args.sets_per_pass, progress=False
        )

    # warm-up, and a check that the shared run's 'original' row is the plain evaluation
    base_counts = unpruned_evaluation(clip, batches, classifier)
    result = shared()
    original = result.filter(pl.col("strategy") == "original")
    assert abs(original["top1"][0] - 100 * base_counts[0].item() / args.images) < 1e-9, (
        "shared 'original' accuracy differs from the plain evaluation"
    )

    base_times, shared_times = [], []
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both
        base_times.append(timed(lambda: unpruned_evaluation(clip, batches, classifier)))
        shared_times.append(timed(shared))
    base, multi = statistics.median(base_times), statistics.median(shared_times)
    ratio = multi / base
    goal = 1 + S * k / L + 0.3
    print(f"unpruned evaluation: {base:.3f} s (runs {', '.join(f'{t:.3f}' for t in base_times)})")
    print(
        f"{S} strategies, shared prefix: {multi:.3f} s "
        f"(runs {', '.join(f'{t:.3f}' for t in shared_times)})"
    )
    print(
        f"S={S} k={k} L={L}: naive ratio (S full passes) {S}, ideal 1 + S*k/L = {1 + S * k / L:.2f}"
    )
    print(f"ratio {ratio:.2f} goal {goal:.2f}")


if __name__ == "__main__":
    main()
