//! The long run's samples as an SVG: one panel per series (daemon RSS, daemon CPU, slot-map
//! fill) over time, drawn as plain polylines so the file needs nothing to view.

use std::fmt::Write as _;

use serde_json::Value;

const WIDTH: f64 = 720.0;
const PANEL: f64 = 150.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 30.0;
const GAP: f64 = 45.0;

/// One series: title, unit, and the value of a sample.
struct Series {
    title: &'static str,
    unit: &'static str,
    value: fn(&Value) -> f64,
}

const SERIES: [Series; 3] = [
    Series { title: "daemon resident memory", unit: "MiB", value: |s| s["rss_kib"].as_f64().unwrap_or(0.0) / 1024.0 },
    Series { title: "daemon CPU", unit: "% of one core", value: |s| s["cpu_percent"].as_f64().unwrap_or(0.0) },
    Series {
        title: "slot map fill",
        unit: "% of capacity",
        value: |s| {
            let cap = s["slots_capacity"].as_f64().unwrap_or(0.0);
            if cap > 0.0 { 100.0 * s["slots_used"].as_f64().unwrap_or(0.0) / cap } else { 0.0 }
        },
    },
];

/// The SVG for `samples` (each with `t` in seconds).
pub fn plot(samples: &[Value], caption: &str) -> String {
    let height = TOP + SERIES.len() as f64 * (PANEL + GAP) + 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" \
         font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\">{}</text>\n",
        escape(caption)
    );
    let t_max = samples.iter().filter_map(|s| s["t"].as_f64()).fold(1.0, f64::max);
    for (i, series) in SERIES.iter().enumerate() {
        let top = TOP + i as f64 * (PANEL + GAP) + 15.0;
        let values: Vec<(f64, f64)> =
            samples.iter().filter_map(|s| Some((s["t"].as_f64()?, (series.value)(s)))).collect();
        let max = values.iter().map(|v| v.1).fold(0.0, f64::max).max(1e-9) * 1.1;
        let x = |t: f64| LEFT + (WIDTH - LEFT - RIGHT) * t / t_max;
        let y = |v: f64| top + PANEL - PANEL * v / max;
        let points: Vec<String> = values.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
        let _ = write!(
            svg,
            "<text x=\"{LEFT}\" y=\"{:.1}\">{} ({})</text>\n\
             <rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.1}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} s</text>\n\
             <polyline fill=\"none\" stroke=\"#1f6fb2\" stroke-width=\"1.5\" points=\"{}\"/>\n",
            top - 4.0,
            series.title,
            series.unit,
            WIDTH - LEFT - RIGHT,
            LEFT - 6.0,
            top + 10.0,
            max,
            LEFT - 6.0,
            top + PANEL,
            WIDTH - RIGHT,
            top + PANEL + 14.0,
            t_max,
            points.join(" ")
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_has_one_polyline_per_series_with_every_sample() {
        let samples: Vec<Value> = (0..5)
            .map(|i| {
                serde_json::json!({"t": i * 10, "rss_kib": 20_000 + i, "cpu_percent": 1.5,
                "slots_used": i, "slots_capacity": 16384})
            })
            .collect();
        let svg = plot(&samples, "a <test>");
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("a &lt;test&gt;"));
        let first = svg.split("points=\"").nth(1).expect("points");
        assert_eq!(first.split('"').next().expect("list").split(' ').count(), 5);
    }
}
