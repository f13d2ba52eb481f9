//! `image_folder` datasets over tiny JPEG/PNG folders written by the test.

use repro::config::data::{DataConfig, DatasetKind, ImbalanceProfile, OnBadImage};
use repro::data::cifar_lt::{class_counts, select_subset};
use repro::data::{load_dataset, DataError, Loader, SplitKind, Storage};
use std::path::Path;
use std::sync::Arc;

/// A lossless image whose red channel at (0,0) and (1,0) encodes `(class, index)`, so a test can
/// tell which file ended up where.
fn write_png(path: &Path, class: usize, index: usize, side: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(side, side, |x, y| match (x, y) {
        (0, 0) => image::Rgb([class as u8, 0, 0]),
        (1, 0) => image::Rgb([index as u8, 0, 0]),
        _ => image::Rgb([(x * 9) as u8, (y * 9) as u8, 77]),
    });
    img.save(path).unwrap();
}

fn write_jpeg(path: &Path, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([shade, 10, 200]))
        .save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

fn identity(img: &image::RgbImage) -> (usize, usize) {
    (img.get_pixel(0, 0)[0] as usize, img.get_pixel(1, 0)[0] as usize)
}

fn config(root: &Path, classes: usize, imbalance: f64) -> DataConfig {
    DataConfig {
        dataset: DatasetKind::ImageFolder,
        root: root.to_path_buf(),
        classes: Some(classes),
        imbalance,
        image_size: Some(8),
        ..DataConfig::default()
    }
}

/// Classes `zebra`, `Apple`, `mango` (sorted by code point: `Apple` < `mango` < `zebra`), with
/// file names whose sorted order differs from creation order, and mixed extension cases.
fn fabricate_small(root: &Path) {
    let train = root.join("train");
    write_png(&train.join("zebra/b.PNG"), 2, 1, 8);
    write_png(&train.join("zebra/a.png"), 2, 0, 8);
    write_jpeg(&train.join("Apple/x.JPEG"), 50);
    write_jpeg(&train.join("Apple/10.jpg"), 60);
    write_jpeg(&train.join("Apple/9.jpg"), 70);
    write_png(&train.join("mango/only.png"), 1, 0, 8);
    write_png(&root.join("test/zebra/t.png"), 2, 5, 8);
    write_jpeg(&root.join("test/Apple/t.jpg"), 80);
    // Hidden files are not part of any dataset.
    std::fs::write(train.join("Apple/.DS_Store"), b"junk").unwrap();
}

#[test]
fn classes_are_sorted_folder_names_and_images_sorted_file_names() {
    let dir = crate::common::scratch();
    fabricate_small(dir.path());
    let ds = load_dataset(&config(dir.path(), 3, 1.0)).unwrap();
    assert_eq!(ds.train.labels, [0, 0, 0, 1, 2, 2]);
    assert_eq!(ds.class_counts, [3, 1, 2]);
    assert_eq!(ds.test.labels, [0, 2]);
    // Apple: "10.jpg" < "9.jpg" < "x.JPEG" (byte order, as Python's sorted).
    let shades: Vec<u8> = (0..3)
        .map(|i| ds.train.image(i).unwrap().get_pixel(4, 4)[0])
        .collect();
    assert!(
        shades[0].abs_diff(60) <= 4 && shades[1].abs_diff(70) <= 4 && shades[2].abs_diff(50) <= 4,
        "{shades:?}"
    );
    assert_eq!(identity(&ds.train.image(4).unwrap()), (2, 0));
    assert_eq!(identity(&ds.train.image(5).unwrap()), (2, 1));
    assert_eq!(identity(&ds.test.image(1).unwrap()), (2, 5));
}

#[test]
fn small_images_are_decoded_once_into_memory() {
    let dir = crate::common::scratch();
    fabricate_small(dir.path());
    let cfg = config(dir.path(), 3, 1.0);
    let ds = Arc::new(load_dataset(&cfg).unwrap());
    assert!(matches!(
        ds.train.storage,
        Storage::Packed {
            height: 8,
            width: 8,
            ..
        }
    ));
    // With the files gone, every epoch still has its images: nothing is read from disk again.
    std::fs::remove_dir_all(dir.path().join("train")).unwrap();
    std::fs::remove_dir_all(dir.path().join("test")).unwrap();
    let loader = Loader::new(ds, &cfg, 4, 2, 0).unwrap();
    for epoch in 0..2 {
        let batches: Vec<_> = loader.train_epoch(epoch).collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.iter().map(|b| b.labels.len()).sum::<usize>(), 6);
    }
    let eval: Vec<_> = loader
        .eval_batches(SplitKind::Test)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(eval[0].labels, [0, 2]);
}

#[test]
fn mixed_sizes_stay_on_disk_and_decode_per_batch() {
    let dir = crate::common::scratch();
    fabricate_small(dir.path());
    write_png(&dir.path().join("train/mango/wide.png"), 1, 1, 12);
    let cfg = config(dir.path(), 3, 1.0);
    let ds = Arc::new(load_dataset(&cfg).unwrap());
    assert!(matches!(ds.train.storage, Storage::Paths(_)));
    assert_eq!(ds.train.image(4).unwrap().dimensions(), (12, 12));
    let loader = Loader::new(ds, &cfg, 7, 1, 0).unwrap();
    let batches: Vec<_> = loader.train_epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches[0].shape, [7, 3, 8, 8]);
}

/// The long-tailed subset is the CIFAR-LT construction over the folder's (class, file-name)
/// order: same counts, same numpy shuffle, same kept files in the same order.
#[test]
fn long_tailed_subset_is_the_cifar_lt_construction() {
    let dir = crate::common::scratch();
    let (classes, per_class) = (4, 30);
    for c in 0..classes {
        for i in 0..per_class {
            write_png(&dir.path().join(format!("train/c{c}/{i:03}.png")), c, i, 4);
        }
        write_png(&dir.path().join(format!("test/c{c}/0.png")), c, 0, 4);
    }
    for (seed, profile) in [
        (0, ImbalanceProfile::Exp),
        (7, ImbalanceProfile::Exp),
        (0, ImbalanceProfile::Step),
    ] {
        let cfg = DataConfig {
            subset_seed: seed,
            imbalance_profile: profile,
            ..config(dir.path(), classes, 10.0)
        };
        let ds = load_dataset(&cfg).unwrap();
        let labels: Vec<usize> = (0..classes).flat_map(|c| vec![c; per_class]).collect();
        let counts = class_counts(per_class as f64, classes, 0.1, profile);
        let expected: Vec<(usize, usize)> = select_subset(&labels, &counts, seed as u32)
            .into_iter()
            .map(|k| (k / per_class, k % per_class))
            .collect();
        let got: Vec<(usize, usize)> = (0..ds.train.len())
            .map(|i| identity(&ds.train.image(i).unwrap()))
            .collect();
        assert_eq!(got, expected, "seed {seed} {profile:?}");
        assert_eq!(ds.class_counts, counts);
        assert!(counts[0] > counts[classes - 1]);
        assert_eq!(ds.test.len(), classes);
        assert_eq!(repro::data::train_size(&cfg), counts.iter().sum::<usize>());
    }
}

fn error_of(root: &Path, cfg: &DataConfig) -> String {
    let err = load_dataset(cfg).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&root.display().to_string()),
        "error does not name the path: {msg}"
    );
    msg
}

#[test]
fn bad_layouts_are_errors_naming_the_path() {
    let dir = crate::common::scratch();
    let root = dir.path();
    let cfg = config(root, 3, 1.0);

    let missing = config(&root.join("nowhere"), 3, 1.0);
    assert!(error_of(root, &missing).contains("nowhere: data root"));
    assert!(error_of(root, &cfg).contains("train: split folder not found"));

    fabricate_small(root);
    let renamed = DataConfig {
        test_split: "val".into(),
        ..cfg.clone()
    };
    assert!(error_of(root, &renamed).contains("val: split folder not found"));

    let wrong_count = config(root, 5, 1.0);
    assert!(error_of(root, &wrong_count).contains("3 class folders, but data.classes"));

    std::fs::create_dir_all(root.join("train/empty")).unwrap();
    let four = config(root, 4, 1.0);
    assert!(error_of(root, &four).contains("empty: class folder has no images"));
    std::fs::remove_dir(root.join("train/empty")).unwrap();

    std::fs::write(root.join("train/mango/notes.txt"), b"hello").unwrap();
    assert!(error_of(root, &cfg).contains("notes.txt: not an image file"));
    std::fs::remove_file(root.join("train/mango/notes.txt")).unwrap();

    write_jpeg(&root.join("test/kiwi/k.jpg"), 1);
    let msg = error_of(root, &cfg);
    assert!(
        msg.contains("kiwi: class folder is not among the training classes"),
        "{msg}"
    );
    std::fs::remove_dir_all(root.join("test/kiwi")).unwrap();

    assert!(load_dataset(&cfg).is_ok());
}

#[test]
fn undecodable_images_fail_naming_the_file_or_are_skipped() {
    let dir = crate::common::scratch();
    let root = dir.path();
    fabricate_small(root);
    let cut = root.join("train/Apple/9.jpg");
    let jpg = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &jpg[..jpg.len() / 2]).unwrap();
    std::fs::write(root.join("train/zebra/a.png"), b"not an image at all").unwrap();

    let cfg = config(root, 3, 1.0);
    let err = load_dataset(&cfg).unwrap_err();
    assert!(matches!(err, DataError::Image { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("Apple/9.jpg") && msg.contains("truncated"), "{msg}");

    let skip = DataConfig {
        on_bad_image: OnBadImage::Skip,
        ..cfg
    };
    let ds = load_dataset(&skip).unwrap();
    assert_eq!(ds.train.labels, [0, 0, 1, 2]);
    assert_eq!(ds.class_counts, [2, 1, 1]);
}

#[test]
fn image_folder_needs_its_class_count_and_plain_split_names() {
    let dir = crate::common::scratch();
    let mut cfg = config(dir.path(), 3, 1.0);
    cfg.classes = None;
    assert!(cfg
        .validate()
        .unwrap_err()
        .contains("data.classes must be set for image_folder"));
    let cfg = DataConfig {
        train_split: "../train".into(),
        ..config(dir.path(), 3, 1.0)
    };
    assert!(cfg.validate().unwrap_err().contains("single folder names"));
    // Configs that do not use the new keys serialise as before (run ids unchanged).
    let json = serde_json::to_string(&DataConfig::default()).unwrap();
    assert!(
        !json.contains("train_split") && !json.contains("test_split"),
        "{json}"
    );
}
