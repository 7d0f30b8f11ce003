"""Split a safetensors file into pieces under a size limit, or join such pieces back into one file.

    python scripts/join_safetensors.py --split run/model.safetensors -o OUT --max-mib 15   # OUT/model-1.safetensors, …
    python scripts/join_safetensors.py OUT/model-*.safetensors -o model.safetensors         # the same file's tensors

The device tool brings files back only under 16 MiB each; the base model is 27 MiB. Every piece keeps
the source's metadata (the run's config, which fewcolor needs to load the model), and the join refuses
pieces whose metadata differ or that name a tensor twice. Tensors are packed whole, in the source's order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def split(source: Path, out: Path, max_bytes: int) -> list[Path]:
    """Write ``out/<stem>-N.safetensors`` pieces of at most ``max_bytes`` of tensor data each."""
    with safe_open(str(source), "pt") as f:
        metadata = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no items()
    pieces: list[dict[str, torch.Tensor]] = [{}]
    used = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        if size > max_bytes:
            raise SystemExit(f"error: {source}: tensor {name} alone is {size / 2**20:.1f} MiB, over --max-mib")
        if used + size > max_bytes and pieces[-1]:
            pieces.append({})
            used = 0
        pieces[-1][name] = tensor.contiguous()
        used += size
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, piece in enumerate(pieces, 1):
        path = out / f"{source.stem}-{i}.safetensors"
        save_file(piece, str(path), metadata=metadata)
        paths.append(path)
    return paths


def join(pieces: list[Path], out: Path) -> int:
    """Write the pieces' tensors into ``out``; returns the tensor count."""
    tensors: dict[str, torch.Tensor] = {}
    metadata: dict[str, str] | None = None
    for piece in pieces:
        with safe_open(str(piece), "pt") as f:
            meta = f.metadata() or {}
            if metadata is not None and meta != metadata:
                raise SystemExit(f"error: {piece}: its metadata differ from {pieces[0]}'s; pieces of one file only")
            metadata = meta
            for name in f.keys():  # noqa: SIM118 - safe_open has no items()
                if name in tensors:
                    raise SystemExit(f"error: {piece}: tensor {name} is in an earlier piece too")
                tensors[name] = f.get_tensor(name)
    save_file(tensors, str(out), metadata=metadata)
    return len(tensors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pieces", type=Path, nargs="*", help="pieces to join (in any order)")
    parser.add_argument("--split", type=Path, metavar="FILE", help="split FILE instead of joining")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder of the pieces (--split) or joined file")
    parser.add_argument("--max-mib", type=float, default=15.0, help="largest piece when splitting (MiB)")
    args = parser.parse_args()
    if args.split is not None:
        if args.pieces:
            parser.error("give --split FILE or pieces to join, not both")
        if not args.split.is_file():
            parser.error(f"--split {args.split}: no such file")
        written = split(args.split, args.out, int(args.max_mib * 2**20))
        print(f"{args.split} -> {len(written)} pieces: {' '.join(str(p) for p in written)}")
        return 0
    if not args.pieces:
        parser.error("give the pieces to join, or --split FILE")
    if args.out.exists():
        parser.error(f"{args.out} exists; give a new file name (outputs never overwrite)")
    missing = [p for p in args.pieces if not p.is_file()]
    if missing:
        parser.error(f"no such piece: {missing[0]}")
    count = join(sorted(args.pieces), args.out)
    print(f"{count} tensors from {len(args.pieces)} pieces -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
