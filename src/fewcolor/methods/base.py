"""The contract every colorization method implements.

A method is an ``nn.Module`` holding its networks (and buffers such as priors or a memory), a
config dataclass whose defaults are the paper's, and named presets (``cpu``, ``paper``). The one
training loop (``fewcolor.train``) drives it through :meth:`Method.training_step`, which yields
:class:`Phase` objects: the loop back-propagates each phase's loss, checks it is finite, averages
gradients across ranks and steps the named optimiser. Inference goes through :meth:`predict_ab`,
which maps normalised L to normalised ab at the same size (see ``fewcolor.color.normalize``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from fewcolor.data.protocol import Dataset
from fewcolor.data.transforms import Transform, train_transform
from fewcolor.methods.options import InferenceOption, InferenceOptionError, check_config_values

__all__ = ["AdaptSettings", "InferenceOption", "InferenceOptionError", "Method", "Phase"]

T = TypeVar("T")


@dataclass
class Phase:
    """One optimisation phase of a training step (e.g. the discriminator's, then the generator's).

    ``loss`` is back-propagated by the loop and ``optimizer`` stepped. ``loss=None`` means the
    method already wrote the gradients (Reptile writes θ - θ̃ into ``.grad``). ``after_step`` runs
    after the optimiser step (e.g. WGAN weight clipping). ``logs`` are scalars for the logs.
    """

    optimizer: str
    loss: torch.Tensor | None
    logs: dict[str, float] = field(default_factory=dict)
    after_step: Callable[[], None] | None = None


@dataclass(frozen=True)
class AdaptSettings:
    """A method's defaults for ``fewcolor adapt`` on 1–10 images (see docs/ADAPT.md for how they were chosen).

    ``steps``: adaptation steps; ``lr_factor``: multiplies the learning rate of every optimiser of a
    fine-tuning run (the fresh optimisers ``configure_optimizers`` builds from the config);
    ``keep_norm_statistics``: fine-tune with every batch-norm layer normalising by its running statistics
    and leaving them unchanged, instead of replacing them with the few support images' (the benchmark's
    adaptation follows it too, whatever its step count).
    """

    steps: int
    lr_factor: float = 1.0
    keep_norm_statistics: bool = False


class Method(nn.Module):
    """Base class of every colorization method (see the module docstring for the contract)."""

    #: registry name, e.g. ``"cgan"``
    name: ClassVar[str] = ""
    #: one-line description for ``fewcolor methods``
    summary: ClassVar[str] = ""
    #: config dataclass type; its defaults are the paper's
    Config: ClassVar[type]
    #: named config overrides; ``paper`` should be empty (the defaults)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"paper": {}}
    #: the network's working-resolution sides are rounded to a multiple of this
    size_multiple: ClassVar[int] = 1
    #: train on the CPU with 4-d weights in channels-last memory format (set where it measured faster:
    #: docs/PERFORMANCE.md); the training loop converts the module, checkpoints are stored contiguous
    channels_last: ClassVar[bool] = False
    #: False for training-free methods whose ``training_step`` yields nothing (set-up does all the work):
    #: the training loop then ends at once instead of running thousands of empty steps
    learns_in_steps: ClassVar[bool] = True
    #: False where :meth:`adapt` builds the adapted state in one pass over the support images whatever its
    #: ``steps`` (a look-up table): ``fewcolor adapt`` then refuses --steps and --lr-factor instead of ignoring them
    adapts_in_steps: ClassVar[bool] = True

    @classmethod
    def adapt_takes_steps(cls) -> bool:
        """Whether ``fewcolor adapt``'s --steps (and --lr-factor) mean anything for this method: False for a
        training-free method and for one whose adapt is a single pass (``adapts_in_steps``)."""
        return cls.learns_in_steps and cls.adapts_in_steps
    #: the training step of a loaded checkpoint (set by ``load_method``)
    checkpoint_step: int = 0
    #: typed keyword options ``predict_ab`` accepts; the CLI, the pipeline and ``fewcolor methods``
    #: are generated from them (see :class:`fewcolor.methods.options.InferenceOption`)
    inference_options: ClassVar[tuple[InferenceOption, ...]] = ()
    #: the paper's batch size per preset: ``fewcolor train`` uses it when ``--batch-size`` is not given
    preset_batch_sizes: ClassVar[dict[str, int]] = {}
    #: ``fewcolor adapt`` defaults (``adapt_settings()`` may derive them from the config instead)
    adapt_defaults: ClassVar[AdaptSettings] = AdaptSettings(steps=100, lr_factor=1.0)
    #: attributes a deep copy shares with the original instead of copying: large inputs the method only
    #: reads (e.g. MetalGAN's training data, whose decoded-image cache can hold gigabytes)
    shared_on_copy: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # ----- construction ---------------------------------------------------------------------
    @classmethod
    def make_config(cls, preset: str | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
        """The config for a preset plus explicit overrides; unknown keys raise ``KeyError``, values of
        the wrong type :class:`~fewcolor.methods.options.ConfigError`."""
        values: dict[str, Any] = {}
        if preset is not None:
            if preset not in cls.presets:
                raise KeyError(f"method {cls.name!r} has no preset {preset!r}; choose one of {sorted(cls.presets)}")
            values.update(cls.presets[preset])
        values.update(overrides or {})
        names = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise KeyError(f"unknown config keys for method {cls.name!r}: {unknown}; known: {sorted(names)}")
        check_config_values(cls.Config, values, cls.name)
        return cls.Config(**values)

    @classmethod
    def default_batch_size(cls, preset: str | None, fallback: int) -> int:
        """The batch size ``preset`` carries (``None`` = the paper's defaults, i.e. ``paper``), else ``fallback``."""
        return int(cls.preset_batch_sizes.get(preset or "paper", fallback))

    # ----- training -----------------------------------------------------------------------
    def train_transform(self, size: int, flip: bool = True) -> Transform:
        """The training images' transform (shorter side → ``size``, random ``size²`` crop, flip); a method
        whose paper crops from larger images (Iizuka: 224 crops of 256 images) overrides it."""
        return train_transform(size, flip=flip)

    def suggested_steps(self, num_images: int, batch_size: int) -> int | None:
        """The run length the paper's recipe implies for ``num_images`` training images (e.g. MetalGAN's
        epochs of query sets), used by ``fewcolor train`` when given neither ``--steps`` nor ``--epochs``;
        None (the default): no suggestion."""
        return None

    def learning_rates(self, step: int, total_steps: int) -> dict[str, float]:
        """Learning rate per optimiser name for ``step`` of ``total_steps`` (a step schedule); the loop sets
        it on every parameter group before the step. Empty (the default): the optimisers' own rates, constant.
        A pure function of the step, so resuming continues the schedule exactly."""
        return {}

    def setup(self, train_data: Dataset) -> None:
        """Data-dependent set-up before training (colour prior, clusters, memory size...)."""

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], step: int) -> Iterator[Phase]:
        raise NotImplementedError

    def images_per_step(self, batch_size: int) -> int:
        """Image-gradient evaluations of the generator in one loop step with this batch size.

        The benchmark gives every method the same budget in these units; a meta-learner whose one
        step runs an inner loop (MetalGAN) overrides it.
        """
        return batch_size

    # ----- test-time adaptation -----------------------------------------------------------
    def adapt(self, support_data: Dataset, steps: int, seed: int = 0, progress: bool = False) -> bool:
        """Adapt in place to a few support images with the method's own mechanism.

        Return ``True`` when the method adapted itself (MetalGAN: inner-loop steps on the support task,
        with a progress bar when ``progress``). The default returns ``False``:
        ``fewcolor.train.adapt.adapt`` then calls :meth:`write_support` and fine-tunes the method with
        the training loop for ``steps`` steps, so every method gets the same adaptation budget.
        """
        return False

    def write_support(self, support_data: Dataset, seed: int = 0) -> bool:
        """Prepare for fine-tuning on the support, without gradients (MemoPainter writes the support into
        its memory; Iizuka drops its class term, whose labels name training classes). Return ``True``
        when the support was written into the model; the default does nothing."""
        return False

    def adapt_settings(self) -> AdaptSettings:
        """Default steps and learning-rate factor of ``fewcolor adapt`` for this model."""
        return self.adapt_defaults

    # ----- inference --------------------------------------------------------------------------
    def working_resolution(self) -> int:
        """The longer side the pipeline scales an image to by default: the config's ``image_size``."""
        return int(getattr(self.config, "image_size", 256))

    def predict_ab(self, l: torch.Tensor, **options: Any) -> torch.Tensor:
        """Normalised L (B,1,H,W) -> normalised ab (B,2,H,W), H and W multiples of size_multiple."""
        raise NotImplementedError

    @classmethod
    def inference_option(cls, name: str) -> InferenceOption | None:
        """The declaration of inference option ``name``, or ``None`` when the method does not take it."""
        return next((o for o in cls.inference_options if o.name == name), None)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise :class:`InferenceOptionError` for an undeclared option or a value outside its declaration."""
        unknown = sorted(k for k, v in options.items() if v is not None and self.inference_option(k) is None)
        if unknown:  # both spellings: Python keyword and command-line flag
            given = ", ".join(f"{k} (--{k.replace('_', '-')})" for k in unknown)
            allowed = ", ".join(f"{o.name} ({o.flag})" for o in self.inference_options) or "none"
            raise InferenceOptionError(f"method {self.name!r} does not take inference option(s) {given}; it takes: "
                                       f"{allowed}")
        for key, value in options.items():
            opt = self.inference_option(key)
            if opt is not None and value is not None:
                opt.check(value, self.name)

    def export_blocker(self, options: Mapping[str, Any]) -> str | None:
        """Why :meth:`predict_ab` with these options is not one fixed network (so it cannot be exported as
        one ONNX graph), or ``None`` when it is. A method whose inference computes more than a forward pass
        (e.g. gradient steps at test time) overrides this."""
        return None

    def extra_metadata(self) -> dict[str, Any]:
        """JSON-serialisable facts stored in the checkpoint (e.g. which backbone was used)."""
        return {}

    def load_extra_metadata(self, meta: Mapping[str, Any]) -> None:
        """Restore what :meth:`extra_metadata` stored (called before ``load_state_dict``)."""

    # ----- frozen helpers outside the checkpoint -----------------------------------------------
    def auxiliary(self, name: str, build: Callable[[], T], *, key: Hashable = None,
                  device: torch.device | str | None = None) -> T:
        """The helper ``name`` (e.g. a frozen pretrained backbone), built by ``build()`` on first use.

        It is kept outside the module tree: not a registered sub-module, so its weights are not in
        ``state_dict()`` (checkpoints stay the method's own tensors) and ``.to()``, ``.train()`` and
        ``.eval()`` do not reach it. It is built again when ``key`` differs from the key it was built with
        (e.g. another backbone choice), and after :meth:`drop_auxiliary`. With ``device``, a helper that is an
        ``nn.Module`` is moved there (in place) before it is returned; other helpers (a tuple, an int8 copy
        that computes on the CPU) are returned as built, for the caller to place. If ``build()`` raises,
        nothing is kept.
        """
        store: dict[str, tuple[Hashable, Any]] = self.__dict__.setdefault("_auxiliary", {})
        entry = store.get(name)
        if entry is None or entry[0] != key:
            entry = (key, build())
            store[name] = entry
        value: T = entry[1]
        if device is not None and isinstance(value, nn.Module):
            value.to(device)
        return value

    def drop_auxiliary(self, name: str | None = None) -> None:
        """Forget the helper ``name`` (every helper when None), so the next :meth:`auxiliary` builds it again."""
        store: dict[str, tuple[Hashable, Any]] = self.__dict__.setdefault("_auxiliary", {})
        if name is None:
            store.clear()
        else:
            store.pop(name, None)

    def fresh_on_copy(self) -> dict[str, Any]:
        """Attributes a deep copy starts with instead of copies of the original's: caches derived from the
        weights (a copy is about to be adapted, so they would be stale). Empty by default."""
        return {}

    def __deepcopy__(self, memo: dict[int, Any]) -> Method:
        """A deep copy of the method (``fewcolor.train.adapt`` adapts one per episode) that shares the frozen
        helpers of :meth:`auxiliary` and the attributes named in :attr:`shared_on_copy` with the original,
        and takes :meth:`fresh_on_copy` for the derived caches; everything else (weights, buffers, config,
        metadata) is copied as ``copy.deepcopy`` would copy it."""
        new = type(self).__new__(type(self))
        memo[id(self)] = new
        fresh = self.fresh_on_copy()
        state: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key == "_auxiliary":
                state[key] = dict(value)  # the same helpers; dropping one in the copy leaves the original's
            elif key in fresh:
                state[key] = fresh[key]
            elif key in self.shared_on_copy:
                state[key] = value
            else:
                state[key] = copy.deepcopy(value, memo)
        new.__dict__.update(state)
        return new

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")
