"""MetalGAN (Fontanini, Iotti, Donati & Prati, "MetalGAN: a cluster-based adaptive training for
few-shot adversarial colorization", ICIAP 2019): a pix2pix-style cGAN whose generator is meta-trained
with Reptile over tasks made by clustering the training images. (Adapting it at test time to each query's
cluster is this project's extension; see "Test time" below.)

Tasks (§3.1): MAC descriptors of a pretrained backbone (ResNet50 ``activation_43`` = ``layer4.0``, 2048-d,
when its weights resolve; else the MAC of VGG16's conv3_3, conv4_3 and conv5_3 concatenated, 1280-d, so that
the PCA still reduces something) → PCA to 512 → K-means, k = 64
(:func:`fewcolor.backbones.clustering.cluster_dataset`, cached). Meta-training is Algorithm 1 (§3.2)::

    Algorithm 1  MetalGAN meta-training
    for each epoch:                                                     (meta_epochs)
        Q ← a random 10 % of the training images                        (query_fraction: the queries)
        for q_i in Q:
            τ ← K(q_i)                                                   (the query's cluster is its task)
            θ̃_G ← θ_G                                                    (fast weights)
            for j = 1 … N_meta-iter:                                      (N_meta-iter = 100)
                x ← a batch of τ
                θ̃_G ← θ̃_G − λ_G ∇ [w_adv·L_adv(x) + w_L1·L_L1(x)]       (SGD, λ_G = 1e-4, w = 1, 100)
            θ_G ← θ_G + λ_ML·(θ̃_G − θ_G)                                 (Reptile, λ_ML = 1e-3)
            ε_D ← Σ_{x ∈ τ} ∇_θD [L_adv(x) + L_L1(x)]                      (§3.4: every image of τ)
            θ_D ← θ_D − λ_D ε_D                                           (λ_D = 1e-4)

:meth:`MetalGAN.training_step` is ONE pass of the inner ``for q_i`` body for each of ``meta_batch_size``
queries (the presets use 1, as Algorithm 1). The queries are drawn by the method itself
(:meth:`MetalGAN.query_indices`): epoch e of Algorithm 1 is a seeded random ``query_fraction`` of the
training images, walked in order; a run of ``meta_epochs`` epochs is
``meta_epochs · ⌈query_fraction · N⌉ / meta_batch_size`` loop steps (:meth:`MetalGAN.suggested_steps`,
what ``fewcolor train`` runs when given neither ``--steps`` nor ``--epochs``).

The inner loop is plain SGD with λ_G, as Algorithm 1 writes it (``inner_optimizer="sgd"``);
``inner_optimizer="adam"`` (a fresh Adam per task, this project's earlier choice) is kept as an option.
The discriminator's step (§3.4) accumulates, over *every* image of τ, the gradients of its adversarial and
L1 terms into ε_D; the L1 term does not depend on θ_D, so ε_D is the summed adversarial gradient
(``d_images="task"``; ``"batch"`` = the earlier ``inner_batch_size`` images, averaged). D's modules are
Conv-BN-ReLU (``d_activation="relu"``; ``"leaky"`` = LeakyReLU(0.2), pix2pix's).

Choices the paper leaves open, fixed here:

- The Reptile update is applied through an outer optimiser: ``.grad = θ − θ̃`` (averaged over the
  meta-batch, and by the loop over torchrun ranks: batched Reptile) and ``SGD(lr=λ_ML)`` — exactly the
  plain update. ``meta_optimizer="adam"`` uses Adam on the same pseudo-gradient; ``meta_lr_end`` with
  ``meta_anneal_steps`` anneals λ_ML linearly (as the Reptile paper does).
- BatchNorm across tasks: the fast generator is a deep copy of G *including* its BN running statistics;
  G's BN statistics follow θ by the same Reptile interpolation, ``buf ← buf + λ_ML·mean(buf̃ − buf)``.
  D is frozen during the inner loop (no gradients, its BN statistics restored afterwards).
- D's step sees real images of τ against fakes of the *adapted* generator θ̃_G, per task, with
  Adam(λ_D, β = (0.5, 0.999)) applying ε_D (averaged over the meta-batch, so B tasks ≡ B ranks).
- Task batches and dropout are drawn from generators seeded by (seed, step, global slot), where the
  global slot of query i on rank r is ``r·B + i``: rank r of a 2-process run with meta-batch 1 runs the
  same task, batches and dropout masks as slot r of a single process with meta-batch 2.

Test time — **this project's extension, not the paper's**: the paper's §3.3 does not adapt the generator to
a test image's cluster. Here: embed the query, find its nearest centroid, adapt a copy of G for ``adapt_steps``
steps on that cluster's training images (the inner loop), colorize. Adapted generators are cached per
(cluster, steps) in memory until θ changes. The training images are found again through the root and
paths stored in the checkpoint; when they are not reachable the meta-trained G is used, with a warning.
``adapt_steps=0`` colorizes with the meta-trained G alone.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fewcolor.backbones.clustering import cluster_dataset, descriptors, embedding_network
from fewcolor.backbones.int8 import Int8Descriptor
from fewcolor.data.protocol import Dataset, collate
from fewcolor.data.reopen import ImagesUnreachable, reopen_images
from fewcolor.data.tasks import ClusterTasks
from fewcolor.hardware import descriptor_precision, native_bf16
from fewcolor.losses.gan import GanLoss
from fewcolor.meta import adapt_cache
from fewcolor.meta import distributed as dist_utils
from fewcolor.meta.lru import LRU
from fewcolor.meta.reptile import apply_buffer_deltas_, buffer_deltas, meta_step_size, reptile_grad
from fewcolor.methods.base import AdaptSettings, InferenceOption, InferenceOptionError, Method, Phase
from fewcolor.methods.registry import register_method
from fewcolor.nets.discriminators import build_discriminator
from fewcolor.nets.encoder_decoder import EncoderGenerator
from fewcolor.nets.generators import ENCODER_CHOICES, l_to_ab_generator
from fewcolor.nets.norm import keep_norm_statistics as hold_norm_statistics
from fewcolor.nets.unet import UNetGenerator

log = logging.getLogger(__name__)

@dataclass
class MetalGANConfig:
    image_size: int = 256  #: training crop / working resolution (the DCGAN discriminator is built for it)
    base_channels: int = 64  #: U-Net width
    depth: int = 8  #: U-Net down-samplings (8 = pix2pix 256×256)
    dropout: float = 0.5
    #: none = the paper's U-Net; else an ImageNet encoder + the base colorizer's decoder (nets/generators.py)
    encoder: str = field(default="none", metadata={"choices": ENCODER_CHOICES})
    freeze_encoder: bool = True  #: keep the pretrained encoder's weights fixed (with encoder != none)
    discriminator: str = "dcgan"  #: "dcgan" (one logit) or "patch"
    d_base: int = 64
    d_layers: int = 3  #: PatchGAN layers (unused by dcgan)
    gan_weight: float = 1.0  #: w_adv
    l1_weight: float = 100.0  #: w_L1
    inner_steps: int = 100  #: N_meta-iter
    inner_batch_size: int = 4  #: images of τ per inner step (not stated in the paper)
    inner_lr: float = 1e-4  #: λ_G
    inner_optimizer: str = "sgd"  #: "sgd" (Algorithm 1: θ̃ ← θ̃ − λ_G∇) or "adam" (a fresh Adam per task)
    d_lr: float = 1e-4  #: λ_D
    d_steps: int = 1  #: discriminator updates per meta-step
    d_images: str = "task"  #: "task" (§3.4: ε_D summed over every image of τ) or "batch" (inner_batch_size, mean)
    d_chunk: int = 32  #: images per discriminator forward when summing over a task (memory only)
    d_activation: str = "relu"  #: D blocks Conv-BN-ReLU (§3.4) or "leaky" (LeakyReLU 0.2, pix2pix's)
    beta1: float = 0.5
    beta2: float = 0.999
    meta_lr: float = 1e-3  #: λ_ML
    meta_lr_end: float | None = None  #: anneal λ_ML linearly to this over ``meta_anneal_steps`` (None: constant)
    meta_anneal_steps: int = 0
    meta_optimizer: str = "sgd"  #: "sgd" (exactly the plain Reptile update) or "adam"
    #: tasks (queries) per meta-step; None = the loop's batch size. Algorithm 1 draws one query per
    #: iteration (1); a larger meta-batch averages more tasks but makes fewer outer steps for the same budget.
    meta_batch_size: int | None = None
    query_fraction: float = 0.1  #: share of the training images drawn as queries Q in each epoch (Algorithm 1)
    meta_epochs: int = 0  #: Algorithm 1's epochs: sets the run length when train gets no --steps/--epochs (0: no)
    n_clusters: int = 64  #: k
    pca_dim: int = 512
    backbone: str = "auto"  #: "auto" (ResNet50 layer4.0, else VGG16 conv3_3+4_3+5_3 MAC) or "name:layer[,layer]"
    feature_size: int = 224  #: side the images are resized to for the descriptors
    adapt_steps: int = 0  #: test-time steps on the query's cluster (our extension; 0 = the paper's meta-trained G)
    #: test-time adaptation (a support set, a query's cluster) keeps G's batch-norm statistics: the few images'
    #: batch statistics would replace those meta-learned over every task (docs/METALGAN.md; the training inner
    #: loop updates them, as Algorithm 1's does). False: update them at test time too (before 2026-12-05)
    adapt_keep_norm_statistics: bool = True
    adapt_cache_size: int = 8  #: adapted generators kept in memory
    seed: int = 0


def _mix(*parts: int) -> int:
    """A 63-bit seed from integers (distinct tuples give distinct seeds for all practical purposes)."""
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


@contextlib.contextmanager
def _seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """Dropout draws from the global RNG: fork it and seed it so a task's masks depend on its seed only."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# ------------------------------------------------------------------------------------------- the method
@register_method
class MetalGAN(Method):
    task_centroids: torch.Tensor  # registered buffer
    task_pca_mean: torch.Tensor  # registered buffer
    task_pca_components: torch.Tensor  # registered buffer
    task_assignments: torch.Tensor  # registered buffer

    name = "metalgan"
    summary = "cGAN meta-trained with Reptile over K-means tasks of MAC descriptors (+ our test-time cluster tuning)"
    Config = MetalGANConfig
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # Algorithm 1 draws one query per iteration: meta-batch 1 whatever the loop's batch size.
        "paper": {"meta_batch_size": 1},
        # cpu: 8 inner steps instead of 100, so the inner loop keeps a fresh Adam: measured better than the
        # paper's SGD at λ_G = 1e-4, which moves G little in 8 steps (docs/METALGAN.md, docs/RESULTS.md)
        "cpu": {"image_size": 64, "base_channels": 32, "depth": 6, "d_base": 32, "n_clusters": 12,
                "inner_steps": 8, "adapt_steps": 8, "feature_size": 112, "meta_batch_size": 1,
                "inner_optimizer": "adam"},
        "tiny": {"image_size": 32, "base_channels": 8, "depth": 4, "dropout": 0.0, "d_base": 8, "n_clusters": 4,
                 "inner_steps": 3, "inner_batch_size": 2, "adapt_steps": 3, "inner_lr": 1e-3, "d_lr": 1e-3,
                 "meta_lr": 0.1, "feature_size": 64, "inner_optimizer": "adam"},
    }
    inference_options = (
        InferenceOption("adapt_steps", "int", "test-time adaptation steps on the query's cluster (this "
                        "project's extension, not the paper's; 0: the meta-trained G as is)",
                        default="the config's adapt_steps", minimum=0),
    )
    shared_on_copy = ("_dataset",)  # the training images (setup): read, never written

    def __init__(self, config: MetalGANConfig) -> None:
        super().__init__(config)
        c = config
        if c.meta_optimizer not in ("sgd", "adam"):
            raise ValueError(f"metalgan: meta_optimizer must be 'sgd' or 'adam', got {c.meta_optimizer!r}")
        if c.inner_steps < 1 or c.inner_batch_size < 1 or c.d_steps < 1:
            raise ValueError("metalgan: inner_steps, inner_batch_size and d_steps must be >= 1")
        if c.meta_batch_size is not None and c.meta_batch_size < 1:
            raise ValueError(f"metalgan: meta_batch_size must be >= 1 or None, got {c.meta_batch_size}")
        for key, value, allowed in (("inner_optimizer", c.inner_optimizer, ("sgd", "adam")),
                                    ("d_images", c.d_images, ("task", "batch")),
                                    ("d_activation", c.d_activation, ("relu", "leaky"))):
            if value not in allowed:
                raise ValueError(f"metalgan: {key} must be one of {allowed}, got {value!r}")
        if not 0 < c.query_fraction <= 1 or c.meta_epochs < 0 or c.d_chunk < 1:
            raise ValueError("metalgan: query_fraction must be in (0, 1], meta_epochs >= 0 and d_chunk >= 1; got "
                             f"{c.query_fraction}, {c.meta_epochs}, {c.d_chunk}")
        self.generator = l_to_ab_generator(c.encoder, c.base_channels, c.depth, c.dropout, c.freeze_encoder)
        self.discriminator = build_discriminator(c.discriminator, 3, c.image_size, base=c.d_base, norm="batch",
                                                 n_layers=c.d_layers, activation=c.d_activation)
        self.gan = GanLoss("vanilla")
        # The tasks, kept in the checkpoint; empty until setup() or load_extra_metadata().
        self._set_task_buffers(torch.zeros(0, 0), torch.zeros(0), torch.zeros(0, 0), torch.zeros(0, dtype=torch.long))
        self.task_info: dict[str, Any] = {}
        self.data_root: str | None = None
        self.data_paths: list[str] | None = None
        self.adapted_to: dict[str, Any] | None = None
        self._dataset: Dataset | None = None  # the training data (setup) for task batches
        self._adapted: LRU[tuple[int, int], nn.Module] = LRU(c.adapt_cache_size)
        self._warned: set[str] = set()

    @property
    def size_multiple(self) -> int:  # type: ignore[override]
        return self.generator.size_multiple

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._adapted.clear()  # new θ_G: the generators adapted from the old one are stale
        super()._load_from_state_dict(*args, **kwargs)

    def fresh_on_copy(self) -> dict[str, Any]:
        """A copy (adapted next) starts without the original's adapted generators."""
        return {"_adapted": LRU(self.config.adapt_cache_size)}

    # ----- tasks ---------------------------------------------------------------------------------
    def _set_task_buffers(self, centroids: torch.Tensor, mean: torch.Tensor, comps: torch.Tensor,
                          assignments: torch.Tensor) -> None:
        self.register_buffer("task_centroids", centroids.float())
        self.register_buffer("task_pca_mean", mean.float())
        self.register_buffer("task_pca_components", comps.float())
        self.register_buffer("task_assignments", assignments.long())

    @property
    def has_tasks(self) -> bool:
        return self.task_centroids.numel() > 0

    @property
    def tasks(self) -> ClusterTasks:
        if not self.has_tasks:
            raise RuntimeError("metalgan has no cluster tasks yet: call setup(train_data) or load a trained checkpoint")
        return ClusterTasks(self.task_centroids, self.task_pca_mean, self.task_pca_components,
                            self.task_assignments.cpu(), dict(self.task_info))

    def setup(self, train_data: Dataset) -> None:
        """Cluster the training data into tasks (cached) and keep the data for the tasks' batches."""
        c = self.config
        k = min(c.n_clusters, len(train_data))
        if k < c.n_clusters:
            log.warning("metalgan: %d images cannot make %d clusters; using k=%d", len(train_data), c.n_clusters, k)
        self.set_tasks(cluster_dataset(train_data, k, c.pca_dim, c.backbone, c.feature_size, c.seed,
                                       precision=descriptor_precision()), train_data)

    def set_tasks(self, tasks: ClusterTasks, train_data: Dataset) -> None:
        """Use ``tasks`` (one cluster per image of ``train_data``, which supplies the tasks' batches).

        ``tasks.info`` must name the descriptor (``backbone``, ``layer``, ``pretrained``, ``feature_size``)
        so that test-time queries are embedded the same way.
        """
        if len(tasks.assignments) != len(train_data):
            raise ValueError(f"metalgan: {len(tasks.assignments)} cluster assignments for {len(train_data)} images")
        self._set_task_buffers(tasks.centroids, tasks.pca_mean, tasks.pca_components, tasks.assignments)
        self.task_info = dict(tasks.info)
        self._dataset = train_data
        root, paths = getattr(train_data, "root", None), getattr(train_data, "paths", None)
        self.data_root = str(Path(root).resolve()) if root is not None and paths is not None else None
        self.data_paths = list(paths) if root is not None and paths is not None else None
        self._adapted.clear()
        self.drop_auxiliary("extractor")  # the query embedding follows the new tasks' descriptor
        log.info("metalgan: %d tasks, sizes %s", tasks.k, tasks.counts())

    # ----- training ------------------------------------------------------------------------------
    def queries_per_epoch(self, num_images: int) -> int:
        """|Q| = ⌈query_fraction · N⌉ (Algorithm 1: a random 10 % of the training images per epoch)."""
        return max(1, math.ceil(self.config.query_fraction * num_images - 1e-9))

    def query_indices(self, step: int, count: int, rank: int = 0, world: int = 1) -> list[int]:
        """The ``count`` queries of loop step ``step`` on ``rank``: positions ``(step·world + rank)·count + i``
        of the stream of epochs, epoch e being a seeded random ``query_fraction`` of the images (a pure
        function of its arguments, so resuming and N ranks ≡ one process with meta-batch N hold)."""
        n = len(self.task_assignments)
        per_epoch = self.queries_per_epoch(n)
        out = []
        for i in range(count):
            epoch, offset = divmod((step * world + rank) * count + i, per_epoch)
            g = torch.Generator().manual_seed(_mix(self.config.seed, epoch, -7))
            out.append(int(torch.randperm(n, generator=g)[offset]))
        return out

    def suggested_steps(self, num_images: int, batch_size: int) -> int | None:
        """``meta_epochs`` of Algorithm 1 in loop steps (None when ``meta_epochs`` is 0)."""
        c = self.config
        if c.meta_epochs <= 0:
            return None
        per_step = batch_size if c.meta_batch_size is None else c.meta_batch_size
        return max(1, -(-c.meta_epochs * self.queries_per_epoch(num_images) // per_step))

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        c = self.config
        if c.meta_optimizer == "sgd":
            meta: torch.optim.Optimizer = torch.optim.SGD(self.generator.parameters(), lr=c.meta_lr)
        else:
            meta = torch.optim.Adam(self.generator.parameters(), lr=c.meta_lr, betas=(c.beta1, c.beta2))
        d = torch.optim.Adam(self.discriminator.parameters(), lr=c.d_lr, betas=(c.beta1, c.beta2))
        return {"meta": meta, "discriminator": d}

    def learning_rates(self, step: int, total_steps: int) -> dict[str, float]:
        """λ_ML of ``step`` on the meta optimiser (:meth:`current_meta_lr`); the loop sets it before the step."""
        return {"meta": self.current_meta_lr(step)}

    def current_meta_lr(self, step: int) -> float:
        c = self.config
        return meta_step_size(step, c.meta_anneal_steps, c.meta_lr, c.meta_lr_end)

    @staticmethod
    def _task_batch_indices(members: Sequence[int], size: int, g: torch.Generator) -> list[int]:
        """``size`` members of a task (without replacement when it has enough, else with)."""
        if len(members) >= size:
            pick = torch.randperm(len(members), generator=g)[:size].tolist()
        else:
            pick = torch.randint(len(members), (size,), generator=g).tolist()
        return [members[j] for j in pick]

    def _collate(self, dataset: Dataset, indices: Sequence[int]) -> dict[str, Any]:
        batch = collate(dataset, indices)
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}

    def _task_batch(self, dataset: Dataset, members: Sequence[int], size: int, g: torch.Generator) -> dict[str, Any]:
        """``size`` images of a task, collated on the method's device."""
        return self._collate(dataset, self._task_batch_indices(members, size, g))

    def _generator_loss(self, gen: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """L = w_adv·L_adv + w_L1·L_L1 (Algorithm 1's inner loss; D conditioned on L as in pix2pix)."""
        c = self.config
        fake = gen(batch["l"])
        adv = self.gan.g_loss(self.discriminator(torch.cat([batch["l"], fake], dim=1)))
        l1 = F.l1_loss(fake, batch["ab"])
        loss = c.gan_weight * adv + c.l1_weight * l1
        return loss, {"adv": float(adv.detach()), "l1": float(l1.detach())}

    @contextlib.contextmanager
    def _frozen_discriminator(self) -> Iterator[None]:
        """D takes no gradient and keeps its BN statistics (runs in train mode) while a generator adapts."""
        d = self.discriminator
        flags = [p.requires_grad for p in d.parameters()]
        saved = {n: b.detach().clone() for n, b in d.named_buffers()}
        mode = d.training
        d.train()  # batch statistics, as in the training inner loop, also at test time
        for p in d.parameters():
            p.requires_grad_(False)
        try:
            yield
        finally:
            d.train(mode)
            for p, f in zip(d.parameters(), flags, strict=True):
                p.requires_grad_(f)
            with torch.no_grad():
                for n, b in d.named_buffers():
                    b.copy_(saved[n])

    def inner_loop(self, dataset: Dataset, members: Sequence[int], steps: int, seed: int,
                   progress: bool = False, keep_norm_statistics: bool = False,
                   ) -> tuple[UNetGenerator | EncoderGenerator, list[dict[str, float]]]:
        """Fast weights θ̃_G: a copy of G (with its BN statistics) trained ``steps`` times on batches of
        the task ``members`` of ``dataset`` by SGD(λ_G) (Algorithm 1), or a fresh Adam(λ_G) with
        ``inner_optimizer="adam"``. θ_G and D are left unchanged. ``keep_norm_statistics`` (test time): G's
        batch norms normalise by their running statistics and leave them unchanged."""
        c = self.config
        fast = copy.deepcopy(self.generator)
        fast.train()
        if keep_norm_statistics:
            hold_norm_statistics(fast)
        for p in fast.parameters():
            p.grad = None
            p.requires_grad_(True)
        opt: torch.optim.Optimizer
        if c.inner_optimizer == "sgd":
            opt = torch.optim.SGD(fast.parameters(), lr=c.inner_lr)
        else:
            opt = torch.optim.Adam(fast.parameters(), lr=c.inner_lr, betas=(c.beta1, c.beta2))
        g = torch.Generator().manual_seed(seed)
        history = []
        with torch.enable_grad(), self._frozen_discriminator(), _seeded_global_rng(seed, self.device):
            for _ in tqdm(range(steps), desc="adapt", unit="step", disable=not progress, leave=False):
                batch = self._task_batch(dataset, members, c.inner_batch_size, g)
                loss, logs = self._generator_loss(fast, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                history.append({"loss": float(loss.detach()), **logs})
        for p in fast.parameters():
            p.grad = None
        return fast, history

    def _task_fakes(self, fast: nn.Module, members: Sequence[int], seed: int
                    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(L, ab, θ̃_G(L)) chunks of D's images for one task: every member (§3.4) or one inner batch."""
        c = self.config
        if c.d_images == "task":
            chunks = [list(members[i:i + c.d_chunk]) for i in range(0, len(members), c.d_chunk)]
        else:
            g = torch.Generator().manual_seed(_mix(seed, 1))
            pick = self._task_batch_indices(members, c.inner_batch_size, g)
            chunks = [pick]
        out = []
        assert self._dataset is not None  # training_step checked it
        with torch.no_grad(), _seeded_global_rng(_mix(seed, 2), self.device):
            for chunk in chunks:
                real = self._collate(self._dataset, chunk)
                out.append((real["l"], real["ab"], fast(real["l"])))
        return out

    def _discriminator_phase(self, tasks: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]) -> Phase:
        """θ_D ← θ_D − λ_D ε_D. ``d_images="task"``: ε_D = Σ over every image of τ of ∇_θD L_adv (the L1 term
        of §3.4 has no θ_D gradient), chunk by chunk into ``.grad``; ``"batch"``: the batch mean. Averaged over
        the meta-batch (B tasks in one process ≡ B ranks)."""
        c = self.config
        self.discriminator.zero_grad(set_to_none=True)
        n_q = len(tasks)
        total = real_s = fake_s = 0.0
        images = sum(int(l.shape[0]) for chunks in tasks for l, _, _ in chunks)
        for chunks in tasks:
            for l, ab, fake in chunks:
                d_real = self.discriminator(torch.cat([l, ab], dim=1))
                d_fake = self.discriminator(torch.cat([l, fake], dim=1))
                loss = self.gan.d_loss(d_real, d_fake)  # mean over the chunk's images
                if c.d_images == "task":
                    loss = loss * l.shape[0]  # → the sum over them
                (loss / n_q).backward()
                total += float(loss.detach()) / n_q
                real_s += float(d_real.detach().sum()) / images
                fake_s += float(d_fake.detach().sum()) / images
        return Phase("discriminator", None, {"loss/d": total, "d/real": real_s, "d/fake": fake_s,
                                             "d/images": images / n_q})

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        """One iteration of Algorithm 1 (module docstring) for each of the step's queries q_i."""
        c = self.config
        tasks = self.tasks
        self._adapted.clear()  # θ is about to change: adapted copies are stale
        if self._dataset is None:
            raise RuntimeError("metalgan: training_step needs setup(train_data) first (the tasks' images)")
        n_q = c.meta_batch_size or len(batch["index"])
        rank = dist_utils.rank()
        queries = self.query_indices(step, n_q, rank, dist_utils.world_size())
        lr_ml = self.current_meta_lr(step)  # set on the meta optimiser by the loop (learning_rates)
        buf_delta: list[torch.Tensor] | None = None
        d_tasks = []
        first, last = [], []
        for i, q in enumerate(queries):
            slot = rank * n_q + i  # global slot: rank r with meta-batch 1 ≡ slot r of one process
            seed = _mix(c.seed, step, slot)
            tau = int(tasks.assignments[q])  # τ ← K(q_i)
            members = tasks.task_indices(tau)
            fast, hist = self.inner_loop(self._dataset, members, c.inner_steps, seed)  # θ̃_G
            # Reptile pseudo-gradient, mean over the meta-batch: .grad = mean_i(θ_G − θ̃_G,i)
            reptile_grad(self.generator.parameters(), fast.parameters(), scale=1.0 / n_q, accumulate=i > 0)
            deltas = buffer_deltas(self.generator, fast)
            buf_delta = deltas if buf_delta is None else [a + b for a, b in zip(buf_delta, deltas, strict=True)]
            d_tasks.append(self._task_fakes(fast, members, seed))  # real images of τ vs θ̃_G's fakes, for D
            first.append(hist[0])
            last.append(hist[-1])
        logs = {"meta/lr": lr_ml,
                "inner/l1_first": sum(h["l1"] for h in first) / n_q,
                "inner/l1_last": sum(h["l1"] for h in last) / n_q,
                "inner/adv_last": sum(h["adv"] for h in last) / n_q}
        # θ_G ← θ_G + λ_ML (θ̃_G − θ_G): the loop averages .grad over ranks and steps SGD(lr=λ_ML).
        yield Phase("meta", None, logs)
        assert buf_delta is not None
        apply_buffer_deltas_(self.generator, [d / n_q for d in buf_delta], lr_ml)
        for _ in range(c.d_steps):
            yield self._discriminator_phase(d_tasks)

    # ----- test time -----------------------------------------------------------------------------
    def _warn_once(self, key: str, msg: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(msg, *args)

    def clear_adaptation_cache(self) -> None:
        self._adapted.clear()

    def _extractor(self) -> tuple[nn.Module, bool]:
        """The descriptor network of the tasks (int8 ones on the CPU) and whether it runs under bf16 autocast."""
        # outside the checkpoint (Method.auxiliary); the int8 copy computes on the CPU, so no device here
        net, bf16 = self.auxiliary("extractor", lambda: embedding_network(self.task_info, self.config.seed))
        if isinstance(net, Int8Descriptor):
            return net, False
        # bf16 like the training descriptors, unless this device would only emulate it
        return net.to(self.device), bf16 and native_bf16(self.device)

    @torch.no_grad()
    def nearest_clusters(self, l: torch.Tensor) -> torch.Tensor:
        """The task of each query (B,1,H,W) normalised L: nearest centroid of its PCA-projected MAC.

        The query is this L at the working size, resized to ``feature_size``; the training descriptors came from
        the full-size images resized to ``feature_size`` (``clustering.l_at``). Where ``feature_size`` exceeds the
        working size the query is an upsampled, blurrier picture than the centroids saw (docs/METALGAN.md)."""
        size = int(self.task_info.get("feature_size", self.config.feature_size))
        small = F.interpolate(l.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        net, bf16 = self._extractor()
        feats = descriptors(net, small.clamp(-1, 1), bf16)  # an int8 copy computes on the CPU itself
        return self.tasks.assign(feats.to(self.task_pca_mean)).cpu()

    def _cluster_source(self, k: int) -> tuple[Any, list[int]] | None:
        """(dataset, indices) of cluster ``k``'s training images, or None when they cannot be reached."""
        members = self.tasks.task_indices(k)
        if not members:
            return None
        if self._dataset is not None:
            return self._dataset, members
        paths = None if self.data_paths is None else [self.data_paths[i] for i in members]
        try:
            ds = reopen_images(self.data_root, paths, self.train_transform(self.config.image_size), self.config.seed)
        except ImagesUnreachable as exc:
            self._warn_once("data", "metalgan: %s; colorizing with the meta-trained G, unadapted (pass "
                            "adapt_steps=0 to silence this)", exc)
            return None
        return ds, list(range(len(ds)))

    def adapted_generator(self, k: int, steps: int) -> nn.Module:
        """G adapted for ``steps`` on cluster ``k`` (cached), or G itself when the images are unreachable."""
        key = (int(k), int(steps))
        cached = self._adapted.get(key)
        if cached is not None:  # outside the module tree: follow G's device and mode since it was cached
            return cached.to(self.device).train(self.training)
        source = self._cluster_source(k)
        if source is None:
            return self.generator
        dataset, members = source
        was_training = self.training
        # on disk across calls (fewcolor.meta.adapt_cache): keyed by θ_G, D, config, cluster, steps, images
        paths = getattr(dataset, "paths", None)
        disk_key = adapt_cache.adaptation_key(self, cluster=int(k), steps=int(steps), config=self.config,
                                              images=[paths[i] for i in members] if paths else len(members),
                                              root=str(getattr(dataset, "root", "")))
        fast = copy.deepcopy(self.generator)
        if not adapt_cache.load_cached(disk_key, fast):
            log.info("metalgan: adapting G to cluster %d (%d images, %d steps); the result is cached in %s",
                     k, len(members), steps, adapt_cache.cache_path(disk_key))
            fast, _ = self.inner_loop(dataset, members, steps, _mix(self.config.seed, -1, k), progress=True,
                                      keep_norm_statistics=self.config.adapt_keep_norm_statistics)
            adapt_cache.store(disk_key, fast, {"cluster": int(k), "steps": int(steps)})
        fast.train(was_training)
        fast.requires_grad_(False)
        self._adapted.put(key, fast)
        return fast

    def predict_ab(self, l: torch.Tensor, adapt_steps: int | None = None, **options: Any) -> torch.Tensor:
        """Colorize with G adapted to each query's cluster (``adapt_steps``; 0 = the meta-trained G)."""
        self.check_options(options)
        steps = self.config.adapt_steps if adapt_steps is None else int(adapt_steps)
        if steps < 0:
            raise InferenceOptionError(f"metalgan: adapt_steps must be >= 0, got {steps}")
        if steps == 0 or not self.has_tasks:
            return self.generator(l)
        try:
            clusters = self.nearest_clusters(l)
        except (OSError, KeyError, RuntimeError) as exc:  # WeightsNotFoundError is an OSError
            self._warn_once("backbone", "metalgan: cannot embed the queries (%s); using the unadapted G", exc)
            return self.generator(l)
        out = torch.empty(l.shape[0], 2, *l.shape[-2:], device=l.device, dtype=l.dtype)
        for k in clusters.unique().tolist():
            idx = torch.nonzero(clusters == k).flatten().to(l.device)
            out[idx] = self.adapted_generator(k, steps)(l[idx]).to(out.dtype)
        return out

    def export_blocker(self, options: Mapping[str, Any]) -> str | None:
        steps = options.get("adapt_steps")
        steps = self.config.adapt_steps if steps is None else int(steps)
        if steps > 0 and self.has_tasks:
            return (f"with adapt_steps={steps} each query's generator is adapted at test time by gradient steps on "
                    "its cluster's images (this project's extension, not the paper's), which no fixed graph computes; "
                    "export with adapt_steps=0 (the meta-trained G) or export a model adapted with `fewcolor adapt`")
        return None

    # ----- the benchmark's equal-budget hooks (see Method) ------------------------------------
    def images_per_step(self, batch_size: int) -> int:
        """One loop step is a meta-batch of ``batch_size`` tasks (at most ``meta_batch_size``), each
        ``inner_steps`` generator updates on ``inner_batch_size`` images: that is what the plain cGAN's
        budget is matched against."""
        c = self.config
        tasks = batch_size if c.meta_batch_size is None else min(batch_size, c.meta_batch_size)
        return tasks * c.inner_steps * c.inner_batch_size

    def adapt(self, support_data: Dataset, steps: int, seed: int = 0, progress: bool = False) -> bool:
        """Test-time adaptation: the support set is the task; ``steps`` inner-loop updates of G (L_adv + L1).

        Afterwards ``adapt_steps`` is 0 (colorize with the adapted G directly; the clusters are kept) and
        ``adapted_to`` records the support and the task L1 before and after."""
        fast, hist = self.inner_loop(support_data, list(range(len(support_data))), steps, _mix(seed, -2),
                                     progress=progress, keep_norm_statistics=self.config.adapt_keep_norm_statistics)
        self.generator.load_state_dict(fast.state_dict())
        self.config = dataclasses.replace(self.config, adapt_steps=0)  # already adapted: no cluster adaptation
        self._adapted.clear()
        root = getattr(support_data, "root", None)
        self.adapted_to = {"root": str(root) if root is not None else None, "images": len(support_data),
                           "steps": steps, "l1_first": hist[0]["l1"] if hist else None,
                           "l1_last": hist[-1]["l1"] if hist else None}
        return True

    def adapt_settings(self) -> AdaptSettings:
        """Algorithm 1's inner loop is the adaptation: ``inner_steps`` steps at the inner λ_G."""
        return AdaptSettings(steps=self.config.inner_steps, lr_factor=1.0,
                             keep_norm_statistics=self.config.adapt_keep_norm_statistics)

    # ----- checkpoint ----------------------------------------------------------------------------
    def extra_metadata(self) -> dict[str, Any]:
        tasks = None
        if self.has_tasks:
            tasks = {**self.task_info, "k": int(self.task_centroids.shape[0]),
                     "pca_dim": int(self.task_centroids.shape[1]), "feature_dim": int(self.task_pca_mean.shape[0]),
                     "num_images": int(self.task_assignments.shape[0])}
        return {"tasks": tasks, "data": {"root": self.data_root, "paths": self.data_paths},
                "adapted_to": self.adapted_to}

    def load_extra_metadata(self, meta: Any) -> None:
        tasks = meta.get("tasks")
        if tasks:
            k, d, big, n = (int(tasks[x]) for x in ("k", "pca_dim", "feature_dim", "num_images"))
            self._set_task_buffers(torch.zeros(k, d), torch.zeros(big), torch.zeros(d, big),
                                   torch.zeros(n, dtype=torch.long))
            self.task_info = {x: v for x, v in tasks.items() if x not in ("k", "pca_dim", "num_images")}
        data = meta.get("data") or {}
        self.data_root = data.get("root")
        self.data_paths = data.get("paths")
        self.adapted_to = meta.get("adapted_to")
        self._adapted.clear()
        self.drop_auxiliary()

