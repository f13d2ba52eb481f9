//! The synthetic long-tailed source: counts, determinism, and that classes carry signal.

use repro::config::data::{DataConfig, DatasetKind, ImbalanceProfile};
use repro::data::groups::{Group, GroupThresholds};
use repro::data::load_dataset;
use repro::data::synthetic::SyntheticSpec;

fn spec(classes: usize, size: usize) -> SyntheticSpec {
    SyntheticSpec {
        classes,
        image_size: size,
        train_per_class_max: 500,
        test_per_class: 50,
        imbalance: 100.0,
        profile: ImbalanceProfile::Exp,
        seed: 3,
    }
}

#[test]
fn long_tailed_train_and_balanced_test() {
    let s = spec(10, 16);
    assert_eq!(s.train_counts(), [500, 299, 179, 107, 64, 38, 23, 13, 8, 5]);
    let train = s.train();
    assert_eq!(train.labels.len(), s.train_counts().iter().sum::<usize>());
    assert_eq!(train.pixels.len(), train.labels.len() * 16 * 16 * 3);
    let test = s.test();
    assert_eq!(test.labels.len(), 500);
    let groups = GroupThresholds::default().groups(&s.train_counts());
    assert_eq!(groups[0], Group::Many);
    assert_eq!(groups[5], Group::Medium);
    assert_eq!(groups[9], Group::Few);
}

#[test]
fn deterministic_per_seed_and_different_across_seeds() {
    let a = spec(7, 12);
    assert_eq!(a.train(), a.train());
    let b = SyntheticSpec { seed: 4, ..a.clone() };
    assert_ne!(a.train().pixels, b.train().pixels);
    // Test images are not copies of training images.
    assert_ne!(a.train().pixels[..432], a.test().pixels[..432]);
}

/// Mean colour per image; a nearest-class-mean classifier on it must beat chance by far,
/// which pure noise could not.
#[test]
fn classes_are_separable() {
    let s = spec(10, 16);
    let (train, test) = (s.train(), s.test());
    let features = |pixels: &[u8]| -> Vec<[f64; 3]> {
        pixels
            .chunks(16 * 16 * 3)
            .map(|img| {
                let mut m = [0.0; 3];
                for px in img.chunks(3) {
                    for c in 0..3 {
                        m[c] += f64::from(px[c]) / 256.0;
                    }
                }
                m
            })
            .collect()
    };
    let (ftr, fte) = (features(&train.pixels), features(&test.pixels));
    let mut centroid = vec![[0.0; 3]; 10];
    let mut n = vec![0.0; 10];
    for (f, &l) in ftr.iter().zip(&train.labels) {
        for c in 0..3 {
            centroid[l][c] += f[c];
        }
        n[l] += 1.0;
    }
    for (m, k) in centroid.iter_mut().zip(&n) {
        m.iter_mut().for_each(|v| *v /= k);
    }
    let dist = |a: &[f64; 3], b: &[f64; 3]| (0..3).map(|c| (a[c] - b[c]).powi(2)).sum::<f64>();
    let correct = fte
        .iter()
        .zip(&test.labels)
        .filter(|(f, &l)| {
            (0..10).min_by(|&a, &b| dist(f, &centroid[a]).total_cmp(&dist(f, &centroid[b]))) == Some(l)
        })
        .count();
    assert!(
        correct as f64 / fte.len() as f64 > 0.6,
        "accuracy {correct}/{}",
        fte.len()
    );
}

#[test]
fn config_path_builds_dataset() {
    let cfg = DataConfig {
        dataset: DatasetKind::SyntheticLt,
        classes: Some(5),
        imbalance: 10.0,
        train_per_class_max: 40,
        test_per_class: 4,
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.num_classes, 5);
    assert_eq!(ds.class_counts, [40, 22, 12, 7, 4]);
    assert_eq!(ds.test.len(), 20);
    assert_eq!(ds.train.image(0).unwrap().dimensions(), (16, 16));
}

#[test]
fn ten_thousand_images_generate_quickly() {
    let s = SyntheticSpec {
        train_per_class_max: 2000,
        imbalance: 1.0,
        ..spec(5, 16)
    };
    let t = std::time::Instant::now();
    let train = s.train();
    let elapsed = t.elapsed();
    assert_eq!(train.labels.len(), 10_000);
    eprintln!("10k 16x16 synthetic images in {elapsed:?}");
    // Generous bound: this is a smoke check against accidental quadratic work, not a benchmark.
    assert!(elapsed.as_secs_f64() < 5.0);
}
