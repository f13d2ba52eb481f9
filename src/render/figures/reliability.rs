//! Figure 8: reliability diagrams.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::{BAR_ALPHA, PALETTE};
use super::{fail, font, mesh, DrawResult, Entry, Figure, Swatch, PANEL_WIDTH, PLOT_HEIGHT};
use crate::result::Bin;

/// Figure 8: accuracy against confidence per bin, with the diagonal of perfect calibration.
pub struct Reliability<'a> {
    pub title: String,
    pub bins: &'a [Bin],
    pub ece: Option<f64>,
}

const BARS: RGBColor = PALETTE[0];
const DIAGONAL: RGBColor = PALETTE[3];

impl Figure for Reliability<'_> {
    fn plot_size(&self) -> (u32, u32) {
        (PANEL_WIDTH, PLOT_HEIGHT)
    }

    fn legend(&self) -> Vec<Entry> {
        vec![
            Entry {
                label: "accuracy".into(),
                colour: BARS,
                swatch: Swatch::Bar,
            },
            Entry {
                label: "perfect calibration".into(),
                colour: DIAGONAL,
                swatch: Swatch::Line,
            },
        ]
    }

    fn draw_plots<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult {
        let title = match self.ece {
            Some(ece) => format!("{} (ECE {ece:.3})", self.title),
            None => self.title.clone(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(title, font(18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(fail)?;
        mesh(&mut chart, "confidence", "accuracy").draw().map_err(fail)?;
        let filled = self.bins.iter().filter(|b| b.count > 0);
        let bar = |b: &Bin| [(b.lower, 0.0), (b.upper, b.accuracy)];
        chart
            .draw_series(
                filled
                    .clone()
                    .map(|b| Rectangle::new(bar(b), BARS.mix(BAR_ALPHA).filled())),
            )
            .map_err(fail)?;
        chart
            .draw_series(filled.map(|b| Rectangle::new(bar(b), BLACK.stroke_width(1))))
            .map_err(fail)?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                DIAGONAL.stroke_width(2),
            ))
            .map_err(fail)?;
        Ok(())
    }
}
