//! The model zoo: architectures have the reference parameter counts, every config combination
//! builds and runs, and gradients reach the learnable κ and λ.

use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::{Distribution, Tensor};
use repro::config::ModelConfig;
use repro::nn::Model;

fn config(yaml: &str) -> ModelConfig {
    serde_yaml::from_str(yaml).expect("valid model config")
}

fn params(yaml: &str) -> usize {
    Model::<Flex>::new(&config(yaml), &Default::default()).num_params()
}

/// Trainable counts from the reference definitions (the CIFAR ones printed by the reference
/// resnet_cifar.py's `test()`, torchvision's for the ImageNet family). Burn's `num_params` also
/// counts BatchNorm running means and variances, 2 per normalised channel, added here.
#[test]
fn parameter_counts_match_the_reference_architectures() {
    let cases = [
        ("{arch: resnet20, num_classes: 10}", 269_722, 688),
        ("{arch: resnet32, num_classes: 10}", 464_154, 1_136),
        ("{arch: resnet56, num_classes: 10}", 853_018, 2_032),
        ("{arch: resnet50, num_classes: 1000}", 25_557_032, 26_560),
        ("{arch: resnext50_32x4d, num_classes: 1000}", 25_028_904, 34_112),
    ];
    for (yaml, trainable, bn_channels) in cases {
        assert_eq!(params(yaml), trainable + 2 * bn_channels, "{yaml}");
    }
}

#[test]
fn every_attention_gate_and_activation_builds_and_runs() {
    let device = Default::default();
    let x = Tensor::<Flex, 4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    for attention in ["none", "se", "cbam", "spatial"] {
        for gate in ["sigmoid", "apa", "gumbel", "sigmoid_temp", "gumbel_temp"] {
            for activation in ["relu", "prelu", "elu", "mish", "gelu", "silu", "aglu"] {
                for classifier in ["linear", "cosine", "learnable_cosine"] {
                    let c = config(&format!(
                        "{{arch: resnet8, num_classes: 5, attention: {attention}, gate: {gate}, \
                         activation: {activation}, classifier: {classifier}, reduction: 4, \
                         attention_layernorm: true, attention_dropout: 0.1, params: channel}}"
                    ));
                    let logits = Model::<Flex>::new(&c, &device).forward(x.clone());
                    assert_eq!(logits.dims(), [2, 5]);
                    let values = logits.into_data().to_vec::<f32>().unwrap();
                    assert!(
                        values.iter().all(|v| v.is_finite()),
                        "{attention}/{gate}/{activation}/{classifier}"
                    );
                }
            }
        }
    }
}

#[test]
fn imagenet_family_runs_with_cbam_and_aglu() {
    let device = Default::default();
    let c = config("{arch: resnext50_32x4d, num_classes: 7, attention: cbam, gate: apa, activation: aglu}");
    let model = Model::<Flex>::new(&c, &device);
    let x = Tensor::<Flex, 4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(model.forward(x).dims(), [1, 7]);
    // 1 stem + 16 blocks × 3 AGLUs, and 16 blocks × 2 APA gates (channel, spatial).
    let learned = model.learned_params();
    let modules: std::collections::BTreeSet<_> = learned.iter().map(|p| p.module.clone()).collect();
    assert_eq!(modules.len(), 1 + 16 * 3 + 16 * 2);
    assert!(modules.contains("layer4.2.attention.gate1"));
}

#[test]
fn kappa_and_lambda_start_in_their_init_ranges_and_receive_gradients() {
    type B = Autodiff<Flex>;
    let device = Default::default();
    let c = config(
        "{arch: resnet8, num_classes: 3, activation: aglu, attention: se, gate: apa, reduction: 4, \
         init: {aglu_kappa: [2.0, 2.5], aglu_lambda: [0.3, 0.4], apa_kappa: [-0.5, -0.4], apa_lambda: [0.6, 0.7]}}",
    );
    let model = Model::<B>::new(&c, &device);
    for p in model.learned_params() {
        let range = match (p.module.contains("attention"), p.name) {
            (false, "kappa") => 2.0..=2.5,
            (false, _) => 0.3..=0.4,
            (true, "kappa") => -0.5..=-0.4,
            (true, _) => 0.6..=0.7,
        };
        assert!(range.contains(&p.value), "{} {} = {}", p.module, p.name, p.value);
    }
    let x = Tensor::<B, 4>::random([4, 3, 8, 8], Distribution::Normal(0.0, 1.0), &device);
    let grads = model.forward(x).square().sum().backward();
    let Model::Cifar(net) = &model else {
        panic!("resnet8 is a CIFAR network")
    };
    let stem = net.act.adaptive().expect("AGLU stem");
    for param in [&stem.kappa, &stem.lambda] {
        let g = param
            .val()
            .grad(&grads)
            .expect("gradient reaches κ/λ")
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0),
            "{g:?}"
        );
    }
}
