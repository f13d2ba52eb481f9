#!/usr/bin/env python3
"""Writes `repro verify` fixtures for ImageNet-family models built by the reference code.

    python3 scripts/make-reference-fixtures.py REFERENCE_CHECKOUT OUT_DIR

REFERENCE_CHECKOUT is a checkout of github.com/kostas1515/AGLU (its classification/ folder is
imported, not copied). Needs torch and safetensors. Each model gets random weights, BatchNorm
and LayerNorm statistics and κ/λ, runs in eval mode on a random 2×3×64×64 batch, and is saved as
.safetensors and .pth next to a fixture JSON (~100 MB per model and format, so they are not
committed). Then: `repro verify --weights both OUT_DIR/*.json`.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

reference, out = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(reference, "classification"))
# The reference cosine classifier allocates with .cuda(); build on the CPU instead.
torch.Tensor.cuda = lambda self, *args, **kwargs: self
import resnet_pytorch as rp  # noqa: E402  (needs the path above)

APA_STAR = {"attention_layernorm": True, "attention_dropout": 0.1, "reduction": 16}
CASES = [
    ("resnet50_relu_linear", rp.Bottleneck, None, {}, {"arch": "resnet50"}),
    ("se_resnet50_apa_aglu_cosine", rp.SEBottleneckGumbel, "cosine", {},
     {"arch": "resnet50", "activation": "aglu", "attention": "se", "gate": "apa", "classifier": "cosine", **APA_STAR}),
    ("cbam_resnext50_apa_aglu", rp.CBAMBottleneckGumbel, None, {"groups": 32, "width_per_group": 4},
     {"arch": "resnext50_32x4d", "activation": "aglu", "attention": "cbam", "gate": "apa", **APA_STAR}),
    ("spatial_resnet50_sigmoid", rp.SpatialBottleneck, None, {},
     {"arch": "resnet50", "attention": "spatial", "gate": "sigmoid"}),
]


def randomise(model):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
        for key, param in model.named_parameters():
            if key.endswith("kappa_param"):
                param.uniform_(0.5, 1.5)
            elif key.endswith("lambda_param"):
                param.uniform_(0.2, 1.0)


def main():
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name, block, use_norm, extra, config in CASES:
        model = rp.ResNet(block, [3, 4, 6, 3], use_norm, num_classes=10, **extra)
        randomise(model)
        model.eval()
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            logits = model(x)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(out, name + ".safetensors"))
        torch.save(state, os.path.join(out, name + ".pth"))
        fixture = {
            "name": name, "model": {**config, "num_classes": 10},
            "weights": name + ".safetensors", "weights_pth": name + ".pth", "mode": "eval",
            "tolerance": {"max_abs": 1e-4},
            "input_shape": list(x.shape), "input": x.flatten().tolist(),
            "logits_shape": list(logits.shape), "logits": logits.flatten().tolist(),
            "state_dict_keys": sorted(state),
        }
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(fixture, f)
        print(f"{name}: max |logit| {float(logits.abs().max()):.4g}")


if __name__ == "__main__":
    main()
