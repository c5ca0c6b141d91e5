//! Bar charts of benchmark results, drawn with `plotters` into SVG files.

use std::path::Path;

use plotters::prelude::*;
use xnpu_core::{Error, Result};

/// One bar: a value and, optionally, the range it comes from (drawn as a whisker).
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub range: Option<(f64, f64)>,
}

/// Bars compared with each other (one model, one metric), scaled to the largest of them.
#[derive(Clone, Debug)]
pub struct Group {
    pub label: String,
    pub bars: Vec<Bar>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(153, 153, 153),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// Draws `groups` as horizontal bars under `title` into the SVG file `path`. Each group has
/// its own scale (its largest value or range end fills the width); bars carry their values.
pub fn bars(path: &Path, title: &str, groups: &[Group]) -> Result<()> {
    let (width, label_w, bar_w, row) = (760u32, 190i32, 430.0f64, 20i32);
    let rows: usize = groups.iter().map(|g| g.bars.len() + 1).sum();
    let height = 50 + (row as u32 + 2) * rows as u32 + 10 * groups.len() as u32;
    let fail =
        |e: &dyn std::fmt::Debug| Error::compute(format!("cannot draw {}: {e:?}", path.display()));
    let area = SVGBackend::new(path, (width, height)).into_drawing_area();
    area.fill(&WHITE).map_err(|e| fail(&e))?;
    let text = |size: f64| ("sans-serif", size).into_font().color(&BLACK);
    let bold = |size: f64| {
        ("sans-serif", size, FontStyle::Bold)
            .into_font()
            .color(&BLACK)
    };
    area.draw(&Text::new(title.to_string(), (10, 10), text(15.0)))
        .map_err(|e| fail(&e))?;
    let mut y = 40;
    for g in groups {
        area.draw(&Text::new(g.label.clone(), (10, y), bold(13.0)))
            .map_err(|e| fail(&e))?;
        y += row;
        let max = g
            .bars
            .iter()
            .map(|b| b.range.map_or(b.value, |r| r.1).max(b.value))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
            .max(1e-12);
        let x = |v: f64| label_w + (bar_w * (v / max).clamp(0.0, 1.0)) as i32;
        for (i, b) in g.bars.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            area.draw(&Text::new(b.label.clone(), (20, y + 2), text(12.0)))
                .map_err(|e| fail(&e))?;
            let end = x(b.value).max(label_w + 1);
            area.draw(&Rectangle::new(
                [(label_w, y), (end, y + 14)],
                color.filled(),
            ))
            .map_err(|e| fail(&e))?;
            let mut right = end;
            if let Some((lo, hi)) = b.range {
                let (xl, xh) = (x(lo), x(hi));
                for seg in [
                    [(xl, y + 7), (xh, y + 7)],
                    [(xl, y + 3), (xl, y + 11)],
                    [(xh, y + 3), (xh, y + 11)],
                ] {
                    area.draw(&PathElement::new(seg.to_vec(), BLACK))
                        .map_err(|e| fail(&e))?;
                }
                right = right.max(xh);
            }
            area.draw(&Text::new(
                format!("{:.3}", b.value),
                (right + 6, y + 2),
                text(12.0),
            ))
            .map_err(|e| fail(&e))?;
            y += row + 2;
        }
        y += 10;
    }
    area.present().map_err(|e| fail(&e))
}
