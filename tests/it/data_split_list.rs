//! Split-list datasets over tiny JPEG/PNG files written by the test.

use repro::config::data::{DataConfig, DatasetKind, OnBadImage};
use repro::data::{load_dataset, DataError, Loader, SplitKind};
use std::path::Path;
use std::sync::Arc;

fn write_image(path: &Path, w: u32, h: u32, shade: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([shade, (x * 8) as u8, (y * 8) as u8]));
    img.save(path).unwrap();
}

/// ImageNet-LT layout: root/ImageNet_LT/{train,test}.txt over root/imagenet.
/// Original class 2 has 3 images, class 0 and class 3 two each (tie), class 1 one.
fn fabricate(root: &Path) -> DataConfig {
    let images = root.join("imagenet");
    let train = [
        ("a/0.jpg", 0),
        ("a/1.png", 0),
        ("b/0.jpg", 1),
        ("c/0.jpg", 2),
        ("c/1.jpg", 2),
        ("c/2.png", 2),
        ("d/0.jpg", 3),
        ("d/1.jpg", 3),
    ];
    for (i, (p, _)) in train.iter().enumerate() {
        write_image(&images.join(p), 20 + i as u32, 12 + i as u32, (i * 30) as u8);
    }
    let lines: String = train.iter().map(|(p, l)| format!("{p} {l}\n")).collect();
    write_split(root, "ImageNet_LT_train.txt", &lines);
    write_split(
        root,
        "ImageNet_LT_test.txt",
        "a/0.jpg 0\n\nb/0.jpg 1\nd/0.jpg 3\n",
    );
    DataConfig {
        dataset: DatasetKind::ImagenetLt,
        root: root.to_path_buf(),
        classes: Some(4),
        image_size: Some(8),
        eval_resize: Some(10),
        workers: 2,
        ..DataConfig::imagenet_family(DatasetKind::ImagenetLt)
    }
}

fn write_split(root: &Path, name: &str, text: &str) {
    let dir = root.join("ImageNet_LT");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn relabels_by_descending_frequency_ties_by_original_label() {
    let dir = crate::common::scratch();
    let ds = load_dataset(&fabricate(dir.path())).unwrap();
    // Counts 2,1,3,2 → order: class 2 (3), class 0 (2), class 3 (2, tie after 0), class 1 (1).
    assert_eq!(ds.original_labels, [2, 0, 3, 1]);
    assert_eq!(ds.class_counts, [3, 2, 2, 1]);
    assert_eq!(ds.train.labels, [1, 1, 3, 0, 0, 0, 2, 2]);
    assert_eq!(ds.test.labels, [1, 3, 2]);
    assert_eq!(ds.train.image(1).unwrap().dimensions(), (21, 13));
}

#[test]
fn decodes_and_batches_jpeg_and_png() {
    let dir = crate::common::scratch();
    let cfg = fabricate(dir.path());
    let ds = Arc::new(load_dataset(&cfg).unwrap());
    let loader = Loader::new(ds, &cfg, 3, 1, 0).unwrap();
    let batches: Vec<_> = loader.train_epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.iter().map(|b| b.labels.len()).sum::<usize>(), 8);
    assert_eq!(batches[0].shape, [3, 3, 8, 8]);
    let eval: Vec<_> = loader
        .eval_batches(SplitKind::Test)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(eval[0].labels, [1, 3, 2]);
    assert!(eval[0].images.iter().all(|v| v.is_finite()));
}

fn load_err(root: &Path, cfg: &DataConfig, train: &str) -> DataError {
    write_split(root, "ImageNet_LT_train.txt", train);
    load_dataset(cfg).unwrap_err()
}

#[test]
fn bad_split_lines_name_file_and_line() {
    let dir = crate::common::scratch();
    let cfg = fabricate(dir.path());
    let err = load_err(dir.path(), &cfg, "a/0.jpg 0\na/1.png 7\n");
    assert!(
        matches!(
            err,
            DataError::LabelOutOfRange {
                line: 2,
                label: 7,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("ImageNet_LT_train.txt:2"), "{err}");

    let err = load_err(dir.path(), &cfg, "a/0.jpg -1\n");
    assert!(matches!(err, DataError::LabelOutOfRange { line: 1, .. }), "{err}");

    for evil in ["../secret.jpg 0", "/etc/passwd 0", "a/../../x.jpg 0"] {
        let err = load_err(dir.path(), &cfg, &format!("a/0.jpg 0\n{evil}\n"));
        assert!(
            matches!(err, DataError::PathEscapesRoot { line: 2, .. }),
            "{evil}: {err}"
        );
    }

    let err = load_err(dir.path(), &cfg, "\n  \n");
    assert!(matches!(err, DataError::EmptySplit { .. }), "{err}");

    let err = load_err(dir.path(), &cfg, "a/0.jpg zero\n");
    assert!(err.to_string().contains(":1: label \"zero\""), "{err}");
    let err = load_err(dir.path(), &cfg, "a/0.jpg 0 extra\n");
    assert!(matches!(err, DataError::SplitLine { line: 1, .. }), "{err}");
}

fn corrupt_images(root: &Path) {
    let images = root.join("imagenet");
    let jpg = std::fs::read(images.join("c/0.jpg")).unwrap();
    std::fs::write(images.join("c/0.jpg"), &jpg[..jpg.len() / 2]).unwrap();
    std::fs::write(images.join("d/1.jpg"), b"not an image at all").unwrap();
}

#[test]
fn undecodable_images_fail_by_default_naming_image_and_line() {
    let dir = crate::common::scratch();
    let cfg = fabricate(dir.path());
    corrupt_images(dir.path());
    let ds = Arc::new(load_dataset(&cfg).unwrap());
    let err = ds.train.image(3).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("c/0.jpg") && msg.contains("ImageNet_LT_train.txt:4"),
        "{msg}"
    );
    assert!(msg.contains("truncated"), "{msg}");
    let loader = Loader::new(ds, &cfg, 8, 1, 0).unwrap();
    let results: Vec<_> = loader.train_epoch(0).collect();
    assert!(results.iter().any(|r| matches!(r, Err(DataError::Decode { .. }))));
}

#[test]
fn undecodable_images_are_counted_and_skipped_when_configured() {
    let dir = crate::common::scratch();
    let cfg = DataConfig {
        on_bad_image: OnBadImage::Skip,
        ..fabricate(dir.path())
    };
    corrupt_images(dir.path());
    let ds = Arc::new(load_dataset(&cfg).unwrap());
    let loader = Loader::new(ds, &cfg, 3, 1, 0).unwrap();
    let batches: Vec<_> = loader.train_epoch(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(batches.iter().map(|b| b.labels.len()).sum::<usize>(), 6);
    assert_eq!(loader.skipped(), 2);
}

#[test]
fn missing_image_is_a_decode_error_not_a_panic() {
    let dir = crate::common::scratch();
    let cfg = fabricate(dir.path());
    std::fs::remove_file(dir.path().join("imagenet/b/0.jpg")).unwrap();
    let ds = load_dataset(&cfg).unwrap();
    let err = ds.train.image(2).unwrap_err();
    assert!(err.to_string().contains("b/0.jpg"), "{err}");
}
