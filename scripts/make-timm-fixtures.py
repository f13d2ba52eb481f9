#!/usr/bin/env python3
"""Writes `repro verify` fixtures for the Vision and Swin Transformers, built by timm with random weights.

    python3 scripts/make-timm-fixtures.py REFERENCE_CHECKOUT OUT_DIR [--full]

REFERENCE_CHECKOUT is a checkout of github.com/kostas1515/AGLU: its AGLU module (`UniRect` in
classification/resnet_cifar.py) is imported, not copied, and put in place of GELU in every MLP,
as the paper's Table 10 does. Needs torch, timm and safetensors (all from PyPI; timm builds its
models offline). Every case is timm's own `VisionTransformer` or `SwinTransformer` with random
weights, random LayerNorm scales and shifts, random relative position biases and κ/λ, run in
eval mode on a random batch.

Without --full only the small `vit_test` and `swin_test` cases are written (a few hundred kB
each: they are the committed tests/fixtures/models/{vit,swin}_test_*). --full adds ViT-B/16
(~350 MB per format) and Swin-T (~110 MB) at 224², not committed. Then:
`repro verify --weights both OUT_DIR/*.json`.
"""
import json
import os
import sys

import timm
import torch
from safetensors.torch import save_file
from timm.layers import Mlp
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer

# The geometry repro's `arch` names stand for (crates/nn/src/models/mod.rs).
VIT_TEST = {"patch_size": 4, "embed_dim": 48, "depth": 2, "num_heads": 3}
VIT_B16 = {"patch_size": 16, "embed_dim": 768, "depth": 12, "num_heads": 12}
SWIN_TEST = {"patch_size": 2, "embed_dim": 24, "depths": (2, 2), "num_heads": (2, 4), "window_size": 4}
SWIN_T = {"patch_size": 4, "embed_dim": 96, "depths": (2, 2, 6, 2), "num_heads": (3, 6, 12, 24), "window_size": 7}


def cases(full):
    # (name, arch, timm class, geometry, image side, batch, activation). swin_test at 32²: token
    # grids 16 and 8, so both stages have shifted windows and their mask.
    yield "vit_test_gelu", "vit_test", VisionTransformer, VIT_TEST, 32, 3, "gelu"
    yield "vit_test_aglu", "vit_test", VisionTransformer, VIT_TEST, 32, 3, "aglu"
    yield "swin_test_gelu", "swin_test", SwinTransformer, SWIN_TEST, 32, 3, "gelu"
    yield "swin_test_aglu", "swin_test", SwinTransformer, SWIN_TEST, 32, 3, "aglu"
    if full:
        yield "vit_b16_gelu", "vit_b16", VisionTransformer, VIT_B16, 224, 2, "gelu"
        yield "vit_b16_aglu", "vit_b16", VisionTransformer, VIT_B16, 224, 2, "aglu"
        yield "swin_t_gelu", "swin_t", SwinTransformer, SWIN_T, 224, 2, "gelu"
        yield "swin_t_aglu", "swin_t", SwinTransformer, SWIN_T, 224, 2, "aglu"


def randomise(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
            if isinstance(module, torch.nn.Linear):
                # timm's std of 0.02 leaves logits near zero, where a wrong layer barely shows.
                module.weight.normal_(0, module.in_features ** -0.5)
        # timm starts the class token near zero and biases at zero; random values exercise them.
        if isinstance(model, VisionTransformer):
            model.cls_token.normal_(0, 0.5)
            model.pos_embed.normal_(0, 0.5)
        for key, param in model.named_parameters():
            if key.endswith("relative_position_bias_table"):
                param.normal_(0, 0.5)
            elif key.endswith(".bias"):
                param.normal_(0, 0.05)
            elif key.endswith("kappa_param"):
                param.uniform_(0.5, 1.5)
            elif key.endswith("lambda_param"):
                param.uniform_(0.2, 1.0)


def main():
    args = [a for a in sys.argv[1:] if a != "--full"]
    if len(args) != 2:
        sys.exit(__doc__)
    reference, out = args
    sys.path.insert(0, os.path.join(reference, "classification"))
    import resnet_cifar  # noqa: E402  (needs the path above)

    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, arch, kind, geometry, side, batch, activation in cases("--full" in sys.argv):
        model = kind(img_size=side, num_classes=10, mlp_ratio=4.0, qkv_bias=True, **geometry)
        if activation == "aglu":
            for mlp in (m for m in model.modules() if isinstance(m, Mlp)):
                mlp.act = resnet_cifar.UniRect()
        randomise(model)
        model.eval()
        x = torch.randn(batch, 3, side, side)
        with torch.no_grad():
            logits = model(x)
            exact = model.double()(x.double())
        state = {k: v.contiguous() for k, v in model.float().state_dict().items()}
        save_file(state, os.path.join(out, name + ".safetensors"))
        torch.save(state, os.path.join(out, name + ".pth"))
        # The tolerance: twenty times the float32 model's own distance from float64.
        spread = float((logits.double() - exact).abs().max())
        fixture = {
            "name": name,
            "note": f"timm {timm.__version__} {kind.__name__} ({arch} geometry), MLP activation "
                    f"{'the reference AGLU (UniRect, shared κ/λ)' if activation == 'aglu' else 'GELU'}, "
                    f"10 classes, eval mode; float32 vs float64 spread {spread:.2e}",
            "model": {"arch": arch, "num_classes": 10, "activation": activation, "image_size": side},
            "weights": name + ".safetensors", "weights_pth": name + ".pth", "mode": "eval",
            "tolerance": {"max_abs": max(20 * spread, 1e-5)},
            "input_shape": list(x.shape), "input": x.flatten().tolist(),
            "logits_shape": list(logits.shape), "logits": logits.flatten().tolist(),
            "state_dict_keys": sorted(state),
        }
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(fixture, f)
        print(f"{name}: max |logit| {float(logits.abs().max()):.4g}, float32 vs float64 {spread:.2e}")


if __name__ == "__main__":
    main()
