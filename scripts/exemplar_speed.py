#!/usr/bin/env python
"""Speed and memory of the exemplar method: seconds per query and peak memory for N supports at S².

The supports are stored once (their features cached, as ``fewcolor adapt exemplar`` does); then each
query is colorized through the pipeline (``Colorizer.colorize``: resize, match, filter, merge with the
full-resolution L) and timed. Prints the median seconds per query, the stored supports' bytes (what
the checkpoint holds), and the process's peak resident memory (``ru_maxrss``: backbone weights, the
supports and the largest per-query tensors included).

    OMP_NUM_THREADS=2 python scripts/exemplar_speed.py IMAGES --supports 5 --size 256
    OMP_NUM_THREADS=2 python scripts/exemplar_speed.py IMAGES --supports 10 --size 512 --queries 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.transforms import Resize
from fewcolor.io.image import list_images, read_rgb
from fewcolor.methods.registry import build_method
from fewcolor.pipeline import Colorizer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("images", type=Path, help="a folder of colour images (supports first, then queries)")
    ap.add_argument("--supports", type=int, default=5, help="number of supports (default 5)")
    ap.add_argument("--size", type=int, default=256, help="working resolution: images are S×S (default 256)")
    ap.add_argument("--queries", type=int, default=5, help="timed queries (default 5, after one warm-up)")
    ap.add_argument("--preset", default=None, help="exemplar config preset (default: paper)")
    ap.add_argument("--fallback", default=None,
                    help="the exemplar's fallback where no match is trusted (default: the method's default)")
    args = ap.parse_args(argv)

    paths = list_images(args.images)
    if len(paths) < args.supports + args.queries + 1:
        print(f"error: {args.images} holds {len(paths)} images; need {args.supports + args.queries + 1}",
              file=sys.stderr)
        return 2
    rels = [p.relative_to(args.images).as_posix() for p in paths]
    support = ImageFolderDataset(args.images, paths=rels[: args.supports], transform=Resize((args.size, args.size)),
                                 skip_grey=False)
    overrides: dict[str, object] = {"image_size": args.size}
    if args.fallback is not None:
        overrides["fallback"] = args.fallback
    method = build_method("exemplar", args.preset, overrides)
    t0 = time.perf_counter()
    method.adapt(support, steps=0)
    adapt_s = time.perf_counter() - t0
    stored = sum(b.numel() * b.element_size() for b in method.buffers())
    colorizer = Colorizer(method, device="cpu", size=args.size)
    queries = []
    for p in paths[args.supports: args.supports + args.queries + 1]:
        rgb = torch.nn.functional.interpolate(read_rgb(p)[None], size=(args.size, args.size), mode="bilinear",
                                              antialias=True, align_corners=False)
        queries.append(grey_rgb_from_l(rgb_to_l(rgb))[0])
    times = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        colorizer.colorize(q)
        if i > 0:  # the first query builds the backbone
            times.append(time.perf_counter() - t0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exemplar {args.size}², fallback {method.config.fallback}: {args.supports} supports stored in "
          f"{adapt_s:.2f} s ({stored / 2**20:.1f} MiB of buffers); {len(times)} queries: median "
          f"{statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}); torch threads {torch.get_num_threads()}; "
          f"peak RSS {peak_mib:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
