//! Memory pressure: when the machine runs short, an idle worker gives its model back.

/// MemAvailable / MemTotal from `/proc/meminfo`, as a fraction; `None` if unreadable.
pub fn available_fraction() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(field("MemAvailable")? / field("MemTotal")?)
}

/// Whether available memory is below `threshold` (a fraction of the total).
pub fn under_pressure(threshold: f64) -> Option<(bool, f64)> {
    available_fraction().map(|f| (f < threshold, f))
}

/// This process's peak resident set (VmHWM) in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

/// This process's resident set now (VmRSS) in MiB.
pub fn rss_mb() -> Option<f64> {
    status_mb("VmRSS:")
}

fn status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read() {
        let f = available_fraction().expect("/proc/meminfo");
        assert!(f > 0.0 && f <= 1.0, "{f}");
        assert_eq!(under_pressure(1.01).map(|p| p.0), Some(true));
        assert_eq!(under_pressure(0.0).map(|p| p.0), Some(false));
    }
}
