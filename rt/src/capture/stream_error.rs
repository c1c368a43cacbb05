//! What a cpal stream error means for capture. cpal reports everything through one error
//! callback: a device that is gone, but also an overrun it has already recovered from, or a
//! realtime-priority request that was refused. Only the first is a reason to release and
//! reopen the device; an overrun lost audio, so the next frame is flagged as a gap.

use super::callback::CallbackStats;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

/// The consequence of one stream error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamErrorEffect {
    /// The device is gone or the stream unusable: release it and reopen.
    Lost,
    /// Audio was lost but the stream goes on (cpal re-prepared it): flag the gap.
    Overrun,
    /// Worth a log line only. A transient error that does stop the stream is caught by the
    /// stall check ([`crate::engine::STALL_AFTER`]).
    Notice,
}

/// Sorts a cpal error kind by its effect on capture.
pub fn effect_of(kind: cpal::ErrorKind) -> StreamErrorEffect {
    use cpal::ErrorKind as K;
    match kind {
        K::DeviceNotAvailable | K::HostUnavailable | K::StreamInvalidated | K::PermissionDenied => {
            StreamErrorEffect::Lost
        }
        K::Xrun => StreamErrorEffect::Overrun,
        _ => StreamErrorEffect::Notice,
    }
}

/// cpal's error callback (on its stream thread, not the realtime path: an overrun only counts
/// and flags; a loss is kept for the control thread; notices are logged).
pub(crate) fn on_stream_error(
    error: cpal::Error,
    last_error: &Mutex<Option<String>>,
    stats: &CallbackStats,
) {
    match effect_of(error.kind()) {
        StreamErrorEffect::Lost => {
            *last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        }
        StreamErrorEffect::Overrun => {
            stats.overruns.fetch_add(1, Ordering::Relaxed);
            stats.discontinuity.store(true, Ordering::Release);
        }
        StreamErrorEffect::Notice => log::warn!("input stream: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cpal::ErrorKind;

    #[test]
    fn only_a_lost_device_is_a_failure() {
        for kind in [
            ErrorKind::DeviceNotAvailable,
            ErrorKind::HostUnavailable,
            ErrorKind::StreamInvalidated,
            ErrorKind::PermissionDenied,
        ] {
            assert_eq!(effect_of(kind), StreamErrorEffect::Lost, "{kind:?}");
        }
        assert_eq!(effect_of(ErrorKind::Xrun), StreamErrorEffect::Overrun);
        for kind in [
            ErrorKind::RealtimeDenied,
            ErrorKind::DeviceChanged,
            ErrorKind::BackendError,
        ] {
            assert_eq!(effect_of(kind), StreamErrorEffect::Notice, "{kind:?}");
        }
    }

    #[test]
    fn an_overrun_flags_the_gap_and_a_loss_is_kept() {
        let last = Mutex::new(None);
        let stats = CallbackStats::default();
        on_stream_error(ErrorKind::Xrun.into(), &last, &stats);
        on_stream_error(ErrorKind::RealtimeDenied.into(), &last, &stats);
        assert_eq!(*last.lock().unwrap(), None);
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 1);
        assert!(stats.discontinuity.load(Ordering::Relaxed));
        on_stream_error(ErrorKind::DeviceNotAvailable.into(), &last, &stats);
        assert!(last.lock().unwrap().is_some());
    }
}
