//! Analyses of a trained model, on plain buffers: neural-collapse NC1 (paper Eq. 12), the fit
//! of each class's logits to Gumbel and Logistic laws with its KS distance (Figure 1), and
//! attention entropy (Eq. 4) and variance (Figures 2 and 5).

use nalgebra::{DMatrix, DVector};

use crate::result::{ClassLogitFit, Fit};

/// NC1 = tr(Σ_W Σ_B^†) / K of features `[n × d]` (row-major) with labels in `0..classes`;
/// classes without samples are left out of K and Σ_B.
pub fn nc1(features: &[f32], dim: usize, labels: &[usize], classes: usize) -> f64 {
    let rows: Vec<DVector<f64>> = features
        .chunks_exact(dim)
        .map(|r| DVector::from_iterator(dim, r.iter().map(|&v| f64::from(v))))
        .collect();
    let mut sums = vec![DVector::<f64>::zeros(dim); classes];
    let mut counts = vec![0usize; classes];
    for (row, &label) in rows.iter().zip(labels) {
        sums[label] += row;
        counts[label] += 1;
    }
    let present: Vec<usize> = (0..classes).filter(|&k| counts[k] > 0).collect();
    let means: Vec<DVector<f64>> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &n)| s / (n.max(1) as f64))
        .collect();
    let global = rows.iter().fold(DVector::zeros(dim), |acc, r| acc + r) / rows.len().max(1) as f64;

    let mut within = DMatrix::<f64>::zeros(dim, dim);
    for (row, &label) in rows.iter().zip(labels) {
        let d = row - &means[label];
        within += &d * d.transpose();
    }
    within /= rows.len().max(1) as f64;
    let mut between = DMatrix::<f64>::zeros(dim, dim);
    for &k in &present {
        let d = &means[k] - &global;
        between += &d * d.transpose();
    }
    between /= present.len().max(1) as f64;
    (within * pseudo_inverse(between)).trace() / present.len().max(1) as f64
}

/// Moore–Penrose pseudo-inverse of a symmetric positive semi-definite matrix, dropping
/// eigenvalues below a relative threshold (Σ_B has rank ≤ K − 1).
fn pseudo_inverse(m: DMatrix<f64>) -> DMatrix<f64> {
    let eigen = m.symmetric_eigen();
    let largest = eigen.eigenvalues.iter().fold(0.0f64, |a, &v| a.max(v.abs()));
    let cutoff = largest * 1e-10 * eigen.eigenvalues.len() as f64;
    let inverted = eigen
        .eigenvalues
        .map(|v| if v.abs() > cutoff { 1.0 / v } else { 0.0 });
    &eigen.eigenvectors * DMatrix::from_diagonal(&inverted) * eigen.eigenvectors.transpose()
}

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Fits Gumbel (max) and Logistic laws by the method of moments to each class's logits
/// (`[n × classes]`), with the Kolmogorov–Smirnov statistic of each fit. `keep_logits` lists
/// the classes whose samples are kept in the result.
pub fn logit_fits(logits: &[f32], classes: usize, keep_logits: &[usize]) -> Vec<ClassLogitFit> {
    (0..classes)
        .map(|c| {
            let mut sample: Vec<f64> = logits
                .chunks_exact(classes)
                .map(|row| f64::from(row[c]))
                .collect();
            sample.sort_by(f64::total_cmp);
            let n = sample.len().max(1) as f64;
            let mean = sample.iter().sum::<f64>() / n;
            let std = (sample.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
                .sqrt()
                .max(1e-12);
            let gumbel_scale = std * 6f64.sqrt() / std::f64::consts::PI;
            let gumbel_loc = mean - EULER_GAMMA * gumbel_scale;
            let logistic_scale = std * 3f64.sqrt() / std::f64::consts::PI;
            let gumbel_cdf = |x: f64| (-(-(x - gumbel_loc) / gumbel_scale).exp()).exp();
            let logistic_cdf = |x: f64| 1.0 / (1.0 + (-(x - mean) / logistic_scale).exp());
            ClassLogitFit {
                class: c,
                logits: if keep_logits.contains(&c) {
                    sample.iter().map(|&v| v as f32).collect()
                } else {
                    Vec::new()
                },
                gumbel: Fit {
                    loc: gumbel_loc,
                    scale: gumbel_scale,
                    ks: ks_statistic(&sample, gumbel_cdf),
                },
                logistic: Fit {
                    loc: mean,
                    scale: logistic_scale,
                    ks: ks_statistic(&sample, logistic_cdf),
                },
            }
        })
        .collect()
}

/// sup |F_n − F| of a sorted sample against a continuous CDF.
pub fn ks_statistic(sorted: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let n = sorted.len() as f64;
    sorted.iter().enumerate().fold(0.0, |d, (i, &x)| {
        let f = cdf(x);
        d.max(f - i as f64 / n).max((i + 1) as f64 / n - f)
    })
}

/// Eq. 4 averaged over images: −(1/C) Σ_i [a log a + (1 − a) log(1 − a)] over an image's `c`
/// attention weights, and their variance; `weights` is `[n × c]`.
pub fn attention_entropy_variance(weights: &[f32], c: usize) -> (f64, f64) {
    let term = |a: f64| {
        if a <= 0.0 || a >= 1.0 {
            0.0
        } else {
            a * a.ln() + (1.0 - a) * (1.0 - a).ln()
        }
    };
    let (mut entropy, mut variance, mut n) = (0.0, 0.0, 0.0);
    for row in weights.chunks_exact(c) {
        let row: Vec<f64> = row.iter().map(|&a| f64::from(a)).collect();
        entropy += -row.iter().map(|&a| term(a)).sum::<f64>() / c as f64;
        let mean = row.iter().sum::<f64>() / c as f64;
        variance += row.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / c as f64;
        n += 1.0;
    }
    (entropy / f64::max(n, 1.0), variance / f64::max(n, 1.0))
}
