//! Augmentation operations and batch mixing.

use image::RgbImage;
use rand::rngs::StdRng;
use rand::SeedableRng;
use repro::config::data::{AutoAugmentPolicy, DataConfig};
use repro::data::augment::ops::{apply, Op};
use repro::data::augment::{erase, geometry, policy, EvalTransform, Normalize, TrainTransform};
use repro::data::mix::MixConfig;

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 7 % 256) as u8,
            (y * 5 % 256) as u8,
            ((x + y) * 3 % 256) as u8,
        ])
    })
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[test]
fn padded_crop_shifts_image_with_zero_border() {
    let img = gradient(8, 8);
    for s in 0..20 {
        let out = geometry::random_crop_padded(&img, 8, 2, &mut rng(s));
        assert_eq!(out.dimensions(), (8, 8));
        // Any crop is the source shifted by (dx, dy) in -2..=2 with zeros outside.
        let found = (-2i32..=2).any(|dy| {
            (-2i32..=2).any(|dx| {
                (0..8i32).all(|y| {
                    (0..8i32).all(|x| {
                        let (sx, sy) = (x + dx, y + dy);
                        let want = if (0..8).contains(&sx) && (0..8).contains(&sy) {
                            img.get_pixel(sx as u32, sy as u32).0
                        } else {
                            [0; 3]
                        };
                        out.get_pixel(x as u32, y as u32).0 == want
                    })
                })
            })
        });
        assert!(found, "seed {s}");
    }
}

#[test]
fn random_resized_crop_and_eval_sizes() {
    let img = gradient(300, 200);
    for s in 0..10 {
        let out = geometry::random_resized_crop(&img, 224, [0.08, 1.0], [0.75, 4.0 / 3.0], &mut rng(s));
        assert_eq!(out.dimensions(), (224, 224));
    }
    let resized = geometry::resize_shorter(&img, 256);
    assert_eq!(resized.dimensions(), (384, 256));
    assert_eq!(geometry::center_crop(&resized, 224).dimensions(), (224, 224));
    assert_eq!(
        geometry::center_crop(&gradient(10, 10), 16).dimensions(),
        (16, 16)
    );
}

#[test]
fn normalisation_matches_formula() {
    let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 0, 128]));
    let n = Normalize {
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.5, 1.0],
    };
    let mut out = vec![0.0; 6];
    n.write_chw(&img, &mut out);
    let expect = [2.0, 2.0, -1.0, -1.0, 128.0 / 255.0 - 0.5, 128.0 / 255.0 - 0.5];
    for (a, b) in out.iter().zip(expect) {
        assert!((a - b).abs() < 1e-6, "{out:?}");
    }
}

#[test]
fn every_op_keeps_size_and_simple_ops_are_exact() {
    let img = gradient(16, 12);
    let ops = [
        Op::Identity,
        Op::ShearX(0.3),
        Op::ShearY(-0.3),
        Op::TranslateX(5.0),
        Op::TranslateY(-3.0),
        Op::Rotate(30.0),
        Op::Brightness(1.9),
        Op::Color(0.1),
        Op::Contrast(1.5),
        Op::Sharpness(1.9),
        Op::Posterize(4),
        Op::Solarize(128.0),
        Op::AutoContrast,
        Op::Equalize,
        Op::Invert,
    ];
    for op in ops {
        let mut x = img.clone();
        apply(&mut x, op);
        assert_eq!(x.dimensions(), (16, 12), "{op:?}");
    }
    let mut x = img.clone();
    apply(&mut x, Op::Invert);
    assert_eq!(x.get_pixel(3, 2).0, img.get_pixel(3, 2).0.map(|v| 255 - v));
    let mut x = img.clone();
    apply(&mut x, Op::Posterize(2));
    assert!(x.iter().all(|v| v & 0x3F == 0));
    let mut x = img.clone();
    apply(&mut x, Op::TranslateX(4.0));
    assert_eq!(x.get_pixel(0, 0).0, [0, 0, 0]);
    assert_eq!(x.get_pixel(6, 3).0, img.get_pixel(2, 3).0);
    let mut x = img.clone();
    apply(&mut x, Op::Rotate(0.0));
    assert_eq!(x, img);
}

#[test]
fn policies_are_deterministic_per_seed() {
    for p in [
        AutoAugmentPolicy::Cifar10,
        AutoAugmentPolicy::Imagenet,
        AutoAugmentPolicy::TrivialAugmentWide,
    ] {
        let mut a = gradient(32, 32);
        let mut b = gradient(32, 32);
        policy::auto_augment(&mut a, p, &mut rng(9));
        policy::auto_augment(&mut b, p, &mut rng(9));
        assert_eq!(a, b);
    }
    let mut changed = 0;
    for s in 0..20 {
        let mut a = gradient(32, 32);
        policy::rand_augment(&mut a, 2, 9, &mut rng(s));
        changed += usize::from(a != gradient(32, 32));
    }
    assert!(changed > 10);
    // TrivialAugment applies one op at a random bin (identity and bin 0 change nothing).
    let changed = (0..40)
        .filter(|&s| {
            let mut a = gradient(32, 32);
            policy::auto_augment(&mut a, AutoAugmentPolicy::TrivialAugmentWide, &mut rng(s));
            a != gradient(32, 32)
        })
        .count();
    assert!(changed >= 20, "{changed} of 40 changed");
}

#[test]
fn cutout_zeroes_a_clipped_square() {
    let mut img = RgbImage::from_pixel(32, 32, image::Rgb([200, 200, 200]));
    erase::cutout(&mut img, 16, 1, &mut rng(1));
    let zeros = img.pixels().filter(|p| p.0 == [0, 0, 0]).count();
    assert!(zeros > 0 && zeros <= 256, "{zeros}");
}

#[test]
fn random_erasing_probability_one_erases() {
    let mut x = vec![1.0f32; 3 * 32 * 32];
    erase::random_erasing(&mut x, 3, 32, 32, 1.0, &mut rng(2));
    let erased = x.iter().filter(|v| **v == 0.0).count();
    assert!(erased > 0 && erased % 3 == 0);
    let mut y = vec![1.0f32; 3 * 32 * 32];
    erase::random_erasing(&mut y, 3, 32, 32, 0.0, &mut rng(2));
    assert!(y.iter().all(|v| *v == 1.0));
}

#[test]
fn train_transform_is_reproducible_and_eval_is_deterministic() {
    let cfg = DataConfig {
        auto_augment: AutoAugmentPolicy::Cifar10,
        cutout: Some(16),
        random_erasing: 0.5,
        ..DataConfig::default()
    };
    let t = TrainTransform::from_config(&cfg);
    let img = gradient(32, 32);
    let (mut a, mut b) = (vec![0.0; 3072], vec![0.0; 3072]);
    t.apply(&img, &mut rng(5), &mut a);
    t.apply(&img, &mut rng(5), &mut b);
    assert_eq!(a, b);
    let e = EvalTransform::from_config(&cfg);
    let (mut c, mut d) = (vec![0.0; 3072], vec![0.0; 3072]);
    e.apply(&img, &mut c);
    e.apply(&img, &mut d);
    assert_eq!(c, d);
    let mut plain = vec![0.0; 3072];
    e.normalize.write_chw(&img, &mut plain);
    assert_eq!(c, plain);
}

fn mix(mixup: f64, cutmix: f64, smoothing: f64) -> MixConfig {
    MixConfig {
        num_classes: 4,
        mixup_alpha: mixup,
        cutmix_alpha: cutmix,
        label_smoothing: smoothing,
    }
}

fn rows_sum_to_one(t: &[f32], classes: usize) {
    for row in t.chunks(classes) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
}

#[test]
fn label_smoothing_only() {
    let m = mix(0.0, 0.0, 0.1);
    let mut images = vec![0.5; 2 * 3 * 4 * 4];
    let t = m.apply(&mut images, [2, 3, 4, 4], &[1, 3], &mut rng(0)).unwrap();
    assert!((t[1] - 0.925).abs() < 1e-6 && (t[0] - 0.025).abs() < 1e-6);
    rows_sum_to_one(&t, 4);
    assert!(mix(0.0, 0.0, 0.0)
        .apply(&mut images, [2, 3, 4, 4], &[1, 3], &mut rng(0))
        .is_none());
}

#[test]
fn mixup_blends_images_and_targets_with_the_same_lambda() {
    let m = mix(0.2, 0.0, 0.0);
    let per = 3 * 2 * 2;
    let mut images: Vec<f32> = [vec![1.0; per], vec![0.0; per]].concat();
    let t = m.apply(&mut images, [2, 3, 2, 2], &[0, 2], &mut rng(3)).unwrap();
    rows_sum_to_one(&t, 4);
    let lambda = images[0];
    assert!(
        (t[0] - lambda).abs() < 1e-6 && (t[2] - (1.0 - lambda)).abs() < 1e-6,
        "{t:?} {lambda}"
    );
}

#[test]
fn cutmix_targets_follow_pasted_area() {
    let m = mix(0.0, 1.0, 0.0);
    let per = 3 * 8 * 8;
    for s in 0..10 {
        let mut images: Vec<f32> = [vec![1.0; per], vec![0.0; per]].concat();
        let t = m.apply(&mut images, [2, 3, 8, 8], &[0, 1], &mut rng(s)).unwrap();
        rows_sum_to_one(&t, 4);
        let kept = images[..per].iter().filter(|v| **v == 1.0).count() as f32 / per as f32;
        assert!((t[0] - kept).abs() < 1e-6, "seed {s}: {t:?} {kept}");
    }
}

#[test]
fn both_mixers_each_get_picked() {
    let m = mix(0.2, 1.0, 0.1);
    let per = 3 * 8 * 8;
    let (mut blended, mut pasted) = (0, 0);
    for s in 0..40 {
        let mut images: Vec<f32> = [vec![1.0; per], vec![0.0; per]].concat();
        let t = m.apply(&mut images, [2, 3, 8, 8], &[0, 1], &mut rng(s)).unwrap();
        rows_sum_to_one(&t, 4);
        if images[..per].iter().any(|v| *v > 0.0 && *v < 1.0) {
            blended += 1;
        } else {
            pasted += 1;
        }
    }
    assert!(blended > 5 && pasted > 5, "{blended} {pasted}");
}
