//! Learning curves: one run's train loss, test top-1 (or a language model's validation loss) and
//! learning rate per epoch, and a table's rows compared on one plot.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{whole_x_panel, DrawResult, Entry, Figure, SeriesStyle, PANEL_WIDTH, PLOT_HEIGHT};
use crate::result::RunResult;

/// Width of one panel of a run's curves: three fit the width of a page.
const CURVE_PANEL_WIDTH: u32 = 380;
const CURVE_HEIGHT: u32 = 300;

/// A run's per-epoch series, as (epoch, value) points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    pub loss: Vec<(f64, f64)>,
    /// Test top-1 (%) at the epochs evaluated (`eval.eval_every`), and at the epoch the final
    /// metrics come from, so that a run evaluated only at its end still shows where it ended.
    pub top1: Vec<(f64, f64)>,
    /// A language model's validation loss at the epochs evaluated.
    pub val_loss: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
}

impl Curves {
    pub fn of(result: &RunResult) -> Self {
        let at = |f: fn(&crate::result::EpochMetrics) -> Option<f64>| -> Vec<(f64, f64)> {
            result
                .epochs
                .iter()
                .filter_map(|e| Some((e.epoch as f64, f(e)?)).filter(|p| p.1.is_finite()))
                .collect()
        };
        let mut top1 = at(|e| e.test_top1);
        let last = result.reported_epoch.or(result.epochs.last().map(|e| e.epoch));
        if let (Some(epoch), Some(value)) = (last, result.metric("test", "top1")) {
            let epoch = epoch as f64;
            if !top1.iter().any(|p| p.0 == epoch) {
                top1.push((epoch, value));
                top1.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
        }
        Curves {
            loss: at(|e| Some(e.loss)),
            top1,
            val_loss: at(|e| e.val_loss),
            lr: at(|e| e.lr),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.loss.is_empty() && self.top1.is_empty()
    }
}

/// One run's learning curves: train loss, test top-1 and learning rate, side by side.
pub struct LearningCurves<'a> {
    pub curves: &'a Curves,
}

type Panel<'a> = (&'a str, &'a str, &'a [(f64, f64)]);

impl LearningCurves<'_> {
    fn panels(&self) -> Vec<Panel<'_>> {
        let c = self.curves;
        [
            ("train loss", "loss", c.loss.as_slice()),
            ("test top-1", "top-1 (%)", c.top1.as_slice()),
            ("validation loss", "loss", c.val_loss.as_slice()),
            ("learning rate", "lr", c.lr.as_slice()),
        ]
        .into_iter()
        .filter(|(_, _, points)| !points.is_empty())
        .collect()
    }
}

impl Figure for LearningCurves<'_> {
    fn plot_size(&self) -> (u32, u32) {
        (
            self.panels().len().max(1) as u32 * CURVE_PANEL_WIDTH,
            CURVE_HEIGHT,
        )
    }

    fn legend(&self) -> Vec<Entry> {
        Vec::new()
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let panels = self.panels();
        let areas = area.split_evenly((1, panels.len().max(1)));
        let style = SeriesStyle::nth(0, 1);
        for ((title, y_desc, points), area) in panels.iter().zip(&areas) {
            whole_x_panel(area, title, ("epoch", y_desc), &[(style, points.to_vec())])?;
        }
        Ok(())
    }
}

/// A table's rows on one plot: each row's (representative run's) train loss and test top-1 (a
/// language model's validation loss) per epoch.
pub struct CurveComparison<'a> {
    pub runs: &'a [(String, Curves)],
}

/// Which evaluation a comparison's left panel shows: (title, y axis, the series).
type Evaluated = (&'static str, &'static str, fn(&Curves) -> &Vec<(f64, f64)>);

impl CurveComparison<'_> {
    /// Test top-1, or, for language models (no top-1, a validation loss), the validation loss.
    pub fn evaluated(&self) -> Evaluated {
        let none = |f: fn(&Curves) -> &Vec<(f64, f64)>| self.runs.iter().all(|(_, c)| f(c).is_empty());
        if none(|c| &c.top1) && !none(|c| &c.val_loss) {
            ("validation loss", "loss", |c| &c.val_loss)
        } else {
            ("test top-1", "top-1 (%)", |c| &c.top1)
        }
    }

    fn series(&self, values: fn(&Curves) -> &Vec<(f64, f64)>) -> Vec<(SeriesStyle, Vec<(f64, f64)>)> {
        let n = self.runs.len();
        self.runs
            .iter()
            .enumerate()
            .map(|(i, (_, c))| (SeriesStyle::nth(i, n), values(c).clone()))
            .filter(|(_, points)| !points.is_empty())
            .collect()
    }
}

impl Figure for CurveComparison<'_> {
    fn plot_size(&self) -> (u32, u32) {
        (2 * PANEL_WIDTH, PLOT_HEIGHT)
    }

    fn legend(&self) -> Vec<Entry> {
        let n = self.runs.len();
        self.runs
            .iter()
            .enumerate()
            .map(|(i, (label, _))| Entry::series(label.as_str(), SeriesStyle::nth(i, n)))
            .collect()
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let (left, right) = area.split_horizontally(PANEL_WIDTH);
        let (title, y_desc, values) = self.evaluated();
        whole_x_panel(&left, title, ("epoch", y_desc), &self.series(values))?;
        whole_x_panel(&right, "train loss", ("epoch", "loss"), &self.series(|c| &c.loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::EpochMetrics;

    fn epoch(epoch: usize, loss: f64, top1: Option<f64>) -> EpochMetrics {
        EpochMetrics {
            epoch,
            loss,
            lr: Some(0.1),
            images_per_s: None,
            eval_seconds: None,
            test_top1: top1,
            ..EpochMetrics::default()
        }
    }

    #[test]
    fn the_final_evaluation_ends_the_top1_curve_once() {
        let mut result = RunResult {
            epochs: vec![
                epoch(1, 2.0, Some(20.0)),
                epoch(2, 1.5, None),
                epoch(3, 1.0, None),
            ],
            reported_epoch: Some(3),
            ..RunResult::default()
        }
        .with_metric("test", "top1", 41.0);
        let c = Curves::of(&result);
        assert_eq!(c.loss, [(1.0, 2.0), (2.0, 1.5), (3.0, 1.0)]);
        assert_eq!(c.top1, [(1.0, 20.0), (3.0, 41.0)]);
        // Evaluated at its last epoch already: not twice.
        result.epochs[2].test_top1 = Some(41.0);
        assert_eq!(Curves::of(&result).top1, [(1.0, 20.0), (3.0, 41.0)]);
    }
}
