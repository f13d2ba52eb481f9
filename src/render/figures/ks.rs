//! Figure 1: one class's logits with fitted Gumbel and Logistic densities and their KS distances.

use plotters::coord::Shift;
use plotters::prelude::*;

use statrs::distribution::{Continuous, Gumbel};

use super::{fail, font, range, DrawResult, Figure};
use crate::result::ClassLogitFit;

/// Figure 1: a histogram (density) of one class's logits with the fitted Gumbel and Logistic
/// densities, each labelled with its KS distance.
pub struct KsFigure<'a> {
    pub title: String,
    pub ks: &'a ClassLogitFit,
}

const HIST_BINS: usize = 30;

/// Density of the Logistic distribution; closed form, no special function.
fn logistic_pdf(x: f64, loc: f64, scale: f64) -> f64 {
    let e = (-(x - loc) / scale).exp();
    e / (scale * (1.0 + e).powi(2))
}

impl Figure for KsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(fail)?;
        let xs: Vec<f64> = self
            .ks
            .logits
            .iter()
            .map(|v| f64::from(*v))
            .filter(|v| v.is_finite())
            .collect();
        let x = range(xs.iter().copied());
        let width = (x.end - x.start) / HIST_BINS as f64;
        let mut counts = [0usize; HIST_BINS];
        for v in &xs {
            let i = (((v - x.start) / width) as usize).min(HIST_BINS - 1);
            counts[i] += 1;
        }
        let density = |c: usize| c as f64 / (xs.len().max(1) as f64 * width);
        let grid: Vec<f64> = (0..=200)
            .map(|i| x.start + (x.end - x.start) * i as f64 / 200.0)
            .collect();
        let gumbel = Gumbel::new(self.ks.gumbel.loc, self.ks.gumbel.scale).map_err(fail)?;
        let g_curve: Vec<(f64, f64)> = grid.iter().map(|&t| (t, gumbel.pdf(t))).collect();
        let l = self.ks.logistic;
        let l_curve: Vec<(f64, f64)> = grid
            .iter()
            .map(|&t| (t, logistic_pdf(t, l.loc, l.scale)))
            .collect();
        let top = counts
            .iter()
            .map(|c| density(*c))
            .chain(g_curve.iter().chain(&l_curve).map(|p| p.1))
            .fold(0.0, f64::max)
            * 1.1;
        let area = root.margin(0, 0, 160, 160);
        let mut chart = ChartBuilder::on(&area)
            .caption(&self.title, font(18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(x.clone(), 0.0..top.max(1e-6))
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("logit")
            .y_desc("density")
            .label_style(font(12))
            .axis_desc_style(font(14))
            .draw()
            .map_err(fail)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = x.start + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, density(*c))], BLUE.mix(0.4).filled())
            }))
            .map_err(fail)?
            .label(format!("logits (n = {})", xs.len()))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLUE.mix(0.4).filled()));
        let curves = [
            (format!("Gumbel (KS {:.3})", self.ks.gumbel.ks), g_curve, RED),
            (format!("Logistic (KS {:.3})", l.ks), l_curve, GREEN),
        ];
        for (label, curve, color) in curves {
            chart
                .draw_series(LineSeries::new(curve, color.stroke_width(2)))
                .map_err(fail)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .label_font(font(12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_density_peaks_at_its_location() {
        assert!((logistic_pdf(0.0, 0.0, 1.0) - 0.25).abs() < 1e-12);
    }
}
