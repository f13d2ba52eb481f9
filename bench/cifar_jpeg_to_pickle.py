#!/usr/bin/env python3
"""Writes a CIFAR-10 image folder (`train/<class>/*.jpg`, `test/<class>/*.jpg`) in the official
python pickle layout the reference reads through torchvision (`data_batch_1..5`, `test_batch`,
`batches.meta`).

    python3 bench/cifar_jpeg_to_pickle.py IMAGE_FOLDER OUT_DIR

Images go in repro's image_folder order: classes by sorted folder name (CIFAR-10's own label
order, which is alphabetical), files by sorted name. Within a class this is the order the
long-tailed construction shuffles, so both implementations keep the same images; the pixels
are PIL's JPEG decode, which both read.
"""
import os
import pickle
import sys

import numpy as np
from PIL import Image

EXTENSIONS = (".jpg", ".jpeg", ".png")


def read_split(folder, classes=None):
    names = sorted(d for d in os.listdir(folder) if not d.startswith("."))
    if classes is not None and names != classes:
        sys.exit(f"{folder}: class folders {names} differ from the training classes {classes}")
    data, labels = [], []
    for label, name in enumerate(names):
        files = sorted(f for f in os.listdir(os.path.join(folder, name)) if f.lower().endswith(EXTENSIONS))
        for f in files:
            path = os.path.join(folder, name, f)
            img = np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)
            if img.shape != (32, 32, 3):
                sys.exit(f"{path}: {img.shape}, the CIFAR layout needs 32x32 RGB")
            data.append(img.transpose(2, 0, 1).reshape(-1))
            labels.append(label)
    return names, np.stack(data), labels


def dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    classes, train, train_labels = read_split(os.path.join(src, "train"))
    _, test, test_labels = read_split(os.path.join(src, "test"), classes)
    for i, part in enumerate(np.array_split(np.arange(len(train_labels)), 5)):
        dump(os.path.join(out, f"data_batch_{i + 1}"), {
            "batch_label": f"training batch {i + 1} of 5",
            "data": train[part],
            "labels": [train_labels[k] for k in part],
        })
    dump(os.path.join(out, "test_batch"), {"batch_label": "testing batch 1 of 1", "data": test, "labels": test_labels})
    dump(os.path.join(out, "batches.meta"), {"label_names": classes, "num_cases_per_batch": 10000, "num_vis": 3072})
    print(f"{out}: {len(train_labels)} training and {len(test_labels)} test images, classes {classes}")


if __name__ == "__main__":
    main()
