//! Evaluation of a trained model on the test split: the report every run gets, and the
//! optional analyses (`eval.analyses`).

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use crate::config::RunConfig;
use crate::data::{DataError, Dataset, Group, GroupThresholds, Loader, SplitKind};
use crate::eval::analysis::{attention_entropy_variance, logit_fits, nc1};
use crate::eval::report::{evaluate, EvalReport};
use crate::nn::{FusedBackend, Model};
use crate::result::{Analyses, AttentionStats};

/// Images per frequent-only and rare-only batch of the attention analysis (the paper uses 64).
const ANALYSIS_BATCH: usize = 64;

/// Logits, labels and penultimate features of the whole test split, in eval mode.
struct TestPass {
    logits: Vec<f32>,
    labels: Vec<usize>,
    features: Vec<f32>,
    feature_dim: usize,
    /// Normalised images of frequent-class and rare-class test samples (≤ 64 each).
    frequent: Vec<f32>,
    rare: Vec<f32>,
    image_shape: [usize; 3],
}

fn test_pass<B: FusedBackend>(
    model: &Model<B>,
    loader: &Loader,
    groups: &[Group],
    keep_images: bool,
) -> Result<TestPass, DataError> {
    let device = model.devices().into_iter().next().unwrap_or_default();
    let mut pass = TestPass {
        logits: Vec::new(),
        labels: Vec::new(),
        features: Vec::new(),
        feature_dim: 0,
        frequent: Vec::new(),
        rare: Vec::new(),
        image_shape: [0; 3],
    };
    for batch in loader.eval_batches(SplitKind::Test) {
        let batch = batch?;
        let [_, c, h, w] = batch.shape;
        pass.image_shape = [c, h, w];
        if keep_images {
            collect_group_images(&mut pass, &batch.images, &batch.labels, groups, c * h * w);
        }
        let x = Tensor::<B, 4>::from_data(TensorData::new(batch.images, batch.shape), &device);
        let features = model.features(x);
        pass.feature_dim = features.dims()[1];
        let logits = model.head().forward(features.clone());
        pass.features.extend(to_vec(features.into_data()));
        pass.logits.extend(to_vec(logits.into_data()));
        pass.labels.extend(batch.labels);
    }
    Ok(pass)
}

fn collect_group_images(
    pass: &mut TestPass,
    images: &[f32],
    labels: &[usize],
    groups: &[Group],
    size: usize,
) {
    for (image, &label) in images.chunks_exact(size).zip(labels) {
        let target = match groups.get(label) {
            Some(Group::Many) => &mut pass.frequent,
            Some(Group::Few) => &mut pass.rare,
            _ => continue,
        };
        if target.len() < ANALYSIS_BATCH * size {
            target.extend_from_slice(image);
        }
    }
}

fn to_vec(data: TensorData) -> Vec<f32> {
    data.convert::<f32>().to_vec::<f32>().unwrap_or_default()
}

/// The test report and, as configured, the analyses of `model` (an eval-mode model).
pub fn evaluate_model<B: FusedBackend>(
    model: &Model<B>,
    loader: &Loader,
    dataset: &Dataset,
    run: &RunConfig,
) -> Result<(EvalReport, Analyses), DataError> {
    let groups = analysis_groups(dataset, run);
    let wanted = &run.eval.analyses;
    let pass = test_pass(model, loader, &groups, wanted.attention)?;
    let classes = dataset.num_classes;
    let mut analyses = Analyses::default();
    if wanted.nc1 {
        analyses.nc1 = Some(nc1(&pass.features, pass.feature_dim, &pass.labels, classes));
    }
    if wanted.ks {
        // Figure 1 shows a frequent and a rare class: keep the head and the tail samples.
        analyses.ks = logit_fits(&pass.logits, classes, &[0, classes.saturating_sub(1)]);
    }
    if wanted.attention {
        analyses.attention = attention_stats(model, &pass);
    }
    let report = evaluate(
        pass.logits,
        &pass.labels,
        &dataset.class_counts,
        &dataset.groups(GroupThresholds::from(&run.data)),
        &run.eval,
    );
    Ok((report, analyses))
}

/// Many/few groups by the configured thresholds; when a group is empty (small synthetic sets),
/// the top and bottom thirds of classes by training count stand in for frequent and rare.
fn analysis_groups(dataset: &Dataset, run: &RunConfig) -> Vec<Group> {
    let groups = dataset.groups(GroupThresholds::from(&run.data));
    if groups.contains(&Group::Many) && groups.contains(&Group::Few) {
        return groups;
    }
    let mut order: Vec<usize> = (0..dataset.class_counts.len()).collect();
    order.sort_by_key(|&c| std::cmp::Reverse(dataset.class_counts[c]));
    let third = (order.len() / 3).max(1);
    let mut thirds = vec![Group::Medium; order.len()];
    for (rank, &c) in order.iter().enumerate() {
        if rank < third {
            thirds[c] = Group::Many;
        } else if rank >= order.len() - third {
            thirds[c] = Group::Few;
        }
    }
    thirds
}

fn attention_stats<B: FusedBackend>(model: &Model<B>, pass: &TestPass) -> Vec<AttentionStats> {
    let names = attention_names(model);
    let frequent = attention_maps(model, &pass.frequent, pass.image_shape);
    let rare = attention_maps(model, &pass.rare, pass.image_shape);
    names
        .into_iter()
        .zip(frequent.into_iter().zip(rare))
        .map(|(layer, ((fw, fc), (rw, rc)))| {
            let (frequent_entropy, frequent_variance) = attention_entropy_variance(&fw, fc);
            let (rare_entropy, rare_variance) = attention_entropy_variance(&rw, rc);
            AttentionStats {
                layer,
                frequent_entropy,
                rare_entropy,
                frequent_variance,
                rare_variance,
            }
        })
        .collect()
}

/// One name per attention map, in the order the forward pass produces them.
fn attention_names<B: FusedBackend>(model: &Model<B>) -> Vec<String> {
    model
        .attentions()
        .into_iter()
        .flat_map(|(name, attention)| {
            let gates = attention.gates().count();
            (0..gates).map(move |i| {
                if gates == 1 {
                    name.clone()
                } else {
                    format!("{name}.{}", ["channel", "spatial"][i.min(1)])
                }
            })
        })
        .collect()
}

/// Every attention map of one forward pass over `images`, each as (`[n × weights]`, weights).
fn attention_maps<B: FusedBackend>(
    model: &Model<B>,
    images: &[f32],
    [c, h, w]: [usize; 3],
) -> Vec<(Vec<f32>, usize)> {
    let n = images.len() / (c * h * w).max(1);
    if n == 0 {
        return Vec::new();
    }
    let device = model.devices().into_iter().next().unwrap_or_default();
    let x = Tensor::<B, 4>::from_data(TensorData::new(images.to_vec(), [n, c, h, w]), &device);
    let mut maps = Vec::new();
    model.features_traced(x, &mut |map| {
        let [_, a, b, d] = map.dims();
        maps.push((to_vec(map.into_data()), a * b * d));
    });
    maps
}
