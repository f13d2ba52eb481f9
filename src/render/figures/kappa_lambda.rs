//! Figure 6: learned κ and λ per layer.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{whole_x_panel, DrawResult, Entry, Figure, LearnedCurves, SeriesStyle, PANEL_WIDTH, PLOT_HEIGHT};

/// Height of one module kind's row of panels when there are several.
const ROW_HEIGHT: u32 = 340;

/// Figure 6: κ and λ per layer, one line per run, one row of panels per module kind (the
/// kinds number their layers apart and learn different values, so they never share axes).
pub struct KappaLambda<'a> {
    /// Per run, its curves by module kind.
    pub runs: &'a [(String, Vec<(String, LearnedCurves)>)],
}

type Values = fn(&LearnedCurves) -> &Vec<Option<f64>>;

impl KappaLambda<'_> {
    fn kinds(&self) -> Vec<&str> {
        let kinds: BTreeSet<&str> = self
            .runs
            .iter()
            .flat_map(|(_, kinds)| kinds.iter().map(|(k, _)| k.as_str()))
            .collect();
        kinds.into_iter().collect()
    }

    fn style(&self, run: usize) -> SeriesStyle {
        SeriesStyle::nth(run, self.runs.len())
    }

    /// Each run's points of one kind and parameter, in the run's style; runs without them
    /// are left out.
    fn series(&self, kind: &str, values: Values) -> Vec<(SeriesStyle, Vec<(f64, f64)>)> {
        self.runs
            .iter()
            .enumerate()
            .filter_map(|(i, (_, kinds))| {
                let curves = kinds.iter().find(|(k, _)| k == kind).map(|(_, c)| c)?;
                let points: Vec<(f64, f64)> = values(curves)
                    .iter()
                    .enumerate()
                    .filter_map(|(layer, v)| v.map(|v| ((layer + 1) as f64, v)))
                    .collect();
                (!points.is_empty()).then(|| (self.style(i), points))
            })
            .collect()
    }
}

/// How a caption names a module kind.
fn kind_title(kind: &str) -> String {
    match kind {
        "act" => "activations".into(),
        "gate" => "attention gates".into(),
        other => format!("{other} modules"),
    }
}

impl Figure for KappaLambda<'_> {
    fn plot_size(&self) -> (u32, u32) {
        let rows = self.kinds().len() as u32;
        (2 * PANEL_WIDTH, PLOT_HEIGHT.max(rows * ROW_HEIGHT))
    }

    fn legend(&self) -> Vec<Entry> {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, (label, _))| Entry::series(label.as_str(), self.style(i)))
            .collect()
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let kinds = self.kinds();
        let panels = area.split_evenly((kinds.len(), 2));
        let params: [(&str, Values); 2] = [("κ", |c| &c.kappa), ("λ", |c| &c.lambda)];
        for (row, kind) in kinds.iter().enumerate() {
            for (col, (symbol, values)) in params.iter().enumerate() {
                whole_x_panel(
                    &panels[2 * row + col],
                    &format!("learned {symbol} of {}", kind_title(kind)),
                    ("layer", symbol),
                    &self.series(kind, *values),
                )?;
            }
        }
        Ok(())
    }
}
