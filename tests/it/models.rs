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
    Model::<Flex>::new(&config(yaml), &Default::default())
        .expect("an image classifier")
        .num_params()
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

/// timm's counts: `vit_base_patch16_224` with 1000 classes, and its `VisionTransformer` at the
/// `vit_test` geometry on 16×16 images (16 patches + the class token) with 10 classes.
#[test]
fn vit_parameter_counts_match_timm() {
    assert_eq!(params("{arch: vit_b16, num_classes: 1000}"), 86_567_656);
    assert_eq!(
        params("{arch: vit_test, num_classes: 10, image_size: 16}"),
        60_346
    );
    // Shared AGLU adds one (κ, λ) pair per block; per channel, one per hidden feature.
    assert_eq!(
        params("{arch: vit_test, num_classes: 10, image_size: 16, activation: aglu}"),
        60_346 + 2 * 2
    );
    let channel = "{arch: vit_test, num_classes: 10, image_size: 16, activation: aglu, params: channel}";
    assert_eq!(params(channel), 60_346 + 2 * 2 * 192);
}

/// timm's counts: `swin_tiny_patch4_window7_224` with 1000 classes, and its `SwinTransformer`
/// at the `swin_test` geometry (two stages: 96 then 192 hidden MLP features) with 10 classes.
#[test]
fn swin_parameter_counts_match_timm() {
    assert_eq!(params("{arch: swin_t, num_classes: 1000}"), 28_288_354);
    let tiny = "{arch: swin_test, num_classes: 10, image_size: 16";
    assert_eq!(params(&format!("{tiny}}}")), 77_326);
    assert_eq!(params(&format!("{tiny}, activation: aglu}}")), 77_326 + 2 * 4);
    let channel = params(&format!("{tiny}, activation: aglu, params: channel}}"));
    assert_eq!(channel, 77_326 + 2 * (2 * 96 + 2 * 192));
}

/// Both transformers classify images of the sizes their geometry allows, with every backbone
/// activation in their MLPs.
#[test]
fn transformers_run_with_every_activation() {
    let device = Default::default();
    let x = Tensor::<Flex, 4>::random([2, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
    for arch in ["vit_test", "swin_test"] {
        for activation in ["relu", "gelu", "silu", "aglu"] {
            let c = config(&format!(
                "{{arch: {arch}, num_classes: 5, image_size: 16, activation: {activation}}}"
            ));
            let logits = Model::<Flex>::new(&c, &device)
                .expect("an image classifier")
                .forward(x.clone());
            assert_eq!(logits.dims(), [2, 5], "{arch} {activation}");
        }
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
                    let logits = Model::<Flex>::new(&c, &device)
                        .expect("an image classifier")
                        .forward(x.clone());
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
    let model = Model::<Flex>::new(&c, &device).expect("an image classifier");
    let x = Tensor::<Flex, 4>::random([1, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(model.forward(x).dims(), [1, 7]);
    // 1 stem + 16 blocks × 3 AGLUs, and 16 blocks × 2 APA gates (channel, spatial).
    let modules: std::collections::BTreeSet<_> =
        model.adaptive_modules().into_iter().map(|(m, _)| m).collect();
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
    let model = Model::<B>::new(&c, &device).expect("an image classifier");
    for (module, adaptive) in model.adaptive_modules() {
        let (kappa, lambda) = adaptive.learned();
        let gate = module.contains("attention");
        for (name, values) in [("kappa", kappa), ("lambda", lambda)] {
            let range = match (gate, name) {
                (false, "kappa") => 2.0..=2.5,
                (false, _) => 0.3..=0.4,
                (true, "kappa") => -0.5..=-0.4,
                (true, _) => 0.6..=0.7,
            };
            for value in values {
                assert!(range.contains(&value), "{module} {name} = {value}");
            }
        }
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

/// The BatchNorm op, alone and with its ReLU folded in: its analytic backward against autodiff
/// through the plain formula, and the fused CPU kernels against the composite ops.
#[test]
fn batch_norm_op_matches_autodiff_and_the_fused_kernels_match_it() {
    use burn::tensor::activation::relu;
    use burn::tensor::{TensorPrimitive, Tolerance};
    use repro::nn::ops::batch_norm::{composite_backward, composite_normalize, composite_stats};
    use repro::nn::FusedBackend;
    type AD = Autodiff<Flex>;
    let device = Default::default();
    let shape = [5, 3, 4, 6];
    let x = Tensor::<Flex, 4>::random(shape, Distribution::Normal(1.0, 2.0), &device);
    let g = Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let w = Tensor::<Flex, 1>::random([3], Distribution::Uniform(0.5, 2.0), &device);
    let b = Tensor::<Flex, 1>::random([3], Distribution::Uniform(-1.0, 1.0), &device);
    let eps = 1e-5;
    let p = |t: Tensor<Flex, 4>| t.into_primitive().tensor();
    let p1 = |t: Tensor<Flex, 1>| t.into_primitive().tensor();
    let data = |t| Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(t)).into_data();
    let data4 = |t| Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(t)).into_data();

    let [m2, v2] = composite_stats::<Flex>(p(x.clone()));
    let [fm, fv] = Flex::batch_norm_stats(p(x.clone()));
    data(fm.clone()).assert_approx_eq::<f32>(&data(m2.clone()), Tolerance::absolute(1e-5));
    data(fv.clone()).assert_approx_eq::<f32>(&data(v2.clone()), Tolerance::absolute(1e-5));

    for with_relu in [false, true] {
        // Reference: autodiff through mean/variance/normalise [→ ReLU] with plain tensor ops.
        let xa = Tensor::<AD, 4>::from_inner(x.clone()).require_grad();
        let wa = Tensor::<AD, 1>::from_inner(w.clone()).require_grad();
        let ba = Tensor::<AD, 1>::from_inner(b.clone()).require_grad();
        let mean = xa.clone().mean_dim(0).mean_dim(2).mean_dim(3);
        let var = (xa.clone() - mean.clone())
            .square()
            .mean_dim(0)
            .mean_dim(2)
            .mean_dim(3);
        let y = (xa.clone() - mean) / (var + eps).sqrt() * wa.clone().reshape([1, 3, 1, 1])
            + ba.clone().reshape([1, 3, 1, 1]);
        let y = if with_relu { relu(y) } else { y };
        let expected_y = y.clone().inner().into_data();
        let grads = (y * Tensor::from_inner(g.clone())).sum().backward();
        let expected = [
            xa.grad(&grads).unwrap().into_data(),
            wa.grad(&grads).unwrap().into_data(),
            ba.grad(&grads).unwrap().into_data(),
        ];
        let check = |grads: [_; 3], what: &str| {
            for (ours, theirs) in grads.into_iter().zip(&expected) {
                let ours = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(ours)).into_data();
                let theirs = theirs.clone().convert::<f32>();
                assert_eq!(ours.shape, theirs.shape, "{what}, relu {with_relu}");
                ours.assert_approx_eq::<f32>(&theirs, Tolerance::absolute(1e-4));
            }
        };

        let stats = || [m2.clone(), v2.clone()];
        let composite = composite_backward::<Flex>(
            p(x.clone()),
            p1(w.clone()),
            p1(b.clone()),
            stats(),
            p(g.clone()),
            eps,
            with_relu,
        );
        check(composite, "composite");
        let plain = composite_normalize::<Flex>(
            p(x.clone()),
            p1(w.clone()),
            p1(b.clone()),
            stats(),
            eps,
            with_relu,
        );
        data4(plain.clone())
            .assert_approx_eq::<f32>(&expected_y.clone().convert::<f32>(), Tolerance::absolute(1e-4));

        let fused_stats = || [fm.clone(), fv.clone()];
        let fused = Flex::batch_norm_normalize(
            p(x.clone()),
            p1(w.clone()),
            p1(b.clone()),
            fused_stats(),
            eps,
            with_relu,
        );
        data4(fused).assert_approx_eq::<f32>(&data4(plain), Tolerance::absolute(1e-5));
        let fused = Flex::batch_norm_backward(
            p(x.clone()),
            p1(w.clone()),
            p1(b.clone()),
            fused_stats(),
            p(g.clone()),
            eps,
            with_relu,
        );
        check(fused, "fused");
    }
}

/// The convolution op (fused CPU kernels, their own backward) against Burn's `Conv2d` and its
/// autodiff, over strides, paddings, dilations, 1×1 and 7×7 kernels, batches smaller than the
/// thread pool, images split into bands of output rows, and bias.
#[test]
fn conv_op_matches_burns_convolution_forward_and_backward() {
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::PaddingConfig2d;
    use burn::tensor::ops::ConvOptions;
    use repro::nn::ops::conv::conv2d;
    use repro::nn::FusedBackend;
    type AD = Autodiff<Flex>;
    let device = Default::default();
    // (batch, in, out, height, width, kernel, stride, padding, dilation, bias)
    let cases = [
        (4, 3, 16, 32, 32, 3, 1, 1, 1, false),
        (3, 16, 32, 9, 7, 3, 2, 1, 1, false),
        (2, 8, 4, 6, 6, 1, 1, 0, 1, true),
        (1, 8, 4, 7, 7, 1, 2, 0, 1, false),
        (2, 3, 5, 15, 13, 7, 2, 3, 1, true),
        (2, 4, 6, 10, 10, 3, 1, 2, 2, false),
        (2, 2, 3, 8, 8, 3, 3, 0, 1, true),
        (3, 3, 4, 7, 9, 5, 1, 2, 1, false),
        (2, 4, 4, 1, 1, 3, 1, 1, 1, false),
        (2, 4, 4, 2, 3, 3, 1, 1, 1, true),
        // Several bands of output rows per image (the last one shorter), also with stride and
        // dilation.
        (2, 16, 16, 30, 30, 3, 1, 1, 1, false),
        (2, 16, 8, 33, 31, 3, 2, 1, 1, false),
        (2, 32, 8, 20, 20, 3, 1, 2, 2, true),
    ];
    for (n, c, co, h, w, k, stride, pad, dil, bias) in cases {
        let label = format!("n{n} c{c}→{co} {h}×{w} k{k} s{stride} p{pad} d{dil} bias {bias}");
        let conv: Conv2d<AD> = Conv2dConfig::new([c, co], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
            .with_dilation([dil, dil])
            .with_bias(bias)
            .init(&device);
        let x = Tensor::<Flex, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
        let options = ConvOptions::new([stride; 2], [pad; 2], [dil; 2], 1);
        let (xp, wp) = (
            x.clone().into_primitive().tensor(),
            conv.weight.val().inner().into_primitive().tensor(),
        );
        assert!(
            Flex::has_fused_conv2d(&xp, &wp, &options),
            "{label}: kernel applies"
        );

        let run = |fused: bool| {
            let xa = Tensor::<AD, 4>::from_inner(x.clone()).require_grad();
            let y = if fused {
                conv2d(&conv, xa.clone())
            } else {
                conv.forward(xa.clone())
            };
            // A non-uniform upstream gradient, so every output position is weighed differently.
            let weights = Tensor::<AD, 4>::from_inner(y.clone().inner().cos());
            let grads = (y.clone() * weights).sum().backward();
            let mut out = vec![
                y.inner().into_data(),
                xa.grad(&grads).unwrap().into_data(),
                conv.weight.grad(&grads).unwrap().into_data(),
            ];
            out.extend(conv.bias.as_ref().map(|b| b.grad(&grads).unwrap().into_data()));
            out
        };
        for (what, (ours, theirs)) in ["output", "dx", "dw", "db"]
            .iter()
            .zip(run(true).iter().zip(&run(false)))
        {
            assert_eq!(ours.shape, theirs.shape, "{label}: {what} shape");
            let (a, b) = (ours.to_vec::<f32>().unwrap(), theirs.to_vec::<f32>().unwrap());
            let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let worst = a.iter().zip(&b).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(
                worst <= 1e-5 * scale,
                "{label}: {what} differs by {worst} (scale {scale})"
            );
        }
    }
}

/// Every parameter (and running statistic) of every architecture is declared exactly once, with
/// the reference key, weight-decay role and fine-tuning trainability that the code before
/// declarations derived from struct and field names. `tests/fixtures/param_roles.json` was
/// written by that code (its `ParamGroup::of`, `Naming` and `Freezer`); running statistics were
/// in BatchNorm's group there and are `Statistic` now — they never get a gradient.
#[test]
fn declared_parameter_roles_keys_and_places_match_the_golden_list() {
    use burn::module::{ModuleVisitor, Param, ParamId};
    use burn::tensor::backend::Backend;
    use repro::nn::{Declare, Place, Role};

    struct Ids(Vec<ParamId>);
    impl<B: Backend> ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.0.push(p.id);
        }
    }

    let golden: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(include_str!("../fixtures/param_roles.json")).expect("golden JSON");
    let configs = [
        ("r8_relu", "arch: resnet8\nnum_classes: 10"),
        ("r32_apastar", "arch: resnet32\nnum_classes: 10\nactivation: aglu\nattention: se\ngate: apa\nattention_layernorm: true\nattention_dropout: 0.1\nreduction: 4\nclassifier: cosine"),
        ("r8_prelu_cbam_temp", "arch: resnet8\nnum_classes: 10\nactivation: prelu\nattention: cbam\ngate: sigmoid_temp\nreduction: 4\nclassifier: learnable_cosine"),
        ("r8_aglu_spatial_channel", "arch: resnet8\nnum_classes: 10\nactivation: aglu\nattention: spatial\ngate: gumbel_temp\nparams: channel"),
        ("r8_cbam_apa_channel_ln", "arch: resnet8\nnum_classes: 10\nattention: cbam\ngate: apa\nparams: channel\nattention_layernorm: true\nreduction: 4"),
        ("r50_relu", "arch: resnet50\nnum_classes: 10"),
        ("r50_apastar", "arch: resnet50\nnum_classes: 10\nactivation: aglu\nattention: se\ngate: apa\nattention_layernorm: true\nclassifier: cosine"),
        ("rx50_cbam", "arch: resnext50_32x4d\nnum_classes: 10\nactivation: aglu\nattention: cbam\ngate: apa\nattention_layernorm: true"),
        ("r50_prelu_spatial", "arch: resnet50\nnum_classes: 10\nactivation: prelu\nattention: spatial\nclassifier: learnable_cosine"),
    ];
    assert_eq!(golden.len(), configs.len());
    for (name, yaml) in configs {
        let model =
            Model::<Flex>::seeded(&config(yaml), 0, &Default::default()).expect("an image classifier");
        let specs = model.param_specs();
        let mut visited = Ids(Vec::new());
        model.visit(&mut visited);
        let mut declared: Vec<ParamId> = specs.iter().map(|s| s.id).collect();
        declared.sort_by_key(|id| id.to_string());
        visited.0.sort_by_key(|id| id.to_string());
        assert_eq!(
            declared, visited.0,
            "{name}: every parameter declared exactly once"
        );

        let last_stage = specs
            .iter()
            .filter_map(|s| match s.place {
                Place::Stage(i) => Some(i),
                _ => None,
            })
            .max();
        let mut rows: Vec<serde_json::Value> = specs
            .iter()
            .map(|s| {
                let group = match s.role {
                    Role::Weight => "Weight",
                    Role::Bias => "Bias",
                    Role::Norm | Role::Statistic => "Norm",
                    Role::Embedding => "Embedding",
                    Role::Adaptive => "Adaptive",
                };
                let trainable = s.place == Place::Head || Some(s.place) == last_stage.map(Place::Stage);
                serde_json::json!([s.key, group, trainable])
            })
            .collect();
        rows.sort_by(|a, b| a[0].as_str().cmp(&b[0].as_str()));
        assert_eq!(serde_json::Value::Array(rows), golden[name], "{name}");
    }
}

/// The same seed gives the same weights, for every kind of block: nothing is drawn from Burn's
/// process-wide generator, whose state depends on what the process did before (the spatial
/// gate's convolution once was, and CBAM runs were not reproducible).
#[test]
fn the_same_seed_gives_the_same_weights_in_every_block() {
    use repro::nn::import::export_state_dict;
    for attention in ["se", "cbam", "spatial"] {
        let c = config(&format!(
            "{{arch: resnet8, num_classes: 5, attention: {attention}, gate: apa, activation: aglu, \
             attention_layernorm: true, reduction: 4}}"
        ));
        let first = export_state_dict(
            &Model::<Flex>::seeded(&c, 7, &Default::default()).expect("an image classifier"),
        );
        let second = export_state_dict(
            &Model::<Flex>::seeded(&c, 7, &Default::default()).expect("an image classifier"),
        );
        for (key, tensor) in &first {
            assert_eq!(
                tensor.to_vec::<f32>().unwrap(),
                second[key].to_vec::<f32>().unwrap(),
                "{attention}: {key}"
            );
        }
    }
}
