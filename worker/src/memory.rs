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

/// How often an idle worker looks at memory.
pub const CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// When an idle worker gives its model back: available memory below `below` (a fraction of
/// the total), looked at no more than once per [`CHECK_EVERY`]. Pure: the caller reads
/// memory and unloads.
#[derive(Debug, Clone)]
pub struct UnloadPolicy {
    below: f64,
    last_check: Option<std::time::Instant>,
}

impl UnloadPolicy {
    /// Unload below `below` of MemTotal available (0 never unloads).
    pub fn new(below: f64) -> UnloadPolicy {
        UnloadPolicy {
            below,
            last_check: None,
        }
    }

    /// Whether memory is due to be looked at `now` (then it counts as looked at).
    pub fn due(&mut self, now: std::time::Instant) -> bool {
        if self
            .last_check
            .is_some_and(|t| now.duration_since(t) < CHECK_EVERY)
        {
            return false;
        }
        self.last_check = Some(now);
        true
    }

    /// Given the available fraction, the note to send if the model must go.
    pub fn decide(&self, available: f64) -> Option<String> {
        (available < self.below).then(|| {
            format!(
                "model unloaded: MemAvailable is {:.1}% of MemTotal, below {:.1}%",
                available * 100.0,
                self.below * 100.0
            )
        })
    }
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
    }

    #[test]
    fn the_policy_looks_once_a_second_and_unloads_below_its_threshold() {
        let mut p = UnloadPolicy::new(0.10);
        let t = std::time::Instant::now();
        assert!(p.due(t));
        assert!(!p.due(t + CHECK_EVERY / 2));
        assert!(p.due(t + CHECK_EVERY));
        assert_eq!(p.decide(0.5), None);
        assert_eq!(p.decide(0.10), None);
        let note = p.decide(0.042).unwrap();
        assert!(note.contains("4.2%") && note.contains("10.0%"), "{note}");
        assert_eq!(UnloadPolicy::new(0.0).decide(0.0), None);
    }
}
