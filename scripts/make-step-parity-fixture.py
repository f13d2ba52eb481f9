#!/usr/bin/env python3
"""Writes the step-parity fixtures of tests/step_parity.rs from the reference implementation.

    python3 scripts/make-step-parity-fixture.py REFERENCE_CHECKOUT [OUT_DIR]

REFERENCE_CHECKOUT is a checkout of github.com/kostas1515/AGLU; its classification/ folder is
imported (model, parameter groups), not copied. OUT_DIR defaults to tests/fixtures/step_parity.
Needs torch, numpy and safetensors (CPU is enough).

Per case: the reference CIFAR ResNet with 1 block per stage (ResNet-8, the smallest that has
conv, BatchNorm, identity and option-A shortcuts in every stage) gets seeded initial weights
(saved as .safetensors), then trains STEPS steps on fixed batches of 8 random 32x32 images
exactly as the reference train.py: model.train(), CrossEntropyLoss, SGD momentum 0.9 with the
parameter groups of utils.set_weight_decay (weight decay on every weight, bias and norm
parameter; 0 on kappa_param/lambda_param), constant lr (the reference steps its schedule per
epoch, so a few steps see one lr). The fixture records the loss of every step, the eval-mode
logits of the first batch after the last step, and the same numbers from a float64 run of the
same reference code: their difference is the float32 rounding noise of the reference itself,
which sizes the test's tolerance.

One more case is the transformer recipe (the paper's Table 10): timm's VisionTransformer at the
`vit_test` geometry with the reference AGLU (`UniRect`) in its MLPs, trained by
torch.optim.AdamW with timm's parameter groups (`param_groups_weight_decay`: no decay on
biases, norms, embeddings and other 1-D parameters such as κ/λ) and the global gradient norm
clipped to 1 (`clip_grad_norm_`). Its fixture carries repro's equivalent `train:` section. Needs
timm as well.
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

reference = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join("tests", "fixtures", "step_parity")
sys.path.insert(0, os.path.join(reference, "classification"))
# The reference cosine classifier allocates its weight with .cuda(); stay on the CPU.
torch.Tensor.cuda = lambda self, *args, **kwargs: self
import resnet_cifar as rc  # noqa: E402  (needs the path above)
import utils  # noqa: E402

STEPS, BATCH, CLASSES, LR, WD = 4, 8, 10, 0.1, 5e-4
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CASES = [
    ("resnet8_relu_linear", rc.BasicBlock, None, {"arch": "resnet8", "num_classes": CLASSES}),
    # The paper's CIFAR-LT model at depth 8: APA* SE gate (LayerNorm, APA) and AGLU everywhere,
    # cosine classifier. The SE dropout is set to 0: its random mask cannot be matched.
    ("se_resnet8_apa_aglu_cosine", rc.Se_Block_Gumbel, "cosine",
     {"arch": "resnet8", "num_classes": CLASSES, "activation": "aglu", "attention": "se", "gate": "apa",
      "attention_layernorm": True, "attention_dropout": 0.0, "reduction": 4, "classifier": "cosine",
      "cosine_scale": 16.0, "lambda_grad": "reference"}),
]


def batches():
    """Pixels as CIFAR bytes, normalised as the reference's ToTensor + Normalize (float32)."""
    rng = np.random.RandomState(12345)
    pixels = rng.randint(0, 256, size=(STEPS, BATCH, 3, 32, 32)).astype(np.uint8)
    labels = rng.randint(0, CLASSES, size=(STEPS, BATCH)).astype(np.int64)
    x = torch.from_numpy(pixels).float().div(255)
    mean = torch.tensor(MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 1, 3, 1, 1)
    return pixels, labels, (x - mean) / std


# The transformer case: (name, repro model section, repro train section), built by timm.
# Weight decay 5 (not a recipe's 0.05): AdamW decays by lr·wd per step, and at 0.05 four steps
# move the loss by 1e-6 whether or not the embeddings are decayed, below the test's tolerance;
# at 5 decaying them moves it by 1.5e-4, so the parameter groups are tested too.
VIT_CASE = ("vit_test_aglu_adamw",
            {"arch": "vit_test", "num_classes": CLASSES, "activation": "aglu", "image_size": 32,
             "lambda_grad": "reference"},
            {"optimizer": "adamw", "lr": 1e-3, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 5.0,
             "norm_weight_decay": 0.0, "bias_weight_decay": 0.0, "embedding_weight_decay": 0.0,
             "adaptive_weight_decay": 0.0, "clip_grad_norm": 1.0})


def build_vit():
    from timm.models.vision_transformer import VisionTransformer
    model = VisionTransformer(img_size=32, patch_size=4, embed_dim=48, depth=2, num_heads=3,
                              num_classes=CLASSES, mlp_ratio=4.0, qkv_bias=True)
    for block in model.blocks:
        block.mlp.act = rc.UniRect()
    with torch.no_grad():
        # timm starts these at zero; the steps should move them from somewhere nonzero.
        model.cls_token.normal_(0, 0.02)
        model.head.weight.normal_(0, 0.02)
    return model


def train_vit(model, x, labels, dtype, config):
    from timm.optim import param_groups_weight_decay
    model = model.to(dtype)
    model.train()
    # As timm's create_optimizer_v2: the model names its embeddings (no_weight_decay()).
    groups = param_groups_weight_decay(model, weight_decay=config["weight_decay"],
                                       no_weight_decay_list=model.no_weight_decay())
    optimizer = torch.optim.AdamW(groups, lr=config["lr"], betas=tuple(config["betas"]), eps=config["eps"])
    criterion = torch.nn.CrossEntropyLoss()
    losses, norms = [], []
    for step in range(STEPS):
        loss = criterion(model(x[step].to(dtype)), torch.from_numpy(labels[step]))
        optimizer.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), config["clip_grad_norm"])))
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(x[0].to(dtype)).double().flatten().tolist()
    return losses, logits, groups, norms


def build(block, use_norm):
    model = rc.ResNet_s(block, [1, 1, 1], num_classes=CLASSES, use_norm=use_norm)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def train(model, x, labels, dtype):
    model = model.to(dtype)
    model.train()
    groups = utils.set_weight_decay(
        model, WD, norm_weight_decay=None,
        custom_keys_weight_decay=[("lambda_param", 0.0), ("kappa_param", 0.0)])
    optimizer = torch.optim.SGD(groups, lr=LR, momentum=0.9, weight_decay=WD)
    criterion = torch.nn.CrossEntropyLoss()
    losses = []
    for step in range(STEPS):
        loss = criterion(model(x[step].to(dtype)), torch.from_numpy(labels[step]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(x[0].to(dtype)).double().flatten().tolist()
    return losses, logits, groups


def main():
    os.makedirs(out, exist_ok=True)
    pixels, labels, x = batches()
    with open(os.path.join(out, "inputs.u8"), "wb") as f:
        f.write(pixels.tobytes())
    for name, block, use_norm, config in CASES:
        model, (losses, logits, groups), (losses64, logits64, _) = train_twice(
            name, lambda: build(block, use_norm), lambda m, dtype: train(m, x, labels, dtype))
        decay = decays(model, groups)
        fixture = {
            "name": name,
            "reference": "github.com/kostas1515/AGLU classification/ (resnet_cifar.ResNet_s, "
                         "utils.set_weight_decay, torch.optim.SGD as train.py)",
            "model": config,
            "weights": f"{name}.safetensors",
            "inputs": "inputs.u8",
            "input_shape": [STEPS, BATCH, 3, 32, 32],
            "normalize_mean": MEAN,
            "normalize_std": STD,
            "labels": labels.tolist(),
            "lr": LR,
            "momentum": 0.9,
            "weight_decay": WD,
            "weight_decay_by_param": decay,
            "losses": losses,
            "losses_f64": losses64,
            "eval_logits_batch0": logits,
            "eval_logits_batch0_f64": logits64,
            "torch": torch.__version__,
        }
        write(fixture, losses, losses64)
    write_vit(pixels, labels, x)


def write(fixture, losses, losses64):
    name = fixture["name"]
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(fixture, f, indent=1)
    noise = max(abs(a - b) for a, b in zip(losses, losses64))
    print(f"{name}: losses {losses}  |f32 - f64| max {noise:.3g}")


def train_twice(name, build, train):
    """Trains a seeded model in float32, and its twin from the same initial weights (saved as
    the fixture's) in float64; returns the first model and both runs' results."""
    torch.manual_seed(0)
    model = build()
    initial = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    save_file(initial, os.path.join(out, f"{name}.safetensors"))
    first = train(model, torch.float32)
    twin = build()
    twin.load_state_dict(initial)
    return model, first, train(twin, torch.float64)


def decays(model, groups):
    """Each parameter's weight decay in the optimiser's groups, by state-dict key."""
    names = {id(p): k for k, p in model.named_parameters()}
    return {names[id(p)]: g["weight_decay"] for g in groups for p in g["params"]}


def write_vit(pixels, labels, x):
    name, model_config, train_config = VIT_CASE
    model, (losses, logits, groups, norms), (losses64, logits64, _, _) = train_twice(
        name, build_vit, lambda m, dtype: train_vit(m, x, labels, dtype, train_config))
    decay = decays(model, groups)
    write({
        "name": name,
        "reference": "timm VisionTransformer with the reference's UniRect (AGLU) in its MLPs, "
                     "timm.optim.param_groups_weight_decay, torch.optim.AdamW, clip_grad_norm_",
        "model": model_config,
        "train": train_config,
        "weights": f"{name}.safetensors",
        "inputs": "inputs.u8",
        "input_shape": [STEPS, BATCH, 3, 32, 32],
        "normalize_mean": MEAN,
        "normalize_std": STD,
        "labels": labels.tolist(),
        "lr": train_config["lr"],
        "weight_decay_by_param": decay,
        "grad_norms_before_clipping": norms,
        "losses": losses,
        "losses_f64": losses64,
        "eval_logits_batch0": logits,
        "eval_logits_batch0_f64": logits64,
        "torch": torch.__version__,
    }, losses, losses64)


if __name__ == "__main__":
    main()
