//! Figure 8: reliability diagrams.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{fail, font, DrawResult, Figure};
use crate::result::Bin;

/// Figure 8: accuracy against confidence per bin, with the diagonal of perfect calibration.
pub struct Reliability<'a> {
    pub title: String,
    pub bins: &'a [Bin],
    pub ece: Option<f64>,
}

impl Figure for Reliability<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(fail)?;
        let title = match self.ece {
            Some(ece) => format!("{} (ECE {ece:.3})", self.title),
            None => self.title.clone(),
        };
        let area = root.margin(0, 0, 240, 240);
        let mut chart = ChartBuilder::on(&area)
            .caption(title, font(18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc("confidence")
            .y_desc("accuracy")
            .label_style(font(12))
            .axis_desc_style(font(14))
            .draw()
            .map_err(fail)?;
        let filled = self.bins.iter().filter(|b| b.count > 0);
        chart
            .draw_series(
                filled
                    .clone()
                    .map(|b| Rectangle::new([(b.lower, 0.0), (b.upper, b.accuracy)], BLUE.mix(0.6).filled())),
            )
            .map_err(fail)?
            .label("accuracy")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], BLUE.mix(0.6).filled()));
        chart
            .draw_series(
                filled
                    .map(|b| Rectangle::new([(b.lower, 0.0), (b.upper, b.accuracy)], BLACK.stroke_width(1))),
            )
            .map_err(fail)?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], RED.stroke_width(2)))
            .map_err(fail)?
            .label("perfect calibration")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(12))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(fail)?;
        Ok(())
    }
}
