"""Cluster quality vs the descriptor's input size (issue #18): the ARI of each size's clustering against the
clustering at 224 px, the K-means seed-to-seed ARI at 224 px (the noise floor), the ARI against the class
folders, and the descriptor rate. Feeds the "Set-up passes" table of docs/PERFORMANCE.md.

    PYTHONPATH=src python scripts/cluster_input_size.py --images 300 --sizes 224,160,128,112,96,80,64

Descriptors are kept per size in ``--work`` so the sizes can be computed in separate, short runs; the table
is printed from whatever sizes are there (224 is the reference and must be among them).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import mean

import torch
from sklearn.metrics import adjusted_rand_score

from fewcolor.backbones.clustering import build_extractor, dataset_descriptors, int8_descriptor, resolve_backbone
from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.tasks import fit_tasks
from fewcolor.io.image import list_images

REFERENCE = 224


def sample_dataset(root: Path, n: int, seed: int) -> ImageFolderDataset:
    paths = sorted(p.relative_to(root).as_posix() for p in list_images(root))
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed))[:n].tolist()
    return ImageFolderDataset(root, paths=[paths[i] for i in sorted(order)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path.home() / ".cache/fewcolor/raw/imagenette-224/train")
    ap.add_argument("--images", type=int, default=300, help="seeded sample of the folder's images")
    ap.add_argument("--sizes", default="224,160,128,112,96,80,64", help="input sides to compute now")
    ap.add_argument("--k", default="10,32", help="cluster counts to score")
    ap.add_argument("--backbone", default="auto", help="as in `fewcolor cluster --backbone`")
    ap.add_argument("--precision", choices=("fp32", "bf16", "int8"), default="fp32",
                    help="descriptors in fp32, under bf16 autocast (a speed-up only on native-bf16 hardware), or "
                    "int8 (a quantized copy calibrated on the sample; calibration time not in the rate)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/fewcolor-cluster-size"), help="descriptor store")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    data = sample_dataset(args.data, args.images, args.seed)
    name, layer, pretrained = resolve_backbone(args.backbone)
    args.work.mkdir(parents=True, exist_ok=True)
    tag = f"{args.data.name}-{len(data)}-{args.seed}"
    extractor = build_extractor(name, layer, pretrained)
    for size in (int(s) for s in args.sizes.split(",") if s):
        net = int8_descriptor(extractor, {"feature_size": size}, data) if args.precision == "int8" else extractor
        start = time.perf_counter()
        feats = dataset_descriptors(data, net, size, bf16=args.precision == "bf16")
        seconds = time.perf_counter() - start
        torch.save({"features": feats, "seconds": seconds, "backbone": f"{name}:{layer}", "size": size,
                    "precision": args.precision},
                   args.work / f"{tag}-{name}-{args.precision}-{size}.pt")
        print(f"{size:4d} px: {len(data) / seconds:6.1f} img/s ({torch.get_num_threads()} threads)", flush=True)

    stored = [torch.load(p) for p in sorted(args.work.glob(f"{tag}-*.pt"))]
    reference = [s for s in stored if s["backbone"].startswith("vgg16:") and s.get("precision", "fp32") == "fp32"
                 and s["size"] == REFERENCE]
    if not reference:
        return
    labels = data.labels
    seeds = (0, 1, 2)
    rows = []
    for k in (int(s) for s in args.k.split(",")):
        ref = [fit_tasks(reference[0]["features"], k, seed=s).assignments.numpy() for s in seeds]
        floor = mean(adjusted_rand_score(ref[i], ref[j]) for i in seeds for j in seeds if i != j)
        same_size_fp32 = {e["size"]: [fit_tasks(e["features"], k, seed=s).assignments.numpy() for s in seeds]
                          for e in stored if e["backbone"] == reference[0]["backbone"]
                          and e.get("precision", "fp32") == "fp32"}
        for entry in sorted(stored, key=lambda e: (e["backbone"], e.get("precision", "fp32"), -e["size"])):
            got = [fit_tasks(entry["features"], k, seed=s).assignments.numpy() for s in seeds]
            # against fp32 VGG16 at the same input side, other K-means seeds only: for fp32 itself this is
            # the seed-to-seed floor at that side, so a precision that keeps the clusters reads about the same
            fp32_here = same_size_fp32.get(entry["size"])
            vs_fp32 = (mean(adjusted_rand_score(fp32_here[i], got[j]) for i in seeds for j in seeds if i != j)
                       if fp32_here is not None else float("nan"))
            rows.append({"k": k, "backbone": entry["backbone"], "precision": entry.get("precision", "fp32"),
                         "size": entry["size"],
                         "ari_vs_224": mean(adjusted_rand_score(r, g) for r in ref for g in got),
                         "ari_224_seeds": floor,
                         "ari_vs_fp32_same_size": vs_fp32,
                         "ari_vs_classes": mean(adjusted_rand_score(labels, g) for g in got),
                         "img_per_s": len(data) / entry["seconds"]})
    print(f"\n{len(data)} images of {args.data}; K-means seeds {seeds}; reference: VGG16 multi-MAC at {REFERENCE} px")
    print("| k | backbone | precision | input | ARI vs VGG16 at 224 | ARI 224 vs 224, other seeds "
          "| ARI vs VGG16 fp32 at this input, other seeds | ARI vs classes | img/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['k']} | {r['backbone']} | {r['precision']} | {r['size']} | {r['ari_vs_224']:.3f} | "
              f"{r['ari_224_seeds']:.3f} | {r['ari_vs_fp32_same_size']:.3f} | {r['ari_vs_classes']:.3f} | "
              f"{r['img_per_s']:.1f} |")
    (args.work / f"{tag}-table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
