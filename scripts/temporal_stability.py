#!/usr/bin/env python
"""Temporal stability of clip colorization: one coloured keyframe, the other frames coloured from grey.

For a clip (video, animated GIF or folder of frames) whose frames are in colour (the truth), frame
``--keyframe`` is given in colour and every frame is coloured from its lightness alone by

* ``exemplar``: the exemplar method, each frame also matched to the previous coloured frame;
* ``exemplar per-frame``: the same model, every frame on its own;
* every ``--compare NAME=CHECKPOINT`` (colours frame by frame through the pipeline);

and the script prints, for each and for the truth, the mean ab change between consecutive frames on
static pixels (``fewcolor.metrics.temporal.temporal_ab_change``, the truth's lightness decides which
pixels are static) and the mean ΔE00 to the truth over all frames but the keyframe.

    python scripts/temporal_stability.py /tmp/package/.../animated/25.gif --size 96
    python scripts/temporal_stability.py clip.mp4 --model runs/ex.safetensors --compare cgan=runs/cgan.safetensors \\
        --out clips/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from fewcolor.color.lab import grey_rgb_from_l, rgb_to_l
from fewcolor.io.grid import image_grid
from fewcolor.io.image import write_rgb
from fewcolor.io.video import VideoError, read_clip, write_clip
from fewcolor.methods.registry import build_method, load_method
from fewcolor.metrics.color import mean_delta_e2000
from fewcolor.metrics.temporal import STATIC_L, temporal_ab_change
from fewcolor.pipeline import Colorizer
from fewcolor.video import colorize_clip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clip", type=Path, help="a colour clip: video file, animated GIF or folder of frames")
    ap.add_argument("--keyframe", type=int, default=0, help="index of the frame given in colour (default 0)")
    ap.add_argument("--model", type=Path, default=None,
                    help="an exemplar checkpoint (default: a fresh exemplar model with the default config)")
    ap.add_argument("--compare", action="append", default=[], metavar="NAME=CHECKPOINT",
                    help="another model coloured frame by frame (repeatable)")
    ap.add_argument("--size", type=int, default=None, help="working resolution (longer side)")
    ap.add_argument("--frames", type=int, default=None, help="use only the first N frames")
    ap.add_argument("--static-l", type=float, default=STATIC_L,
                    help=f"a pixel is static when its L changes by less than this (default {STATIC_L})")
    ap.add_argument("--out", type=Path, default=None, help="write every colouring as OUT/NAME.gif")
    ap.add_argument("--strip", type=Path, default=None,
                    help="write a PNG of --strip-frames evenly spaced frames: one row for the grey input, then one "
                         "per colouring in the order printed (the truth last)")
    ap.add_argument("--strip-frames", type=int, default=8, help="frames per row of --strip (default 8)")
    args = ap.parse_args(argv)

    try:
        clip = read_clip(args.clip, max_frames=args.frames)
    except VideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    truth = clip.frames
    if not 0 <= args.keyframe < len(truth):
        print(f"error: --keyframe {args.keyframe} is outside the clip's {len(truth)} frames", file=sys.stderr)
        return 2
    grey = [grey_rgb_from_l(rgb_to_l(f[None]))[0] for f in truth]
    model = load_method(args.model) if args.model else build_method("exemplar")
    colorizer = Colorizer(model, device="cpu", size=args.size)
    keyframes = [truth[args.keyframe]]
    runs = {
        "exemplar": colorize_clip(colorizer, grey, keyframes, propagate=True),
        "exemplar per-frame": colorize_clip(colorizer, grey, keyframes, propagate=False),
    }
    for item in args.compare:
        name, _, path = item.partition("=")
        other = Colorizer.from_checkpoint(path, device="cpu", size=args.size)
        runs[name] = colorize_clip(other, grey)
    runs["truth"] = truth

    others = [i for i in range(len(truth)) if i != args.keyframe]
    print(f"{args.clip}: {len(truth)} frames of {truth[0].shape[-1]}×{truth[0].shape[-2]}, keyframe {args.keyframe}")
    print(f"{'colouring':<22} {'|Δab| static':>13} {'static px':>10} {'ΔE00 vs truth':>14}")
    for name, frames in runs.items():
        change, share = temporal_ab_change(frames, args.static_l, reference_l=truth)
        de = mean_delta_e2000(torch.stack([frames[i] for i in others]), torch.stack([truth[i] for i in others]))
        print(f"{name:<22} {change:>13.3f} {share:>10.1%} {float(de.mean()):>14.3f}")
        if args.out is not None:
            write_clip(args.out / f"{name.replace(' ', '_')}.gif", frames, clip.fps)
    if args.strip is not None:
        count = max(1, min(args.strip_frames, len(truth)))
        picks = [round(i * (len(truth) - 1) / max(1, count - 1)) for i in range(count)]
        rows = [grey, *runs.values()]
        args.strip.parent.mkdir(parents=True, exist_ok=True)
        write_rgb(args.strip, image_grid([frames[i] for frames in rows for i in picks], ncols=count))
        print(f"strip: {args.strip} (rows: grey, {', '.join(runs)}; frames {', '.join(map(str, picks))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
