"""PIL baseline for the JPEG figure of benches/data_pipeline.rs: single-thread decode and
decode + torchvision-style RandomResizedCrop(224, bilinear) + flip + normalise on the same files.
Usage: REPRO_BENCH_JPEG_DIR=/tmp/jpegs cargo bench --bench data_pipeline
       python3 benches/pil/pil_baseline.py /tmp/jpegs"""
import math, random, sys, time, glob
from PIL import Image

files = sorted(glob.glob(sys.argv[1] + "/*.jpg"))
rounds = 4

def rrc_box(w, h, rng):
    area = w * h
    for _ in range(10):
        target = area * rng.uniform(0.08, 1.0)
        aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return (x, y, x + cw, y + ch)
    return (0, 0, w, h)

t = time.perf_counter()
for _ in range(rounds):
    for f in files:
        Image.open(f).convert("RGB")
dec = rounds * len(files) / (time.perf_counter() - t)
print(f"PIL {Image.__version__} decode only, 1 thread: {dec:.0f} images/s")

rng = random.Random(0)
mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
t = time.perf_counter()
for _ in range(rounds):
    for f in files:
        img = Image.open(f).convert("RGB")
        img = img.resize((224, 224), Image.BILINEAR, box=rrc_box(*img.size, rng))
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        # ToTensor + Normalize equivalent without numpy: per-band point ops.
        bands = [b.point(lambda v, m=m, s=s: (v / 255 - m) / s * 32 + 128) for b, m, s in zip(img.split(), mean, std)]
full = rounds * len(files) / (time.perf_counter() - t)
print(f"PIL decode+random-resized-crop 224+flip(+normalise via point), 1 thread: {full:.0f} images/s")
