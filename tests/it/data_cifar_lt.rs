//! CIFAR-LT construction against the reference's golden subsets, and end to end on fabricated
//! CIFAR files in both official formats.

use crate::common::{decode_index, scrambled_labels, write_cifar_binary, write_cifar_pickle};
use repro::config::data::{DataConfig, DatasetKind, ImbalanceProfile};
use repro::data::cifar_lt::{class_counts, select_subset};
use repro::data::load_dataset;
use serde_json::Value;

fn golden() -> Vec<Value> {
    let text = include_str!("../fixtures/cifar_lt_subsets.json");
    let v: Value = serde_json::from_str(text).unwrap();
    v["subsets"].as_array().unwrap().clone()
}

fn as_usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn classes_of(dataset: &str) -> usize {
    if dataset == "cifar10" {
        10
    } else {
        100
    }
}

/// Within-class ranks of the kept images, per class.
fn ranks_of(labels: &[usize], kept: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut position_in_class = vec![0; labels.len()];
    let mut seen = vec![0; classes];
    for (i, &l) in labels.iter().enumerate() {
        position_in_class[i] = seen[l];
        seen[l] += 1;
    }
    let mut ranks = vec![Vec::new(); classes];
    for &i in kept {
        ranks[labels[i]].push(position_in_class[i]);
    }
    ranks
}

#[test]
fn counts_match_every_golden_subset() {
    let subsets = golden();
    assert_eq!(subsets.len(), 6);
    for s in &subsets {
        let classes = classes_of(s["dataset"].as_str().unwrap());
        let ratio = s["imbalance_ratio"].as_f64().unwrap();
        let counts = class_counts(
            50000.0 / classes as f64,
            classes,
            1.0 / ratio,
            ImbalanceProfile::Exp,
        );
        assert_eq!(counts, as_usizes(&s["counts"]), "{s:?}", s = s["dataset"]);
        assert_eq!(counts.iter().sum::<usize>() as u64, s["total"].as_u64().unwrap());
    }
}

#[test]
fn selection_matches_every_golden_subset() {
    for s in golden() {
        let classes = classes_of(s["dataset"].as_str().unwrap());
        let labels = scrambled_labels(classes, 50000 / classes);
        let counts = as_usizes(&s["counts"]);
        let kept = select_subset(&labels, &counts, s["seed"].as_u64().unwrap() as u32);
        let expected: Vec<Vec<usize>> = s["ranks"].as_array().unwrap().iter().map(as_usizes).collect();
        assert_eq!(
            ranks_of(&labels, &kept, classes),
            expected,
            "{} x{}",
            s["dataset"],
            s["imbalance_ratio"]
        );
    }
}

#[test]
fn step_profile_halves_classes() {
    let counts = class_counts(500.0, 10, 0.1, ImbalanceProfile::Step);
    assert_eq!(counts, [500, 500, 500, 500, 500, 50, 50, 50, 50, 50]);
}

fn golden_for(dataset: &str, ratio: u64) -> Value {
    golden()
        .into_iter()
        .find(|s| s["dataset"] == dataset && s["imbalance_ratio"].as_u64() == Some(ratio))
        .unwrap()
}

/// The loaded training split holds exactly the golden images, class by class in golden order.
fn assert_train_matches_golden(ds: &repro::data::Dataset, labels: &[usize], golden: &Value, classes: usize) {
    let mut positions: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        positions[l].push(i);
    }
    let expected: Vec<usize> = golden["ranks"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .flat_map(|(c, r)| {
            as_usizes(r)
                .into_iter()
                .map(|rank| positions[c][rank])
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ds.train.len(), expected.len());
    assert_eq!(ds.class_counts, as_usizes(&golden["counts"]));
    for (k, &src) in expected.iter().enumerate() {
        let img = ds.train.image(k).unwrap();
        assert_eq!(decode_index(img.as_raw()), src, "train image {k}");
        assert_eq!(ds.train.labels[k], labels[src]);
    }
}

#[test]
fn cifar10_lt_from_binary_files_end_to_end() {
    let dir = crate::common::scratch();
    let labels = scrambled_labels(10, 5000);
    let folder = dir.path().join("cifar-10-batches-bin");
    for b in 0..5 {
        let part = &labels[b * 10000..(b + 1) * 10000];
        write_cifar_binary(
            &folder.join(format!("data_batch_{}.bin", b + 1)),
            part,
            b * 10000,
            false,
        );
    }
    write_cifar_binary(&folder.join("test_batch.bin"), &labels[..1000], 0, false);
    let cfg = DataConfig {
        dataset: DatasetKind::Cifar10Lt,
        root: dir.path().to_path_buf(),
        download: false,
        imbalance: 100.0,
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.test.len(), 1000);
    assert_train_matches_golden(&ds, &labels, &golden_for("cifar10", 100), 10);
}

#[test]
fn cifar100_lt_from_python_pickle_end_to_end() {
    let dir = crate::common::scratch();
    let labels = scrambled_labels(100, 500);
    let folder = dir.path().join("cifar-100-python");
    write_cifar_pickle(&folder.join("train"), "fine_labels", &labels, 0);
    write_cifar_pickle(&folder.join("test"), "fine_labels", &labels[..200], 0);
    let cfg = DataConfig {
        dataset: DatasetKind::Cifar100Lt,
        root: dir.path().to_path_buf(),
        download: false,
        imbalance: 10.0,
        ..DataConfig::default()
    };
    let ds = load_dataset(&cfg).unwrap();
    assert_eq!(ds.num_classes, 100);
    assert_train_matches_golden(&ds, &labels, &golden_for("cifar100", 10), 100);
}
