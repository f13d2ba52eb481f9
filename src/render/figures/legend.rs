//! Legends in a column of their own to the right of the plots, so that no entry covers data
//! however many series a figure has, and series styles that stay apart from one another.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{fail, font, DrawResult};

/// Height of one legend row, in pixels.
const ROW: i32 = 18;
const SWATCH: i32 = 22;
const PAD: i32 = 8;
const LABEL_SIZE: u32 = 12;
/// The legend starts level with the plot areas, below the charts' captions.
const TOP: i32 = 40;
/// Opacity of filled bars, in the plots and in their swatches alike.
pub const BAR_ALPHA: f64 = 0.5;

/// Tableau 10: distinct on white and for the common colour-vision deficiencies.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Point shapes, cycled, so that neighbouring series differ in shape as well as colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
}

impl Marker {
    /// Draws the shape centred on `at`: data coordinates in a chart, pixels in the legend.
    pub fn draw<DB: DrawingBackend, CT: CoordTranslate>(
        self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
        colour: RGBColor,
    ) -> DrawResult
    where
        CT::From: Clone,
    {
        let style = colour.filled();
        let anchor = EmptyElement::at(at);
        match self {
            Marker::Circle => area.draw(&(anchor + Circle::new((0, 0), 4, style))),
            Marker::Square => area.draw(&(anchor + Rectangle::new([(-3, -3), (4, 4)], style))),
            Marker::Triangle => area.draw(&(anchor + TriangleMarker::new((0, 0), 5, style))),
        }
        .map_err(fail)
    }
}

/// How the `i`th of `n` series is drawn: no two share a colour. Beyond the qualitative palette,
/// hues are spread evenly around the colour wheel, alternately dark and light so that
/// neighbouring hues still differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesStyle {
    pub colour: RGBColor,
    pub marker: Marker,
}

impl SeriesStyle {
    pub fn nth(i: usize, n: usize) -> Self {
        let colour = match PALETTE.get(i) {
            Some(c) if n <= PALETTE.len() => *c,
            _ => {
                let lightness = if i.is_multiple_of(2) { 0.35 } else { 0.55 };
                let (r, g, b) = HSLColor(i as f64 / n as f64, 0.85, lightness).rgb();
                RGBColor(r, g, b)
            }
        };
        let marker = [Marker::Circle, Marker::Square, Marker::Triangle][i % 3];
        SeriesStyle { colour, marker }
    }
}

/// What a legend row shows left of its label.
#[derive(Debug, Clone, Copy)]
pub enum Swatch {
    Line,
    /// A line with its series' point marker.
    Marked(Marker),
    Bar,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub label: String,
    pub colour: RGBColor,
    pub swatch: Swatch,
}

impl Entry {
    pub fn series(label: impl Into<String>, style: SeriesStyle) -> Self {
        Entry {
            label: label.into(),
            colour: style.colour,
            swatch: Swatch::Marked(style.marker),
        }
    }

    fn draw_swatch<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (x, y): (i32, i32),
    ) -> DrawResult {
        let line = PathElement::new(vec![(x, y), (x + SWATCH, y)], self.colour.stroke_width(2));
        match self.swatch {
            Swatch::Line => area.draw(&line).map_err(fail),
            Swatch::Marked(marker) => {
                area.draw(&line).map_err(fail)?;
                marker.draw(area, (x + SWATCH / 2, y), self.colour)
            }
            Swatch::Bar => area
                .draw(&Rectangle::new(
                    [(x, y - 5), (x + SWATCH, y + 5)],
                    self.colour.mix(BAR_ALPHA).filled(),
                ))
                .map_err(fail),
        }
    }
}

fn label_width(label: &str) -> i32 {
    let font = font(LABEL_SIZE).font;
    // Only a missing font fails here; an overestimate keeps the label inside the legend then.
    font.box_size(label)
        .map_or(LABEL_SIZE * label.chars().count() as u32, |(w, _)| w) as i32
}

/// Width of the legend column: the widest label decides.
pub fn width(entries: &[Entry]) -> u32 {
    if entries.is_empty() {
        return 0;
    }
    let widest = entries.iter().map(|e| label_width(&e.label)).max().unwrap_or(0);
    (PAD + SWATCH + PAD + widest + 2 * PAD) as u32
}

/// Height the legend needs below the top of the figure.
pub fn height(entries: &[Entry]) -> u32 {
    (TOP + entries.len() as i32 * ROW + 2 * PAD) as u32
}

/// Draws the entries, framed, at the top of `area` (the column `width` made room for).
pub fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[Entry]) -> DrawResult {
    if entries.is_empty() {
        return Ok(());
    }
    let right = width(entries) as i32 - PAD;
    let bottom = TOP + entries.len() as i32 * ROW + PAD;
    area.draw(&Rectangle::new(
        [(0, TOP), (right, bottom)],
        BLACK.stroke_width(1),
    ))
    .map_err(fail)?;
    let text = font(LABEL_SIZE).pos(Pos::new(HPos::Left, VPos::Center));
    for (i, entry) in entries.iter().enumerate() {
        let y = TOP + PAD / 2 + ROW / 2 + i as i32 * ROW;
        entry.draw_swatch(area, (PAD, y))?;
        area.draw_text(&entry.label, &text, (PAD + SWATCH + PAD, y))
            .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_gets_its_own_colour() {
        for n in [1, 2, 10, 11, 12, 24, 60] {
            let colours: std::collections::HashSet<(u8, u8, u8)> =
                (0..n).map(|i| SeriesStyle::nth(i, n).colour.rgb()).collect();
            assert_eq!(colours.len(), n, "{n} series");
        }
    }
}
