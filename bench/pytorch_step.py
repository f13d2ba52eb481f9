"""PyTorch side of the comparison: the same CIFAR ResNet-32 training steps (ReLU; AGLU with
APA* attention and a cosine head, written here from the paper's definitions and trained by
autograd, as the reference code does), 3×3 convolutions and activation layers as `cargo bench
--bench train_step` / `conv` / `activation`, on the CPU with the given number of threads.
With the group `vit`, instead: ViT-B/16 training steps (batch 32, 224², timm's model with GELU
and with the AGLU below in its MLPs; needs timm). With `gpt2`: GPT-2 small training steps (4
sequences of 1024 tokens, Hugging Face's GPT2LMHeadModel with GELU-tanh and with the AGLU below
in its MLPs, AdamW; needs transformers). Prints one `name value unit` line per measurement.

    python3 bench/pytorch_step.py [THREADS] [resnet|vit|gpt2]
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
group = sys.argv[2] if len(sys.argv) > 2 else "resnet"
torch.set_num_threads(threads)


def apa(z, kappa, lam):
    """APA (paper Eq. 5) as exp(log σ(κz − ln λ)/λ), λ floored; autograd differentiates it."""
    lam = lam.clamp(min=1e-4)
    return torch.exp(F.logsigmoid(kappa * z - torch.log(lam)) / lam)


class Aglu(nn.Module):
    """z·APA(z) with one learnable (κ, λ), initialised in the ranges repro uses."""

    def __init__(self):
        super().__init__()
        self.kappa = nn.Parameter(torch.empty(1).uniform_(0.8, 1.2))
        self.lam = nn.Parameter(torch.empty(1).uniform_(0.0, 1.0))

    def forward(self, z):
        return z * apa(z, self.kappa, self.lam)


class ApaStar(nn.Module):
    """APA*: pooled vector → LayerNorm → Linear → ReLU → Linear → dropout → APA gate."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.fc1 = nn.Linear(channels, channels // reduction, bias=False)
        self.fc2 = nn.Linear(channels // reduction, channels, bias=False)
        self.drop = nn.Dropout(0.1)
        self.kappa = nn.Parameter(torch.empty(1).uniform_(-1.0, 0.0))
        self.lam = nn.Parameter(torch.empty(1).uniform_(0.0, 1.0))

    def forward(self, x):
        w = self.drop(self.fc2(F.relu(self.fc1(self.norm(x.mean((2, 3)))))))
        return x * apa(w, self.kappa, self.lam)[:, :, None, None]


class Cosine(nn.Module):
    """s·(‖x‖/(1+‖x‖))·x̂·Ŵᵀ with s = 16."""

    def __init__(self, features, classes):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, features).uniform_(-0.125, 0.125))

    def forward(self, x):
        squashed = x / (1 + x.norm(dim=1, keepdim=True))
        return 16 * squashed @ F.normalize(self.weight, dim=1).t()


class Block(nn.Module):
    """CIFAR basic block with the option-A shortcut (He et al. 2016, §4.2), its activation and
    attention chosen as in repro's model config."""

    def __init__(self, inputs, planes, stride, act, attention):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.act1 = act()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.attention = ApaStar(planes) if attention else nn.Identity()
        self.act2 = act()
        self.pad = planes // 4 if stride != 1 or inputs != planes else 0
        self.stride = stride

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.attention(self.bn2(self.conv2(out)))
        short = x
        if self.pad:
            short = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return self.act2(out + short)


def resnet32(classes=100, act=nn.ReLU, attention=False, cosine=False):
    layers, inputs = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), act()], 16
    for planes, stride in [(16, 1), (32, 2), (64, 2)]:
        for i in range(5):
            layers.append(Block(inputs, planes, stride if i == 0 else 1, act, attention))
            inputs = planes
    head = Cosine(64, classes) if cosine else nn.Linear(64, classes)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def median_time(step, reps):
    step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[reps // 2]


def images_per_second(model, batch, side, steps):
    x, y = torch.randn(batch, 3, side, side), torch.arange(batch) % 100
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)

    def train_step():
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()

    return batch / median_time(train_step, steps)


def resnet_group():
    print(f"resnet32_relu_train_step {images_per_second(resnet32(), 128, 32, 9):.1f} img/s")
    aglu_apa = resnet32(act=Aglu, attention=True, cosine=True)
    print(f"resnet32_aglu_apa_train_step {images_per_second(aglu_apa, 128, 32, 9):.1f} img/s")

    for channels, size in [(16, 32), (32, 16), (64, 8)]:
        inp = torch.randn(128, channels, size, size, requires_grad=True)
        weight = torch.randn(channels, channels, 3, 3, requires_grad=True)
        grad = torch.randn(128, channels, size, size)

        def conv():
            F.conv2d(inp, weight, padding=1).backward(grad)

        print(f"conv3x3_{channels}ch_{size}px_fwd_bwd {1e3 * median_time(conv, 10):.1f} ms")

    z = torch.randn(128, 64, 32, 32)
    kappa, lam = torch.tensor(1.0, requires_grad=True), torch.tensor(0.5, requires_grad=True)

    def layer(f):
        def run():
            inp = z.clone().requires_grad_()
            f(inp).sum().backward()
        return run

    def aglu(t):
        # The reference formulation: exp(log σ(κz − ln λ)/λ)·z with autograd.
        return t * torch.exp(F.logsigmoid(kappa * t - torch.log(lam)) / lam)

    for name, f in [("relu", F.relu), ("gelu", F.gelu), ("silu", F.silu), ("aglu", aglu)]:
        print(f"{name}_layer_fwd_bwd {1e3 * median_time(layer(f), 10):.1f} ms")


def vit_group():
    from timm.models.vision_transformer import VisionTransformer

    for name, act in [("gelu", nn.GELU), ("aglu", Aglu)]:
        model = VisionTransformer(img_size=224, patch_size=16, embed_dim=768, depth=12, num_heads=12,
                                  num_classes=1000, act_layer=act)
        print(f"vit_b16_{name}_train_step {images_per_second(model, 32, 224, 3):.2f} img/s")


def gpt2_group():
    from transformers import GPT2Config, GPT2LMHeadModel

    batch, length, vocab = 4, 1024, 50257
    x = (torch.arange(batch * length) * 7919 % vocab).view(batch, length)
    y = (x + 1) % vocab
    for name in ["gelu_tanh", "aglu"]:
        config = GPT2Config(vocab_size=vocab, n_positions=length, n_embd=768, n_layer=12, n_head=12,
                            activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        model = GPT2LMHeadModel(config)
        if name == "aglu":
            for block in model.transformer.h:
                block.mlp.act = Aglu()
        optimiser = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1)

        def train_step():
            optimiser.zero_grad()
            logits = model(x).logits
            F.cross_entropy(logits.view(-1, vocab), y.view(-1)).backward()
            optimiser.step()

        print(f"gpt2_{name}_train_step {batch * length / median_time(train_step, 3):.1f} tok/s")


{"resnet": resnet_group, "vit": vit_group, "gpt2": gpt2_group}[group]()
