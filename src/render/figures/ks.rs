//! Figure 1: one class's logits with fitted Gumbel and Logistic densities and their KS distances.

use plotters::coord::Shift;
use plotters::prelude::*;

use statrs::distribution::{Continuous, Gumbel};

use super::legend::{BAR_ALPHA, PALETTE};
use super::{fail, font, mesh, range, DrawResult, Entry, Figure, Swatch, PLOT_HEIGHT};
use crate::result::ClassLogitFit;

/// Figure 1: a histogram (density) of one class's logits with the fitted Gumbel and Logistic
/// densities, each labelled with its KS distance.
pub struct KsFigure<'a> {
    pub title: String,
    pub ks: &'a ClassLogitFit,
}

const HIST_BINS: usize = 30;
/// The histogram wants more width than a layer panel.
const KS_WIDTH: u32 = 640;

/// Density of the Logistic distribution; closed form, no special function.
fn logistic_pdf(x: f64, loc: f64, scale: f64) -> f64 {
    let e = (-(x - loc) / scale).exp();
    e / (scale * (1.0 + e).powi(2))
}

const BARS: RGBColor = PALETTE[0];
const GUMBEL: RGBColor = PALETTE[3];
const LOGISTIC: RGBColor = PALETTE[2];

impl KsFigure<'_> {
    fn logits(&self) -> Vec<f64> {
        self.ks
            .logits
            .iter()
            .map(|v| f64::from(*v))
            .filter(|v| v.is_finite())
            .collect()
    }
}

impl Figure for KsFigure<'_> {
    fn plot_size(&self) -> (u32, u32) {
        (KS_WIDTH, PLOT_HEIGHT)
    }

    fn legend(&self) -> Vec<Entry> {
        let line = |label: String, colour| Entry {
            label,
            colour,
            swatch: Swatch::Line,
        };
        vec![
            Entry {
                label: format!("logits (n = {})", self.logits().len()),
                colour: BARS,
                swatch: Swatch::Bar,
            },
            line(format!("Gumbel (KS {:.3})", self.ks.gumbel.ks), GUMBEL),
            line(format!("Logistic (KS {:.3})", self.ks.logistic.ks), LOGISTIC),
        ]
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let xs = self.logits();
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
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, font(18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(x.clone(), 0.0..top.max(1e-6))
            .map_err(fail)?;
        mesh(&mut chart, "logit", "density").draw().map_err(fail)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = x.start + i as f64 * width;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width, density(*c))],
                    BARS.mix(BAR_ALPHA).filled(),
                )
            }))
            .map_err(fail)?;
        for (curve, colour) in [(g_curve, GUMBEL), (l_curve, LOGISTIC)] {
            chart
                .draw_series(LineSeries::new(curve, colour.stroke_width(2)))
                .map_err(fail)?;
        }
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
