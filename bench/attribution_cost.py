"""Benchmark: attribution patching for every head vs the true ablation of the last 4 layers' heads.

On the same in-memory images, in one process: AtP is `attribution_patching` (one forward and one
backward pass for all heads of all layers, zero baseline); the reference is what the workflow's
true effect costs, zero-ablating each head of the last 4 layers through the whole model
(`HeadAwareCLIP.encode_image_multi` with one single-head prune set per head plus the clean one,
the layers before the first ablated one run once). Both are timed interleaved, median of a few
runs, with a plain forward pass as the unit. Prints the ratios and ends with
`ratio R goal G`, R = AtP time / ablation time, G = 1/10 (the goal for ViT-B-sized towers).
With the shared prefix the ablation costs about 1 + k * 4 / L forward passes for k heads of the
last 4 of L layers (17 for ViT-B), and AtP at least a forward plus a backward of about a
forward, so R cannot fall much below 2/17 = 0.12 there; the ratio to an ablation without the
shared prefix (1 + k full passes) is printed too.
The mean baseline (one more forward pass for the means, here over the same images) is printed
beside it.

Default: a random-init ViT-B-32 at 224 px, 8 images in one batch, median of 3 runs (about a
minute on 2 CPU cores); `--device cuda` for a GPU.
"""

from __future__ import annotations

import statistics

import torch

from benchlib import model_parser, timed
from clipconcepts.attribution.ablation import scope_heads
from clipconcepts.attribution.patching import attribution_patching, head_means
from clipconcepts.models import load_clip


def main() -> None:
    parser = model_parser(__doc__.splitlines()[0], images=8, classes=100)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    clip = load_clip(args.arch, None, device=args.device, precision=args.precision)
    clip.model.requires_grad_(False)
    size = clip.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 3, size, size, generator=gen).to(clip.device)
    labels = torch.randint(0, args.classes, (args.images,), generator=gen).to(clip.device)
    text = torch.nn.functional.normalize(
        torch.randn(args.classes, clip.embed_dim, generator=gen), dim=-1
    ).to(clip.device)
    heads = scope_heads(clip.n_layers, clip.n_heads, "last4")
    sets = [[]] + [[h] for h in heads]
    print(
        f"{clip!r}; {args.images} images of {size}px in one batch; "
        f"threads={torch.get_num_threads()}"
    )
    print(
        f"AtP: {clip.n_layers * clip.n_heads} heads (all layers); "
        f"ablation: {len(heads)} heads (last 4 layers) + the clean run"
    )

    def forward():
        with torch.no_grad():
            clip.visual(images)

    def atp():
        attribution_patching(clip, images, text, labels)

    def atp_mean():
        means = head_means(clip, [images])
        attribution_patching(clip, images, text, labels, means)

    def ablation():
        clip.encode_image_multi(images, sets, sets_per_pass=args.sets_per_pass)

    # warm-up, and a check that AtP's clean y is the ablation run's clean y
    got = attribution_patching(clip, images, text, labels).y
    clean = clip.encode_image_multi(images, [[]])[0]
    want = (torch.nn.functional.normalize(clean.float(), dim=-1) * text[labels]).sum(-1)
    assert torch.allclose(got, want, atol=1e-4), "AtP's forward differs from open_clip's"
    atp_mean()
    ablation()

    runs: dict[str, list[float]] = {"forward": [], "atp": [], "atp_mean": [], "ablation": []}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits all alike
        for name, fn in (("forward", forward), ("atp", atp), ("atp_mean", atp_mean)):
            runs[name].append(timed(fn))
        runs["ablation"].append(timed(ablation))
    med = {name: statistics.median(times) for name, times in runs.items()}
    for name, times in runs.items():
        print(
            f"{name:>9}: {med[name]:.3f} s = {med[name] / med['forward']:.2f} forward passes "
            f"(runs {', '.join(f'{t:.3f}' for t in times)})"
        )
    ideal = 1 + len(heads) * 4 / clip.n_layers
    print(
        f"ablation ideal 1 + {len(heads)} x 4/{clip.n_layers} = {ideal:.2f} forward passes; "
        f"AtP's floor (one forward, one backward of about a forward) 2/{ideal:.2f} = "
        f"{2 / ideal:.3f}"
    )
    naive = (1 + len(heads)) * med["forward"]
    print(
        f"vs ablation without the shared prefix (1 + {len(heads)} full forward passes, "
        f"estimated from the forward time): ratio {med['atp'] / naive:.3f}"
    )
    print(f"mean baseline: ratio {med['atp_mean'] / med['ablation']:.3f}")
    print(f"ratio {med['atp'] / med['ablation']:.3f} goal {1 / 10:.3f}")


if __name__ == "__main__":
    main()
