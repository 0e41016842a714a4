"""What re-centring buys the float32 Gram expansion on a batch far from the origin.

    python -m benchmarks.recentring [--offset 1e4] [--n 1024] [--d 64]

Prints one line: the largest error of the float32 euclidean distances against float64 distances of the same
float32 batch (standard normal plus `offset` in every coordinate), for the Gram expansion of the batch as
given, of the re-centred batch, and of inhouse.distances.pairwise_distances (re-centred, with the near
pairs recomputed from differences).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from inhouse.distances import centred, pairwise_distances


def gram_distances(x: torch.Tensor) -> torch.Tensor:
    sq = (x * x).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * x @ x.T).clamp_min(0.0).sqrt()


def errors(offset: float, n: int, d: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x = torch.tensor((rng.standard_normal((n, d)) + offset).astype(np.float32))
    exact = torch.cdist(x.double(), x.double())
    computed = {
        "as given": gram_distances(x),
        "re-centred": gram_distances(centred(x)),
        "inhouse": pairwise_distances(x, "euclidean"),
    }
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    return {name: (dist.double() - exact)[off_diagonal].abs().max().item() for name, dist in computed.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recentring", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offset", type=float, default=1e4)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--d", type=int, default=64)
    args = parser.parse_args(argv)
    found = errors(args.offset, args.n, args.d)
    print(f"float32 euclidean, N={args.n} D={args.d}, offset {args.offset:g} (typical d ~ {np.sqrt(2 * args.d):.3g}): "
          "max |d - d_float64| " + ", ".join(f"{name} {error:.3g}" for name, error in found.items()))


if __name__ == "__main__":
    main()
