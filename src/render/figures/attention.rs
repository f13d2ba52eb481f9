//! Figures 2 and 5: attention entropy and variance per layer, frequent vs rare images.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{fail, layer_panel, DrawResult, Figure};
use crate::result::AttentionStats;

/// Figures 2 and 5: attention entropy and variance per layer, frequent against rare batches.
pub struct AttentionFigure<'a> {
    pub title: String,
    pub layers: &'a [AttentionStats],
}

impl Figure for AttentionFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(fail)?;
        let panels = root.split_evenly((1, 2));
        let series = |f: fn(&AttentionStats) -> f64| -> Vec<(f64, f64)> {
            self.layers
                .iter()
                .enumerate()
                .map(|(i, l)| ((i + 1) as f64, f(l)))
                .collect()
        };
        layer_panel(
            &panels[0],
            &format!("{}: attention entropy", self.title),
            "entropy",
            &[
                ("frequent".into(), series(|l| l.frequent_entropy)),
                ("rare".into(), series(|l| l.rare_entropy)),
            ],
        )?;
        layer_panel(
            &panels[1],
            &format!("{}: attention variance", self.title),
            "variance",
            &[
                ("frequent".into(), series(|l| l.frequent_variance)),
                ("rare".into(), series(|l| l.rare_variance)),
            ],
        )
    }
}
