//! Model fidelity: our models reproduce the reference PyTorch models' eval-mode logits, from both
//! weight formats; bad fixtures and weights are clean errors.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use repro::config::ModelConfig;
use repro::nn::import::{load_state_dict, read_state_dict, reference_keys, ImportError};
use repro::nn::{Gpt2, Model, Task};
use repro::verify::{verify, VerifyError, WeightsChoice};

const FIXTURES: [&str; 9] = [
    "resnet32_relu_linear",
    "se_resnet32_sigmoid_cosine",
    "se_resnet32_apa_aglu_cosine",
    "vit_test_gelu",
    "vit_test_aglu",
    "swin_test_gelu",
    "swin_test_aglu",
    "gpt2_test_gelu",
    "gpt2_test_aglu",
];

fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/models").join(format!("{name}.json"))
}

/// The SE, ViT and Swin fixtures (logits of magnitude ~1–3) pass at their own tolerance. The plain ReLU
/// network's logits reach 877, where one f32 ulp is 6.1e-5: its reference logits are 2.0e-4
/// from an exact (f64) evaluation of the same weights, so no independent f32 implementation
/// can be held to its 1e-4; it must agree within 8 ulps of its largest logit instead.
#[test]
fn reference_models_match_from_both_weight_formats() {
    let ulps = |name: &str| if name == FIXTURES[0] { 8 } else { 0 };
    for name in FIXTURES {
        let ulps = ulps(name);
        for choice in [WeightsChoice::Safetensors, WeightsChoice::Pth] {
            let report =
                verify::<Flex>(&fixture(name), choice, ulps, &Default::default()).expect("fixture usable");
            assert!(
                report.passed(),
                "{name} ({choice:?}): max |Δ| {} over tolerance {}",
                report.max_abs_diff,
                report.effective_tolerance()
            );
        }
    }
}

#[test]
fn our_key_names_are_the_reference_state_dict_keys() {
    for name in FIXTURES {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap();
        let config: ModelConfig = serde_json::from_value(json["model"].clone()).unwrap();
        let mut theirs: Vec<String> = serde_json::from_value(json["state_dict_keys"].clone()).unwrap();
        theirs.sort();
        let mut ours = match config.task() {
            Task::ImageClassification => reference_keys(
                &Model::<Flex>::new(&config, &Default::default()).expect("an image classifier"),
            ),
            // Hugging Face's GPT2LMHeadModel holds GPT2Model's keys under `transformer.`.
            Task::LanguageModelling => {
                let model = Gpt2::<Flex>::new(&config, &Default::default()).expect("a language model");
                reference_keys(&model)
                    .iter()
                    .map(|k| format!("transformer.{k}"))
                    .collect()
            }
        };
        ours.sort();
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn a_wrong_architecture_names_the_offending_keys() {
    let weights = Path::new("tests/fixtures/models/resnet32_relu_linear.safetensors");
    let config: ModelConfig = serde_json::from_str(r#"{"arch": "resnet20", "num_classes": 10}"#).unwrap();
    let model = Model::<Flex>::new(&config, &Default::default()).expect("an image classifier");
    let err = load_state_dict(
        model,
        read_state_dict(weights).unwrap(),
        weights,
        &Default::default(),
    )
    .expect_err("resnet20 cannot take resnet32 weights");
    let text = err.to_string();
    assert!(
        text.contains("unexpected tensor 'layer1.3.conv1.weight'"),
        "{text}"
    );

    let config: ModelConfig = serde_json::from_str(r#"{"arch": "resnet32", "num_classes": 7}"#).unwrap();
    let model = Model::<Flex>::new(&config, &Default::default()).expect("an image classifier");
    let err = load_state_dict(
        model,
        read_state_dict(weights).unwrap(),
        weights,
        &Default::default(),
    )
    .expect_err("7 classes cannot take a 10-class head");
    assert!(
        err.to_string()
            .contains("tensor 'linear.weight' has shape [10, 64], the model expects [7, 64]"),
        "{err}"
    );
}

#[test]
fn truncated_weights_are_format_errors() {
    let tmp = crate::common::scratch();
    let dir = tmp.path();
    for ext in ["safetensors", "pth"] {
        let src = Path::new("tests/fixtures/models").join(format!("resnet32_relu_linear.{ext}"));
        let bytes = std::fs::read(&src).unwrap();
        let cut = dir.join(format!("cut.{ext}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
        match read_state_dict(&cut) {
            Err(ImportError::Format { .. }) => {}
            other => panic!("{ext}: expected a format error, got {other:?}"),
        }
    }
}

#[test]
fn unusable_fixtures_are_errors_not_panics() {
    let tmp = crate::common::scratch();
    let dir = tmp.path();
    let missing = dir.join("missing.json");
    assert!(matches!(
        verify::<Flex>(&missing, WeightsChoice::Preferred, 0, &Default::default()),
        Err(VerifyError::Read { .. })
    ));

    let not_json = dir.join("bad.json");
    std::fs::write(&not_json, "{ not json").unwrap();
    assert!(matches!(
        verify::<Flex>(&not_json, WeightsChoice::Preferred, 0, &Default::default()),
        Err(VerifyError::Parse { .. })
    ));

    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("resnet32_relu_linear")).unwrap()).unwrap();
    let mut short_input = original.clone();
    short_input["input"] = serde_json::json!([1.0, 2.0]);
    short_input["weights"] = serde_json::json!("nowhere.safetensors");
    let path = dir.join("short.json");
    std::fs::write(&path, short_input.to_string()).unwrap();
    let err = verify::<Flex>(&path, WeightsChoice::Preferred, 0, &Default::default()).unwrap_err();
    assert!(err.to_string().contains("'input' has 2 values"), "{err}");

    let mut vit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("vit_test_gelu")).unwrap()).unwrap();
    vit["model"]["image_size"] = serde_json::json!(64);
    let path = dir.join("vit-64.json");
    std::fs::write(&path, vit.to_string()).unwrap();
    let err = verify::<Flex>(&path, WeightsChoice::Preferred, 0, &Default::default()).unwrap_err();
    assert!(
        err.to_string().contains("does not fit 'model.image_size' 64"),
        "{err}"
    );

    let mut no_weights = original;
    no_weights["weights"] = serde_json::json!("nowhere.safetensors");
    let path = dir.join("no-weights.json");
    std::fs::write(&path, no_weights.to_string()).unwrap();
    let err = verify::<Flex>(&path, WeightsChoice::Preferred, 0, &Default::default()).unwrap_err();
    assert!(
        matches!(err, VerifyError::Import(ImportError::Io { .. })),
        "{err}"
    );
}

/// No ImageNet-family fixture exists offline (their weights are ~100 MB), so the key mapping
/// is checked against names read off the reference code (resnet_pytorch.py, cbam.py).
#[test]
fn imagenet_family_keys_follow_the_reference_modules() {
    let cases = [
        (
            "{arch: resnet50, num_classes: 10, attention: se, gate: apa, activation: aglu, \
             attention_layernorm: true, classifier: cosine}",
            vec![
                "relu.kappa_param",
                "layer1.0.unirect3.lambda_param",
                "layer1.0.se.uniact.kappa_param",
                "layer1.0.se.norm.weight",
                "layer1.0.se.excitation.0.weight",
                "layer1.0.se.excitation.2.weight",
                "layer1.0.downsample.0.weight",
                "layer1.0.downsample.1.running_var",
                "layer4.2.conv3.weight",
                "fc.weight",
            ],
        ),
        (
            "{arch: resnext50_32x4d, num_classes: 10, attention: cbam, gate: apa, attention_layernorm: true}",
            vec![
                "layer2.0.cbam.ChannelGate.norm.bias",
                "layer2.0.cbam.ChannelGate.mlp.1.bias",
                "layer2.0.cbam.ChannelGate.mlp.3.weight",
                "layer2.0.cbam.ChannelGate.uniact.lambda_param",
                "layer2.0.cbam.SpatialGate.spatial.conv.weight",
                "layer2.0.cbam.SpatialGate.spatial.bn.running_mean",
                "layer2.0.cbam.SpatialGate.uniact.kappa_param",
                "fc.bias",
            ],
        ),
    ];
    for (yaml, expected) in cases {
        let config: ModelConfig = serde_yaml::from_str(yaml).unwrap();
        let keys =
            reference_keys(&Model::<Flex>::new(&config, &Default::default()).expect("an image classifier"));
        for key in expected {
            assert!(keys.iter().any(|k| k == key), "{yaml}: no key {key}");
        }
        let ours = [
            "stages",
            "act",
            "attention",
            "classifier",
            "gate",
            "fc1",
            "fc2",
            "gamma",
            "beta",
        ];
        for key in &keys {
            let segments: Vec<&str> = key.split('.').collect();
            assert!(
                !ours.iter().any(|o| segments.contains(o)),
                "untranslated key {key}"
            );
        }
    }
}
