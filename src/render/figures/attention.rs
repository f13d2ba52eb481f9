//! Figures 2 and 5: attention entropy and variance per layer, frequent vs rare images.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{whole_x_panel, DrawResult, Entry, Figure, SeriesStyle, PANEL_WIDTH, PLOT_HEIGHT};
use crate::result::AttentionStats;

/// Figures 2 and 5: attention entropy and variance per layer, frequent against rare batches.
pub struct AttentionFigure<'a> {
    pub title: String,
    pub layers: &'a [AttentionStats],
}

/// The two batch kinds every panel compares.
const BATCHES: [&str; 2] = ["frequent", "rare"];

type Stat = fn(&AttentionStats) -> f64;

impl AttentionFigure<'_> {
    /// One series per batch kind, in `BATCHES` order.
    fn series(&self, per_batch: [Stat; 2]) -> Vec<(SeriesStyle, Vec<(f64, f64)>)> {
        per_batch
            .into_iter()
            .enumerate()
            .map(|(batch, stat)| {
                let points = self.layers.iter().enumerate();
                (
                    style(batch),
                    points.map(|(i, l)| ((i + 1) as f64, stat(l))).collect(),
                )
            })
            .collect()
    }
}

fn style(batch: usize) -> SeriesStyle {
    SeriesStyle::nth(batch, BATCHES.len())
}

impl Figure for AttentionFigure<'_> {
    fn plot_size(&self) -> (u32, u32) {
        (2 * PANEL_WIDTH, PLOT_HEIGHT)
    }

    fn legend(&self) -> Vec<Entry> {
        BATCHES
            .iter()
            .enumerate()
            .map(|(i, batch)| Entry::series(*batch, style(i)))
            .collect()
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let panels = area.split_evenly((1, 2));
        whole_x_panel(
            &panels[0],
            &format!("{}: attention entropy", self.title),
            ("layer", "entropy"),
            &self.series([|l| l.frequent_entropy, |l| l.rare_entropy]),
        )?;
        whole_x_panel(
            &panels[1],
            &format!("{}: attention variance", self.title),
            ("layer", "variance"),
            &self.series([|l| l.frequent_variance, |l| l.rare_variance]),
        )
    }
}
