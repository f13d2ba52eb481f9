//! Figure 6: learned κ and λ per layer.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{fail, layer_panel, DrawResult, Figure, LearnedCurves};

/// Figure 6: κ and λ per layer, one line per run.
pub struct KappaLambda<'a> {
    pub runs: &'a [(String, LearnedCurves)],
}

impl Figure for KappaLambda<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(fail)?;
        let panels = root.split_evenly((1, 2));
        let pick = |f: fn(&LearnedCurves) -> &Vec<Option<f64>>| -> Vec<(String, Vec<(f64, f64)>)> {
            self.runs
                .iter()
                .map(|(label, c)| {
                    let points = f(c)
                        .iter()
                        .enumerate()
                        .filter_map(|(i, v)| v.map(|v| ((i + 1) as f64, v)))
                        .collect();
                    (label.clone(), points)
                })
                .filter(|(_, p): &(String, Vec<(f64, f64)>)| !p.is_empty())
                .collect()
        };
        layer_panel(&panels[0], "learned κ per layer", "κ", &pick(|c| &c.kappa))?;
        layer_panel(&panels[1], "learned λ per layer", "λ", &pick(|c| &c.lambda))
    }
}
