import pytest
import torch

from fewcolor.methods.base import AdaptSettings
from fewcolor.methods.registry import build_method
from fewcolor.train.adapt import adapt
from helpers import TensorColourDataset, smooth_colour_images


def test_finetune_adaptation_lowers_support_loss_and_leaves_input_untouched():
    torch.manual_seed(0)
    method = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    before = {k: v.clone() for k, v in method.state_dict().items()}
    support = TensorColourDataset(smooth_colour_images(3, 16, seed=5))
    batch = torch.utils.data.default_collate([support[i] for i in range(3)])

    def support_l1(m):
        m.eval()
        with torch.no_grad():
            return (m.predict_ab(batch["l"]) - batch["ab"]).abs().mean().item()

    adapted, how = adapt(method, support, steps=30, batch_size=3)
    assert how == "finetune"
    assert support_l1(adapted) < 0.85 * support_l1(method)
    for k, v in method.state_dict().items():
        assert torch.equal(v, before[k]), f"adapt modified the input method at {k}"
    _same, how = adapt(method, support, steps=0)
    assert how == "none"


def test_metalgan_adapts_with_its_own_inner_loop():
    torch.manual_seed(0)
    method = build_method("metalgan", "tiny", {"image_size": 16})
    support = TensorColourDataset(smooth_colour_images(3, 16, seed=7))
    batch = torch.utils.data.default_collate([support[i] for i in range(3)])
    before = {k: v.clone() for k, v in method.state_dict().items()}

    def support_l1(m):
        m.eval()
        with torch.no_grad():
            return (m.predict_ab(batch["l"], adapt_steps=0) - batch["ab"]).abs().mean().item()

    adapted, how = adapt(method, support, steps=60)
    assert how == "own"
    assert support_l1(adapted) < 0.75 * support_l1(method)
    assert all(torch.equal(v, before[k]) for k, v in method.state_dict().items())
    assert method.images_per_step(2) == 2 * method.config.inner_steps * method.config.inner_batch_size


@pytest.mark.parametrize("name", ["unet", "cgan", "cic", "iizuka", "memopainter", "res-cgan"])
def test_one_shot_finetune_works_for_every_method(name):
    # a one-image support means batches of one: BN layers on vectors must cope (Iizuka's global net did not)
    torch.manual_seed(0)
    method = build_method(name, "tiny", {"image_size": 32})
    support = TensorColourDataset(smooth_colour_images(1, 32, seed=3))
    before = {k: v.clone() for k, v in method.state_dict().items() if v.is_floating_point()}
    adapted, how = adapt(method, support, steps=2, batch_size=16)
    assert how == ("write+finetune" if name == "memopainter" else "finetune")
    after = adapted.state_dict()
    assert any(not torch.equal(after[k], v) for k, v in before.items())
    with torch.no_grad():
        ab = adapted.predict_ab(support[0]["l"][None])
    assert ab.shape == (1, 2, 32, 32) and torch.isfinite(ab).all()


def test_finetune_lr_factor_scales_every_fresh_optimiser() -> None:
    torch.manual_seed(0)
    method = build_method("cgan", "tiny", {"image_size": 16, "depth": 3})
    support = TensorColourDataset(smooth_colour_images(2, 16, seed=1))

    def largest_change(factor: float) -> float:
        adapted, _ = adapt(method, support, steps=2, batch_size=2, lr_factor=factor)
        return max((adapted.state_dict()[k] - v).abs().max().item()
                   for k, v in method.state_dict().items() if v.is_floating_point() and "running" not in k)

    small, full = largest_change(1e-6), largest_change(1.0)
    assert 0 < small < 1e-4 * full  # Adam's step is proportional to its learning rate


def test_iizuka_fine_tunes_on_a_support_without_training_labels() -> None:
    # folder labels at training; a support image has label -1: the class term must not turn the loss NaN
    # (every step would be skipped and the model would never adapt)
    torch.manual_seed(0)
    method = build_method("iizuka", "tiny", {"image_size": 32, "labels": "folders"})
    train_data = TensorColourDataset(smooth_colour_images(4, 32, seed=8), labels=[0, 1, 0, 1])
    method.setup(train_data)
    assert method.label_source == "folders"
    support = TensorColourDataset(smooth_colour_images(2, 32, seed=9))
    adapted, how = adapt(method, support, steps=3, batch_size=2)
    assert how == "finetune" and not adapted.class_term and method.class_term
    after = adapted.state_dict()
    changed = [k for k, v in method.state_dict().items() if v.is_floating_point() and not torch.equal(after[k], v)]
    assert changed and all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())


def _norm_state(method: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in method.state_dict().items() if "running_" in k or "num_batches" in k}


def test_keep_norm_statistics_fine_tunes_the_weights_and_keeps_the_running_statistics() -> None:
    torch.manual_seed(0)
    method = build_method("unet", "tiny", {"image_size": 16, "depth": 3})
    support = TensorColourDataset(smooth_colour_images(2, 16, seed=3))
    before = _norm_state(method)
    assert before  # the tiny U-Net has batch norms
    kept, _ = adapt(method, support, steps=3, batch_size=2)  # unet: statistics updated (its default)
    assert any(not torch.equal(v, _norm_state(kept)[k]) for k, v in before.items())

    class Keeping(type(method)):  # type: ignore[misc]
        adapt_defaults = AdaptSettings(steps=3, keep_norm_statistics=True)

    keeping = Keeping(method.config)
    keeping.load_state_dict(method.state_dict())
    adapted, how = adapt(keeping, support, steps=3, batch_size=2)
    assert how == "finetune"
    assert all(torch.equal(v, _norm_state(adapted)[k]) for k, v in before.items())
    bn_weights = [k for k in before if k.endswith("running_mean")]
    after = adapted.state_dict()
    assert any(not torch.equal(after[k.replace("running_mean", "weight")], method.state_dict()[k.replace(
        "running_mean", "weight")]) for k in bn_weights)  # the batch norms' affine parameters still train


def test_base_adapts_with_its_running_statistics_kept_unless_told_otherwise() -> None:
    torch.manual_seed(0)
    method = build_method("base", "tiny", {"encoder_pretrained": False})
    assert method.adapt_settings().keep_norm_statistics
    support = TensorColourDataset(smooth_colour_images(2, 32, seed=4))
    before = _norm_state(method)
    kept, _ = adapt(method, support, steps=2, batch_size=2)
    assert all(torch.equal(v, _norm_state(kept)[k]) for k, v in before.items())
    updated, _ = adapt(method, support, steps=2, batch_size=2, keep_norm_statistics=False)
    assert any(not torch.equal(v, _norm_state(updated)[k]) for k, v in before.items())
