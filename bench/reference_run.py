#!/usr/bin/env python3
"""Runs the reference classification/train.py on the CPU, offline, and evaluates its final model
per class.

    python3 bench/reference_run.py REFERENCE_CHECKOUT SEED RESULT_JSON -- TRAIN_PY_ARGS...

Run it from a folder three levels below the one holding `datasets/cifar-10-batches-py` (the
reference reads CIFAR from the fixed relative path '../../../datasets/').

The reference's training code is not changed. Shims, applied here before it is imported:
  1. `catalyst` (imported by train.py for samplers the random sampler never uses) is a stub
     module whose samplers raise if used.
  2. torchvision's CIFAR md5 checks (data files and batches.meta) are bypassed: the pickles are rewritten from the JPEG copy of
     CIFAR-10, so their checksums cannot be the official ones, and without the check passing
     torchvision tries to download.
  3. `torch.Tensor.cuda` returns the tensor itself: the cosine classifier allocates its weight
     with `.cuda()`.
  4. `custom.IIFLoss` defaults to device 'cpu' instead of 'cuda'.
  5. The reference seeds nothing but the long-tailed subset; torch, numpy and random are seeded
     with SEED here so that runs are repeatable (numpy is reseeded by the subset construction
     itself, as in the reference).
After training, the last epoch's checkpoint (the reference's `checkpoint.pth`) is evaluated on
the test set as the reference's evaluate() does (PC-Softmax via `criterion(output, infer=True)`
for `--criterion iif`), per class; repro reports its last epoch too.
"""
import json
import os
import random
import sys
import time
import types

reference, seed, result_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
train_args = sys.argv[sys.argv.index("--") + 1:]
sys.path.insert(0, os.path.join(os.path.abspath(reference), "classification"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402


def _unused_sampler(*args, **kwargs):
    raise RuntimeError("catalyst samplers are stubbed out by bench/reference_run.py")


catalyst = types.ModuleType("catalyst")
catalyst_data = types.ModuleType("catalyst.data")
catalyst_data.BalanceClassSampler = _unused_sampler
catalyst_data.DistributedSamplerWrapper = _unused_sampler
catalyst.data = catalyst_data
sys.modules["catalyst"] = catalyst
sys.modules["catalyst.data"] = catalyst_data

torchvision.datasets.CIFAR10._check_integrity = lambda self: True
torchvision.datasets.cifar.check_integrity = lambda *args, **kwargs: True
torch.Tensor.cuda = lambda self, *args, **kwargs: self

import custom  # noqa: E402

_iif_init = custom.IIFLoss.__init__


def _iif_init_cpu(self, *args, **kwargs):
    kwargs.setdefault("device", "cpu")
    _iif_init(self, *args, **kwargs)


custom.IIFLoss.__init__ = _iif_init_cpu

import imbalanced_dataset  # noqa: E402
import initialise_model  # noqa: E402
import train  # noqa: E402

torch.manual_seed(seed)
np.random.seed(seed)
random.seed(seed)

args = train.get_args_parser().parse_args(train_args)
start = time.time()
train.main(args)
train_wall = time.time() - start

# Per-class accuracy of the final model, as the reference's evaluate() computes top-1.
checkpoint = torch.load(os.path.join(args.output_dir, "checkpoint.pth"), map_location="cpu", weights_only=False)
train_set, test_set = imbalanced_dataset.load_cifar(args)
classes = len(train_set.get_cls_num_list())
model = initialise_model.get_model(args, classes)
model.load_state_dict(checkpoint["model"])
model.eval()
criterion = initialise_model.get_criterion(args, train_set, model)
loader = torch.utils.data.DataLoader(test_set, batch_size=256, shuffle=False)
correct = np.zeros(classes)
total = np.zeros(classes)
with torch.inference_mode():
    for image, target in loader:
        output = model(image)
        if hasattr(criterion, "iif"):
            output = criterion(output, infer=True)
        pred = output.argmax(1)
        for t, p in zip(target.tolist(), pred.tolist()):
            total[t] += 1
            correct[t] += t == p
with open(result_path, "w") as f:
    json.dump({
        "implementation": "reference",
        "seed": seed,
        "epochs": args.epochs,
        "top1": float(correct.sum() / total.sum() * 100),
        "per_class": (correct / total * 100).tolist(),
        "train_counts": train_set.get_cls_num_list(),
        "train_wall_s": train_wall,
    }, f)
