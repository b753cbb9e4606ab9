//! Bar charts as SVG, for `bench/RESULTS.md`: one horizontal bar per value, on a log
//! scale (the values span orders of magnitude), each labelled with its value.

use std::fmt::Write as _;

/// Writes a chart of `bars` (label, value) titled `title` to `path`.
pub(crate) fn bars(path: &str, title: &str, bars: &[(String, f64)]) -> Result<(), String> {
    std::fs::write(path, chart(title, bars)).map_err(|e| format!("{path}: {e}"))
}

fn chart(title: &str, bars: &[(String, f64)]) -> String {
    const LABEL: f64 = 300.0;
    const WIDTH: f64 = 460.0;
    const ROW: f64 = 22.0;
    let shown: Vec<&(String, f64)> = bars
        .iter()
        .filter(|(_, v)| v.is_finite() && *v > 0.0)
        .collect();
    let (lo, hi) = shown.iter().fold((f64::MAX, f64::MIN), |(lo, hi), (_, v)| {
        (lo.min(v.log10()), hi.max(v.log10()))
    });
    // Whole decades around the values, so the scale reads at a glance.
    let (lo, hi) = if shown.is_empty() {
        (0.0, 1.0)
    } else {
        (lo.floor(), (hi.ceil()).max(lo.floor() + 1.0))
    };
    let x = |v: f64| LABEL + (v.log10() - lo) / (hi - lo) * WIDTH;
    let height = 50.0 + ROW * shown.len() as f64 + 30.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        escape(title),
        w = LABEL + WIDTH + 90.0,
    );
    let axis = 40.0 + ROW * shown.len() as f64;
    let mut decade = lo;
    while decade <= hi {
        let at = LABEL + (decade - lo) / (hi - lo) * WIDTH;
        let _ = writeln!(
            svg,
            "<line x1=\"{at}\" y1=\"36\" x2=\"{at}\" y2=\"{axis}\" stroke=\"#ddd\"/>\
             <text x=\"{at}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            axis + 16.0,
            number(10f64.powf(decade))
        );
        decade += 1.0;
    }
    for (i, (label, value)) in shown.iter().enumerate() {
        let y = 40.0 + ROW * i as f64;
        let end = x(*value).max(LABEL + 1.0);
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{LABEL}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#4a7ab5\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            LABEL - 8.0,
            y + 14.0,
            escape(label),
            y + 3.0,
            end - LABEL,
            ROW - 6.0,
            end + 4.0,
            y + 14.0,
            number(*value)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_bar_per_value_and_skips_what_cannot_be_drawn() {
        let svg = chart(
            "t <1>",
            &[
                ("a".into(), 3.0),
                ("b".into(), 300.0),
                ("c".into(), f64::NAN),
            ],
        );
        assert_eq!(svg.matches("fill=\"#4a7ab5\"").count(), 2);
        assert!(svg.contains("t &lt;1&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }
}
