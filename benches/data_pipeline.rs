//! Data-pipeline throughput (a plain `harness = false` main; run with
//! `cargo bench --bench data_pipeline`):
//! 1. CIFAR-LT batch production: crop+flip+AutoAugment(CIFAR-10)+Cutout+normalise, batch 128,
//!    over a CIFAR-100-LT-sized (10,847 images, imbalance 100) in-memory training set;
//! 2. JPEG decode + random-resized-crop to 224 (+flip, normalise) over 500x375 JPEGs.
//!
//! Each is measured with one worker thread (per-core rate) and with all cores.

use rand::{Rng, SeedableRng};
use repro::config::data::{AutoAugmentPolicy, DataConfig, DatasetKind, ImbalanceProfile};
use repro::data::cifar_lt::class_counts;
use repro::data::split_list::{ClassMap, SplitEntry};
use repro::data::{Dataset, Loader, Split, Storage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn cifar_lt_dataset() -> Dataset {
    let counts = class_counts(500.0, 100, 0.01, ImbalanceProfile::Exp);
    let labels: Vec<usize> = counts
        .iter()
        .enumerate()
        .flat_map(|(c, &n)| std::iter::repeat_n(c, n))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let pixels: Vec<u8> = (0..labels.len() * 3072).map(|_| rng.random()).collect();
    Dataset {
        kind: DatasetKind::Cifar100Lt,
        train: Split::packed(pixels, labels, 32, 32),
        test: Split::packed(Vec::new(), Vec::new(), 32, 32),
        num_classes: 100,
        class_counts: counts,
        original_labels: (0..100).collect(),
    }
}

/// CPU seconds used by this process so far (Linux /proc; 0 elsewhere), to tell a pipeline that
/// does not scale from a machine whose cores are busy with something else.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line (indices 11 and 12 after the name),
    // in ticks of 1/100 s.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs whole epochs until at least `min_images` images went through; returns images/s and
/// prints the CPU utilisation over the run.
fn images_per_second(loader: &Loader, min_images: usize) -> f64 {
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let mut images = 0;
    let mut epoch = 0;
    while images < min_images {
        for batch in loader.train_epoch(epoch) {
            let batch = batch.expect("bench batch");
            images += batch.labels.len();
        }
        epoch += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    print!("[cpu {:.0}%] ", 100.0 * (cpu_seconds() - cpu0) / wall);
    images as f64 / wall
}

fn bench_cifar() {
    let ds = Arc::new(cifar_lt_dataset());
    for workers in [1, 0] {
        let cfg = DataConfig {
            auto_augment: AutoAugmentPolicy::Cifar10,
            cutout: Some(16),
            workers,
            ..DataConfig::default()
        };
        let loader = Loader::new(Arc::clone(&ds), &cfg, 128, 1, 0).expect("loader");
        let rate = images_per_second(&loader, 30_000);
        let threads = if workers == 0 {
            rayon::current_num_threads()
        } else {
            workers
        };
        println!(
            "cifar_lt crop+flip+autoaugment+cutout+normalise, batch 128, {threads} thread(s): {rate:.0} images/s ({:.1} batches/s)",
            rate / 128.0
        );
    }
}

fn write_jpegs(dir: &std::path::Path, n: usize) -> Vec<SplitEntry> {
    let list = Arc::new(dir.join("list.txt"));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..n)
        .map(|i| {
            // Smooth structure plus noise, so the JPEG has realistic entropy (not flat colour).
            let img = image::RgbImage::from_fn(500, 375, |x, y| {
                let base = ((x as f32 * 0.05 + i as f32).sin() * 60.0
                    + (y as f32 * 0.03).cos() * 60.0
                    + 128.0) as i32;
                let n: i32 = rng.random_range(-20..20);
                image::Rgb([
                    (base + n).clamp(0, 255) as u8,
                    (base / 2 + n).clamp(0, 255) as u8,
                    (255 - base + n).clamp(0, 255) as u8,
                ])
            });
            let path = dir.join(format!("{i}.jpg"));
            let file = std::fs::File::create(&path).expect("create jpeg");
            let mut enc =
                image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 90);
            enc.encode_image(&img).expect("encode jpeg");
            SplitEntry {
                path,
                label: i % 10,
                list: Arc::clone(&list),
                line: i + 1,
            }
        })
        .collect()
}

fn bench_jpeg() {
    // REPRO_BENCH_JPEG_DIR keeps the images (e.g. to time PIL on the very same files).
    let keep = std::env::var_os("REPRO_BENCH_JPEG_DIR").map(PathBuf::from);
    let dir = keep
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("repro-bench-jpeg-{}", std::process::id())));
    std::fs::create_dir_all(&dir).expect("bench dir");
    let entries = write_jpegs(&dir, 64);
    let labels: Vec<usize> = entries.iter().map(|e| e.label).collect();
    let ds = Arc::new(Dataset {
        kind: DatasetKind::ImagenetLt,
        class_counts: repro::data::split_list::count_per_class(&labels, 10),
        train: Split {
            labels,
            storage: Storage::Files(entries.clone()),
        },
        test: Split {
            labels: Vec::new(),
            storage: Storage::Files(Vec::new()),
        },
        num_classes: 10,
        original_labels: ClassMap::identity(10).old_of_new,
    });
    let start = Instant::now();
    let rounds = 4;
    for _ in 0..rounds {
        for e in &entries {
            std::hint::black_box(repro::data::split_list::decode(e).expect("decode"));
        }
    }
    let decode_rate = (rounds * entries.len()) as f64 / start.elapsed().as_secs_f64();
    println!("jpeg 500x375 decode only, 1 thread: {decode_rate:.0} images/s");
    for workers in [1, 0] {
        let cfg = DataConfig {
            workers,
            classes: Some(10),
            ..DataConfig::imagenet_family(DatasetKind::ImagenetLt)
        };
        let loader = Loader::new(Arc::clone(&ds), &cfg, 32, 1, 0).expect("loader");
        let rate = images_per_second(&loader, 512);
        let threads = if workers == 0 {
            rayon::current_num_threads()
        } else {
            workers
        };
        println!("jpeg 500x375 decode+random-resized-crop 224+flip+normalise, {threads} thread(s): {rate:.0} images/s");
    }
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn main() {
    // `cargo test --benches` passes --bench-free arguments; only run when benchmarking.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    bench_cifar();
    bench_jpeg();
}
