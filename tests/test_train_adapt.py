import torch

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
