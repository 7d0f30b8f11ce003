"""How the bundled weights start a method whose encoder variant is trained with L1 through the annealed mean.

    python scripts/init_diagnostic.py [--data FOLDER] [--images 64] [--method unet]

For ``METHOD --set encoder=efficientnet-lite0`` (``cpu`` preset) from scratch and from ``--init base``, on
``--images`` images of a folder (default: the prepared pokemon-frames sprites, 64 px): the first step's L1,
the mean |∂L/∂logit| that reaches the 313 bin logits, the gradient norm over the trainable parameters, and
how committed the annealed bin distribution is (mean largest probability, entropy), with the mean |ab| of
the predictions against the truths'. One forward/backward each, a few seconds on a CPU; docs/RESULTS.md
uses it to explain why ``unet --init base`` starts worse on sprites than from scratch.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from fewcolor.data.folder import ImageFolderDataset
from fewcolor.data.protocol import collate
from fewcolor.data.transforms import eval_transform
from fewcolor.home import fewcolor_home
from fewcolor.io.warm_start import warm_start
from fewcolor.methods.registry import build_method
from fewcolor.pretrained import require_bundled_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=fewcolor_home() / "datasets" / "pokemon-frames" / "normal")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--method", default="unet", help="a method with an `encoder` field whose loss is L1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    dataset = ImageFolderDataset(args.data, transform=eval_transform(args.size), seed=args.seed)
    picked = random.Random(args.seed).sample(range(len(dataset)), min(args.images, len(dataset)))
    batch = collate(dataset, picked)
    print(f"{len(picked)} images of {args.data} at {args.size} px; {args.method} with the EfficientNet-Lite0 encoder")
    print("| start | first L1 | mean abs dL/dlogit | grad norm | annealed p_max | entropy (nats) "
          "| mean abs ab: pred / truth |")
    print("|---|---|---|---|---|---|---|")
    for start in ("scratch", "init base"):
        torch.manual_seed(args.seed)
        method = build_method(args.method, "cpu", {"encoder": "efficientnet-lite0"})
        if start == "init base":
            warm_start(method, require_bundled_model("needs the bundled base model"))
        method.train()
        gen = method.generator
        logits = gen.net(batch["l"])
        logits.retain_grad()
        pred = gen.decode(logits, batch["l"])
        loss = F.l1_loss(pred, batch["ab"])
        loss.backward()
        assert logits.grad is not None
        probs = torch.softmax(logits.detach().float() / gen.temperature, dim=1)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1).mean()
        grads = [p.grad.float() for p in method.parameters() if p.grad is not None]
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        print(f"| {start} | {loss.item():.4f} | {logits.grad.abs().mean().item():.2e} | {norm.item():.3f} | "
              f"{probs.max(dim=1).values.mean().item():.3f} | {entropy.item():.2f} | "
              f"{pred.abs().mean().item():.3f} / {batch['ab'].abs().mean().item():.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
