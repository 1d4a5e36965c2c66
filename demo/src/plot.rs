//! `--plot FILE.svg`: where the leaderboard reads went, second by second, drawn with
//! `plotters` (its SVG backend alone: text is SVG text, so no font library is needed). The
//! shares served by the master, the replicas and the cache are stacked (0–100 %, left axis);
//! the reads per second are a line on a log scale (right axis); a dashed line marks the
//! second the key turned hot.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Colours of the master, replicas and cache shares.
const MASTER: RGBColor = RGBColor(0xd1, 0x49, 0x5b);
const REPLICAS: RGBColor = RGBColor(0x2e, 0x86, 0xab);
const CACHE: RGBColor = RGBColor(0x66, 0xa1, 0x82);

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;

/// A stacked layer: its name, colour, and the top of its band in a second.
type Layer = (&'static str, RGBColor, fn(&Second) -> f64);

/// One second of the run: it ends `seconds` after the start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    pub seconds: f64,
    pub reads_per_sec: f64,
    pub master: f64,
    pub replicas: f64,
    pub cache: f64,
    /// The key was hot at the end of this second.
    pub hot: bool,
}

/// Draws `rows` under `title` into the SVG file `path`; the error names the file.
pub fn draw(path: &Path, title: &str, rows: &[Second]) -> Result<(), String> {
    let problem = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    chart(&root, title, rows).map_err(|e| problem(&e))?;
    root.present().map_err(|e| problem(&e))
}

fn chart(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    rows: &[Second],
) -> Result<(), Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    let end = rows.last().map_or(1.0, |r| r.seconds).max(1.0);
    let peak = rows.iter().map(|r| r.reads_per_sec).fold(10.0, f64::max);
    let top = 10f64.powf(peak.log10().ceil());
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..1.0)?
        .set_secondary_coord(0.0..end, (1.0..top).log_scale());
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("seconds")
        .x_label_formatter(&|s| format!("{s:.0}"))
        .y_desc("share of the reads")
        .y_label_formatter(&|share| format!("{:.0} %", share * 100.0))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("reads/s")
        .y_label_formatter(&|v| thousands(*v))
        .draw()?;

    // Stacked from the bottom: master, replicas, cache. Each row is the second ending at its
    // time, so each share is a step from the second before.
    let layers: [Layer; 3] = [
        ("cache", CACHE, |r| r.master + r.replicas + r.cache),
        ("replicas", REPLICAS, |r| r.master + r.replicas),
        ("master", MASTER, |r| r.master),
    ];
    for (name, colour, upper) in layers {
        let steps = rows.iter().flat_map(|r| {
            let u = upper(r);
            [((r.seconds - 1.0).max(0.0), u), (r.seconds, u)]
        });
        chart
            .draw_series(AreaSeries::new(steps, 0.0, colour.mix(0.85)))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .draw_secondary_series(LineSeries::new(
            rows.iter()
                .map(|r| ((r.seconds - 0.5).max(0.0), r.reads_per_sec.max(1.0))),
            BLACK.stroke_width(2),
        ))?
        .label("reads/s (right, log)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
    if let Some(hot) = rows.iter().find(|r| r.hot) {
        let at = (hot.seconds - 1.0).max(0.0);
        chart
            .draw_series(std::iter::once(PathElement::new(
                [(at, 0.0), (at, 1.0)],
                BLACK.stroke_width(1),
            )))?
            .label("turned hot")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// `1,270,761`.
fn thousands(v: f64) -> String {
    crate::format::thousands(v.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_draws_its_shares_its_rate_and_the_turn() {
        let rows: Vec<Second> = (1..=10)
            .map(|s| Second {
                seconds: f64::from(s),
                reads_per_sec: if s < 5 { 200.0 } else { 1_000_000.0 },
                master: if s < 5 { 1.0 } else { 0.0 },
                replicas: 0.0,
                cache: if s < 5 { 0.0 } else { 1.0 },
                hot: s >= 5,
            })
            .collect();
        let path = std::env::temp_dir().join(format!("hotkey-plot-{}.svg", std::process::id()));
        draw(&path, "2 replicas + cache", &rows).expect("draw");
        let svg = std::fs::read_to_string(&path).expect("the SVG");
        std::fs::remove_file(&path).expect("remove the SVG");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("2 replicas + cache"), "the title");
        assert!(
            svg.contains("turned hot") && svg.contains("reads/s"),
            "the legend"
        );
        assert!(
            svg.contains("1,000,000"),
            "the right axis reaches the peak's decade"
        );
        assert!(
            svg.contains("#D1495B") || svg.contains("#d1495b"),
            "the master's colour"
        );
    }
}
