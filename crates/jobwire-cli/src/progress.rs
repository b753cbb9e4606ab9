//! Progress bars on stderr. indicatif draws them only when stderr is a terminal, so
//! pipes and logs get no escape sequences.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Positions per whole job: a job reports fractions, a bar counts whole steps.
pub const JOB_STEPS: u64 = 1000;

/// The look of a job's bar.
const JOB_TEMPLATE: &str = "{spinner} {prefix} [{bar:30}] {percent:>3}% {wide_msg}";
/// The look of a batch's bar.
const BATCH_TEMPLATE: &str = "{spinner} [{bar:30}] {pos}/{len} {wide_msg}";

/// The bar of one job (`run`), driven by the fractions of its progress events.
pub fn job_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::new(JOB_STEPS);
    bar.set_style(style(JOB_TEMPLATE));
    bar.set_prefix(label.to_owned());
    // The spinner shows the job is alive between its progress events.
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// The bar of a batch: finished jobs out of all.
pub fn batch_bar(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
    bar.set_style(style(BATCH_TEMPLATE));
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Where a fraction of a job puts its bar.
pub fn position(fraction: f64) -> u64 {
    // `as` saturates, and NaN becomes 0.
    (fraction.clamp(0.0, 1.0) * JOB_STEPS as f64).round() as u64
}

/// A bar style from one of the templates above (a unit test checks they are valid).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid() {
        for t in [JOB_TEMPLATE, BATCH_TEMPLATE] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn positions() {
        assert_eq!(position(0.5), 500);
        assert_eq!(position(2.0), JOB_STEPS);
        assert_eq!(position(-1.0), 0);
        assert_eq!(position(f64::NAN), 0);
    }
}
