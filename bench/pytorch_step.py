"""PyTorch side of the comparison: the same CIFAR ResNet-32 training step and the same
activation layers as `cargo bench --bench train_step` / `--bench activation`, on the CPU with
the given number of threads. Prints one `name value unit` line per measurement."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)


class Block(nn.Module):
    """CIFAR basic block with the option-A shortcut (He et al. 2016, §4.2)."""

    def __init__(self, inputs, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if stride != 1 or inputs != planes else 0
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.pad:
            short = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + short)


def resnet32(classes=100):
    layers, inputs = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for planes, stride in [(16, 1), (32, 2), (64, 2)]:
        for i in range(5):
            layers.append(Block(inputs, planes, stride if i == 0 else 1))
            inputs = planes
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def median_time(step, reps):
    step()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return sorted(times)[reps // 2]


model = resnet32()
optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
x, y = torch.randn(128, 3, 32, 32), torch.arange(128) % 100


def train_step():
    optimiser.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimiser.step()


print(f"resnet32_relu_train_step {128 / median_time(train_step, 3):.1f} img/s")

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
