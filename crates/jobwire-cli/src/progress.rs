//! Progress bars on stderr. indicatif draws them only when stderr is a terminal, so
//! pipes and logs get no escape sequences.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Positions per whole job: a job reports fractions, a bar counts whole steps.
pub const JOB_STEPS: u64 = 1000;

/// The look of a job's bar.
const JOB_TEMPLATE: &str = "{spinner} {prefix} [{bar:30}] {percent:>3}% {wide_msg}";

/// The bar of one job (`run`), driven by the fractions of its progress events.
pub fn job_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(JOB_STEPS);
    bar.set_style(style(JOB_TEMPLATE));
    bar.set_prefix(label.to_owned());
    // The spinner shows the job is alive between its progress events.
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Where a fraction of a job puts its bar.
pub fn position(fraction: f64) -> u64 {
    // `as` saturates, and NaN becomes 0.
    (fraction.clamp(0.0, 1.0) * JOB_STEPS as f64).round() as u64
}

/// A bar style from the template above (a unit test checks it is valid).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_valid() {
        assert!(ProgressStyle::with_template(JOB_TEMPLATE).is_ok());
    }

    #[test]
    fn positions() {
        assert_eq!(position(0.5), 500);
        assert_eq!(position(2.0), JOB_STEPS);
        assert_eq!(position(-1.0), 0);
        assert_eq!(position(f64::NAN), 0);
    }
}
