"""Cost of the decomposition relative to a plain forward pass, same batch, same process.

Prints, as its last line, `ratio R goal 1.3` where R = time(head contributions of the last 4
layers + the embedding term, one call) / time(plain `encode_image`). A random-init open_clip
model is used (weights do not change the cost); ViT-B-32 by default.
"""

from __future__ import annotations

import argparse
import time

import torch

from clipconcepts.models import load_clip


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    clip = load_clip(args.arch, None, device=args.device)
    size = clip.visual.image_size
    images = torch.randn(args.batch, 3, *size, device=args.device)
    layers = [-4, -3, -2, -1]

    with torch.no_grad():
        plain = lambda: clip.encode_image(images)  # noqa: E731
        decomposed = lambda: clip.decompose(images, layers, with_embedding=True)  # noqa: E731
        plain(), decomposed()  # warm-up
        t_plain = best_of(plain, args.repeats)
        t_decomposed = best_of(decomposed, args.repeats)
    print(
        f"{args.arch} batch {args.batch} on {args.device}: {len(layers)} layers x {clip.n_heads} heads"
    )
    print(f"plain encode_image       {t_plain * 1e3:9.1f} ms")
    print(f"head contributions + emb {t_decomposed * 1e3:9.1f} ms")
    print(f"ratio {t_decomposed / t_plain:.2f} goal 1.3")


if __name__ == "__main__":
    main()
