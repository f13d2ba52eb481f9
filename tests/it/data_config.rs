//! The `data:` config section: defaults, snake_case names, unknown keys rejected.

use repro::config::data::{AutoAugmentPolicy, DataConfig, DatasetKind, RandAugmentConfig, SamplerKind};

#[test]
fn empty_section_gives_cifar_defaults() {
    let c: DataConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, DataConfig::default());
    assert_eq!(c.resolved_image_size(), 32);
    assert_eq!(c.num_classes(), 100);
    assert!((c.imb_factor() - 0.01).abs() < 1e-15);
    assert!(c.validate().is_ok());
}

#[test]
fn snake_case_values_parse() {
    let c: DataConfig = serde_json::from_str(
        r#"{"dataset": "synthetic_lt", "classes": 10, "image_size": 16, "sampler": "class_balanced",
            "auto_augment": "cifar10", "rand_augment": {"n": 2, "m": 9}, "imbalance_profile": "step",
            "on_bad_image": "skip", "cutout": 16, "mixup_alpha": 0.2}"#,
    )
    .unwrap();
    assert_eq!(c.dataset, DatasetKind::SyntheticLt);
    assert_eq!(c.sampler, SamplerKind::ClassBalanced);
    assert_eq!(c.auto_augment, AutoAugmentPolicy::Cifar10);
    assert_eq!(c.rand_augment, Some(RandAugmentConfig { n: 2, m: 9 }));
    assert_eq!(c.resolved_image_size(), 16);
}

#[test]
fn unknown_keys_and_bad_values_are_rejected() {
    let err = serde_json::from_str::<DataConfig>(r#"{"datset": "cifar10"}"#).unwrap_err();
    assert!(err.to_string().contains("datset"), "{err}");
    assert!(serde_json::from_str::<DataConfig>(r#"{"dataset": "Cifar10"}"#).is_err());
    let c = DataConfig {
        label_smoothing: 1.5,
        ..DataConfig::default()
    };
    assert!(c.validate().unwrap_err().contains("label_smoothing"));
    let c = DataConfig {
        imbalance: 0.5,
        ..DataConfig::default()
    };
    assert!(c.validate().unwrap_err().contains("imbalance"));
}

#[test]
fn imagenet_family_preset() {
    let c = DataConfig::imagenet_family(DatasetKind::PlacesLt);
    assert_eq!(c.num_classes(), 365);
    assert_eq!(c.resolved_image_size(), 224);
    assert!(c.random_resized_crop && !c.random_crop);
    assert_eq!(c.eval_resize, Some(256));
}
