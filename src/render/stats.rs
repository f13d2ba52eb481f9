//! Statistics of one table cell: the spread over seeds, the comparison with the paper's number,
//! and whether two cells differ beyond noise. The t distribution comes from statrs.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::Statistics;

/// Mean and spread of a cell's values (one per finished seed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` for a single value.
    pub std: Option<f64>,
    /// Standard error of the mean, σ/√n.
    pub se: Option<f64>,
    /// 95% confidence interval of the mean (t distribution with n − 1 degrees of freedom).
    pub ci95: Option<(f64, f64)>,
}

/// Two-sided 95%: the quantile both the confidence interval and the tie test use.
const CONFIDENCE_QUANTILE: f64 = 0.975;

/// The |Δ| / (σ/√n) up to which a difference to the paper is noise. Two standard errors: a
/// 95% interval only with many seeds; with 3 seeds (t, 2 degrees of freedom) it covers ~82%.
pub const NOISE_K: f64 = 2.0;

/// The t quantile for `df` degrees of freedom; `None` when the distribution is undefined.
fn t_quantile(df: f64) -> Option<f64> {
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(t.inverse_cdf(CONFIDENCE_QUANTILE))
}

/// `None` for no values. Non-finite values never get here (diverged runs are a state).
pub fn summarise(values: &[f64]) -> Option<Summary> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    let mean = values.mean();
    let std = (n > 1).then(|| values.std_dev());
    let se = std.map(|s| s / (n as f64).sqrt());
    let ci95 = se.and_then(|se| {
        let half = t_quantile((n - 1) as f64)? * se;
        Some((mean - half, mean + half))
    });
    Some(Summary {
        n,
        mean,
        std,
        se,
        ci95,
    })
}

/// How a reproduced cell compares with the paper's number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// |Δ| ≤ 2·σ/√n; `k` = |Δ| / (σ/√n).
    WithinNoise { k: f64 },
    /// Outside the noise (or no noise estimate) but within the manifest's declared tolerance.
    WithinTolerance,
    /// |Δ| = k·σ/√n with k > 2.
    Off { k: f64 },
    /// One seed, or seeds that agree exactly: no noise estimate, and outside any tolerance.
    NoNoiseEstimate,
}

pub fn verdict(s: &Summary, paper: f64, tolerance: Option<f64>) -> Verdict {
    let delta = (s.mean - paper).abs();
    let k = s.se.filter(|se| *se > 0.0).map(|se| delta / se);
    match k {
        Some(k) if k <= NOISE_K => Verdict::WithinNoise { k },
        // An absolute slack of 1e-9 so that |Δ| equal to the tolerance, computed in floating
        // point, still counts as within it.
        _ if tolerance.is_some_and(|t| delta <= t + 1e-9) => Verdict::WithinTolerance,
        Some(k) => Verdict::Off { k },
        None => Verdict::NoNoiseEstimate,
    }
}

/// Whether two cells are indistinguishable: equal at the printed precision, or not
/// significantly different by Welch's t-test at 95% (both need two or more seeds).
pub fn tied(a: &Summary, b: &Summary, precision: usize) -> bool {
    if round(a.mean, precision) == round(b.mean, precision) {
        return true;
    }
    let (Some(sa), Some(sb)) = (a.se, b.se) else {
        return false;
    };
    let pooled = (sa * sa + sb * sb).sqrt();
    if pooled == 0.0 {
        return false;
    }
    // Welch–Satterthwaite degrees of freedom.
    let df = pooled.powi(4) / (sa.powi(4) / (a.n - 1) as f64 + sb.powi(4) / (b.n - 1) as f64);
    match t_quantile(df) {
        Some(t) => (a.mean - b.mean).abs() <= t * pooled,
        None => false,
    }
}

/// Rounds as the table prints: the same string means the same number.
pub fn round(x: f64, precision: usize) -> String {
    format!("{x:.precision$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_three_seeds() {
        let s = summarise(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!((s.n, s.mean, s.std), (3, 2.0, Some(1.0)));
        let (lo, hi) = s.ci95.unwrap();
        // t(0.975, 2) = 4.303; se = 1/√3.
        assert!((hi - 2.0 - 4.302_652_7 / 3f64.sqrt()).abs() < 1e-5, "{lo} {hi}");
        assert!(summarise(&[]).is_none());
        assert_eq!(summarise(&[5.0]).unwrap().std, None);
    }

    #[test]
    fn verdicts() {
        let s = summarise(&[57.0, 57.2, 57.4]).unwrap(); // mean 57.2, se 0.1155
        assert!(matches!(verdict(&s, 57.4, None), Verdict::WithinNoise { .. }));
        assert!(matches!(verdict(&s, 58.0, None), Verdict::Off { k } if (k - 6.928).abs() < 1e-2));
        assert_eq!(verdict(&s, 58.0, Some(1.0)), Verdict::WithinTolerance);
        let one = summarise(&[57.0]).unwrap();
        assert_eq!(verdict(&one, 58.0, None), Verdict::NoNoiseEstimate);
        assert_eq!(verdict(&one, 57.5, Some(0.5)), Verdict::WithinTolerance);
    }

    #[test]
    fn ties() {
        let a = summarise(&[60.0, 61.0, 62.0]).unwrap();
        let b = summarise(&[59.5, 60.5, 61.5]).unwrap();
        let c = summarise(&[50.0, 50.1, 50.2]).unwrap();
        assert!(tied(&a, &b, 1));
        assert!(!tied(&a, &c, 1));
        let x = summarise(&[60.04]).unwrap();
        let y = summarise(&[59.96]).unwrap();
        assert!(tied(&x, &y, 1));
        assert!(!tied(&x, &y, 2));
    }
}
