//! CIFAR readers: both formats, real CPython pickles, and malformed files.

use crate::common::{decode_index, write_cifar_binary, write_cifar_pickle};
use repro::data::cifar::{self, CifarFormat, CifarVariant};
use repro::data::DataError;
use std::path::Path;

#[test]
fn binary_and_pickle_give_identical_images() {
    let dir = crate::common::scratch();
    let labels: Vec<usize> = (0..30).map(|i| (i * 7) % 10).collect();
    write_cifar_binary(&dir.path().join("a.bin"), &labels, 0, false);
    write_cifar_pickle(&dir.path().join("a.pkl"), "labels", &labels, 0);
    let bin = cifar::read_binary(&dir.path().join("a.bin"), CifarVariant::Cifar10).unwrap();
    let pkl = cifar::read_python(&dir.path().join("a.pkl"), CifarVariant::Cifar10).unwrap();
    assert_eq!(bin, pkl);
    assert_eq!(bin.labels, labels);
    assert_eq!(decode_index(&bin.pixels[3072 * 5..]), 5);
    // Planar → interleaved: byte 1024 of the record (first green) is pixel 0's green.
    let planar = crate::common::planar_pixels(0);
    assert_eq!(bin.pixels[1], planar[1024]);
    assert_eq!(bin.pixels[2], planar[2048]);
}

#[test]
fn cifar100_binary_uses_fine_label() {
    let dir = crate::common::scratch();
    let labels: Vec<usize> = (0..10).map(|i| i * 9).collect();
    write_cifar_binary(&dir.path().join("t.bin"), &labels, 0, true);
    let s = cifar::read_binary(&dir.path().join("t.bin"), CifarVariant::Cifar100).unwrap();
    assert_eq!(s.labels, labels);
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_real_cpython_pickles_protocol_2_and_4() {
    // Written by CPython's pickle (see tests/fixtures/cifar_pickles.README.md).
    let expected: Vec<u8> = (0..12usize)
        .flat_map(|i| (0..3072usize).map(move |j| ((i * 7 + j) % 256) as u8))
        .collect();
    let c10 = cifar::read_python(&fixture("cifar10_batch_p2.pickle"), CifarVariant::Cifar10).unwrap();
    assert_eq!(c10.labels, (0..12).map(|i| i % 10).collect::<Vec<_>>());
    let c100 = cifar::read_python(&fixture("cifar100_train_p4.pickle"), CifarVariant::Cifar100).unwrap();
    assert_eq!(c100.labels, (0..12).map(|i| (i * 37) % 100).collect::<Vec<_>>());
    for s in [&c10, &c100] {
        assert_eq!(s.pixels.len(), expected.len());
        // HWC pixel 0 = planar bytes 0, 1024, 2048 of image 0.
        assert_eq!(&s.pixels[..3], &[expected[0], expected[1024], expected[2048]]);
    }
}

#[test]
fn malformed_files_are_format_errors_naming_the_file() {
    let dir = crate::common::scratch();
    let short = dir.path().join("short.bin");
    std::fs::write(&short, vec![0u8; 3072]).unwrap();
    let err = cifar::read_binary(&short, CifarVariant::Cifar10).unwrap_err();
    assert!(matches!(err, DataError::Format { .. }), "{err}");
    assert!(err.to_string().contains("short.bin"));

    let bad_label = dir.path().join("label.bin");
    write_cifar_binary(&bad_label, &[10], 0, false);
    let err = cifar::read_binary(&bad_label, CifarVariant::Cifar10).unwrap_err();
    assert!(err.to_string().contains("label 10"), "{err}");

    let good = dir.path().join("good.pkl");
    write_cifar_pickle(&good, "labels", &[1, 2, 3], 0);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("trunc.pkl");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = cifar::read_python(&truncated, CifarVariant::Cifar10).unwrap_err();
    assert!(err.to_string().contains("trunc.pkl"), "{err}");

    let evil = dir.path().join("evil.pkl");
    std::fs::write(&evil, b"\x80\x02cos\nsystem\nq\x00.").unwrap();
    let err = cifar::read_python(&evil, CifarVariant::Cifar10).unwrap_err();
    assert!(err.to_string().contains("refusing global os.system"), "{err}");

    let wrong_key = dir.path().join("wrongkey.pkl");
    write_cifar_pickle(&wrong_key, "labels", &[1], 0);
    let err = cifar::read_python(&wrong_key, CifarVariant::Cifar100).unwrap_err();
    assert!(err.to_string().contains("fine_labels"), "{err}");
}

#[test]
fn missing_files_without_download_say_where_to_put_what() {
    let dir = crate::common::scratch();
    let err = cifar::load(dir.path(), CifarVariant::Cifar100, true, false).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::Missing { .. }));
    assert!(msg.contains("cifar-100-python.tar.gz"), "{msg}");
    assert!(
        msg.contains("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
        "{msg}"
    );
    assert!(
        msg.contains(&dir.path().join("cifar-100-python").display().to_string()),
        "{msg}"
    );
    let _ = CifarFormat::Binary;
}
