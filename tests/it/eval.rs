//! Metrics, losses, schedules and analyses against values computed by hand on small inputs.

use burn::backend::Flex;
use burn::tensor::{Int, Tensor, TensorData};
use repro::config::eval::{EvalConfig, LogitAdjustment};
use repro::config::train::{LossConfig, LossKind, ScheduleConfig, ScheduleKind, StepUnit};
use repro::data::Group;
use repro::eval::analysis::{attention_entropy_variance, ks_statistic, logit_fits, nc1};
use repro::eval::metrics::{adjust_logits, calibration, nll, softmax, top_k_hits};
use repro::eval::report::evaluate;
use repro::train::loss::{class_balanced_weights, Loss, Targets};
use repro::train::schedule::LrSchedule;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn pc_softmax_adds_the_reference_offsets() {
    let counts = [90, 10];
    let mut raw = vec![0.0f32; 2];
    adjust_logits(&mut raw, 2, &counts, LogitAdjustment::PcSoftmax);
    assert!(close(raw[0] as f64, (100f64 / 90.0).ln()) && close(raw[1] as f64, 10f64.ln()));
    let mut rel = vec![0.0f32; 2];
    adjust_logits(&mut rel, 2, &counts, LogitAdjustment::PcSoftmaxRel);
    assert!(close(rel[0] as f64, (10f64 / 90.0).ln()) && close(rel[1] as f64, 9f64.ln()));
}

#[test]
fn top_k_breaks_ties_towards_the_lower_class() {
    let logits = [1.0, 3.0, 2.0, /* */ 5.0, 5.0, 0.0];
    assert_eq!(top_k_hits(&logits, 3, &[2, 1], 1), vec![false, false]);
    assert_eq!(top_k_hits(&logits, 3, &[2, 1], 2), vec![true, true]);
}

#[test]
fn ece_and_nll_by_hand() {
    // Two confident right answers (p = 0.9) and one wrong (p = 0.6 on the wrong class).
    let probs = [0.9, 0.1, 0.1, 0.9, 0.6, 0.4];
    let labels = [0, 1, 1];
    let (ece, bins) = calibration(&probs, 2, &labels, 10);
    // Bin (0.8, 0.9]: conf 0.9, acc 1 → |0.1|·2/3; bin (0.5, 0.6]: conf 0.6, acc 0 → 0.6·1/3.
    assert!(close(ece, 0.1 * 2.0 / 3.0 + 0.6 / 3.0), "{ece}");
    assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 3);
    assert!(close(
        nll(&probs, 2, &labels),
        -(0.9f64.ln() * 2.0 + 0.4f64.ln()) / 3.0
    ));
}

#[test]
fn report_groups_and_softmax() {
    let logits = vec![2.0f32, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 2.0];
    let labels = [0, 1, 0, 0];
    let groups = [Group::Many, Group::Few];
    let report = evaluate(
        logits.clone(),
        &labels,
        &[200, 5],
        &groups,
        &EvalConfig::default(),
    );
    assert!(close(report.top1, 75.0));
    assert_eq!(report.many, Some(200.0 / 3.0));
    assert_eq!(report.few, Some(100.0));
    assert_eq!(report.medium, None);
    let p = softmax(&logits[..2], 2);
    assert!(close(p[0], 1.0 / (1.0 + (-2f64).exp())));
}

#[test]
fn balanced_softmax_and_deferred_reweighting_by_hand() {
    let device = Default::default();
    let logits =
        || Tensor::<Flex, 2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0], [2, 2]), &device);
    let labels = || {
        Targets::Hard(Tensor::<Flex, 1, Int>::from_data(
            TensorData::new(vec![0i64, 1], [2]),
            &device,
        ))
    };
    let counts = [3, 1];

    let bsce = Loss::new(
        &LossConfig {
            kind: LossKind::Bsce,
            ..LossConfig::default()
        },
        &counts,
    );
    let value = f64::from(bsce.forward(logits(), labels(), 0).into_scalar());
    // Adjusted logits [1 + ln 3, 0] and [ln 3, 0]: losses ln(1 + e^{-(1+ln 3)}) and ln(4).
    let expected = ((1.0 + (-(1.0 + 3f64.ln())).exp()).ln() + 4f64.ln()) / 2.0;
    assert!((value - expected).abs() < 1e-5, "{value} vs {expected}");

    let w = class_balanced_weights(&[10, 1], 0.9);
    let raw = [0.1 / (1.0 - 0.9f64.powi(10)), 1.0];
    let norm = raw[0] + raw[1];
    assert!(
        (f64::from(w[0]) - 2.0 * raw[0] / norm).abs() < 1e-6
            && (f64::from(w[1]) - 2.0 * raw[1] / norm).abs() < 1e-6
    );

    let drw = Loss::new(
        &LossConfig {
            drw_epoch: Some(2),
            drw_beta: 0.9,
            ..LossConfig::default()
        },
        &[10, 1],
    );
    let plain = f64::from(drw.forward(logits(), labels(), 1).into_scalar());
    let weighted = f64::from(drw.forward(logits(), labels(), 2).into_scalar());
    let (l0, l1) = ((1.0 + (-1f64).exp()).ln(), 2f64.ln());
    assert!(
        (plain - (l0 + l1) / 2.0).abs() < 1e-5,
        "before the DRW epoch: plain mean"
    );
    let (w0, w1) = (f64::from(w[0]), f64::from(w[1]));
    assert!(
        (weighted - (w0 * l0 + w1 * l1) / (w0 + w1)).abs() < 1e-5,
        "PyTorch's weighted mean"
    );
}

#[test]
fn warmup_then_cosine_per_epoch_as_the_reference() {
    let config = ScheduleConfig {
        kind: ScheduleKind::Cosine,
        warmup_epochs: 3,
        warmup_start_factor: 0.01,
        ..ScheduleConfig::default()
    };
    let s = LrSchedule::new(0.2, 13, config.clone());
    assert!(close(s.lr(0, 5, 10), 0.002));
    assert!(close(s.lr(1, 0, 10), 0.2 * (0.01 + 0.99 / 3.0)));
    assert!(close(s.lr(3, 0, 10), 0.2));
    assert!(close(s.lr(8, 0, 10), 0.1));
    let per_iteration = LrSchedule::new(
        0.2,
        13,
        ScheduleConfig {
            step: StepUnit::Iteration,
            ..config
        },
    );
    assert!(close(per_iteration.lr(0, 5, 10), 0.2 * (0.01 + 0.99 * 0.5 / 3.0)));
    let steps = LrSchedule::new(
        1.0,
        20,
        ScheduleConfig {
            kind: ScheduleKind::Multistep,
            warmup_epochs: 0,
            milestones: vec![5, 10],
            ..ScheduleConfig::default()
        },
    );
    assert!(
        close(steps.lr(4, 0, 1), 1.0) && close(steps.lr(5, 0, 1), 0.1) && close(steps.lr(12, 0, 1), 0.01)
    );
}

#[test]
fn nc1_by_hand() {
    // Class 0 at {0, 2}, class 1 at {4, 6}: Σ_W = 1, Σ_B = 4, NC1 = (1/4)/2.
    let features = [0.0f32, 2.0, 4.0, 6.0];
    assert!(close(nc1(&features, 1, &[0, 0, 1, 1], 2), 0.125));
}

#[test]
fn ks_distance_and_fits_by_hand() {
    let sample = [0.0, 1.0, 2.0, 3.0];
    assert!(close(ks_statistic(&sample, |x| x / 4.0), 0.25));
    // Logits of a symmetric class fit the Logistic better than the skewed Gumbel.
    let logits: Vec<f32> = (0..2000)
        .map(|i| (i as f32 + 0.5) / 2000.0)
        .map(|u| (u / (1.0 - u)).ln())
        .collect();
    let fits = logit_fits(&logits, 1, &[0]);
    assert!(
        fits[0].logistic.ks < 0.01 && fits[0].gumbel.ks > fits[0].logistic.ks,
        "{:?}",
        fits[0]
    );
    assert_eq!(fits[0].logits.len(), 2000);
}

#[test]
fn attention_entropy_by_hand() {
    let (entropy, variance) = attention_entropy_variance(&[0.5, 0.5, 1.0, 0.0], 2);
    assert!(close(entropy, 2f64.ln() / 2.0), "{entropy}");
    assert!(close(variance, 0.25 / 2.0));
}
