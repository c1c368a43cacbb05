//! What a cpal stream error means for capture. cpal reports everything through one error
//! callback: a device that is gone, but also an overrun it has already recovered from, or a
//! realtime-priority request that was refused. Only the first is a reason to release and
//! reopen the device; an overrun lost audio, so the next frame is flagged as a gap.
//!
//! On ALSA the error callback runs on the audio thread itself, so it only stores the error's
//! kind in atomics; the control thread reads them, decides and formats.

use super::callback::CallbackStats;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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

/// Every cpal error kind, in the order their codes follow (a kind cpal adds later reads back
/// as `Other`).
const KINDS: [cpal::ErrorKind; 17] = {
    use cpal::ErrorKind as K;
    [
        K::DeviceBusy,
        K::DeviceChanged,
        K::DeviceNotAvailable,
        K::HostUnavailable,
        K::InvalidInput,
        K::PermissionDenied,
        K::RealtimeDenied,
        K::ResourceExhausted,
        K::StreamInvalidated,
        K::UnsupportedConfig,
        K::UnsupportedOperation,
        K::Xrun,
        K::BackendError,
        K::Other,
        K::Other,
        K::Other,
        K::Other,
    ]
};

fn code_of(kind: cpal::ErrorKind) -> u8 {
    KINDS.iter().position(|k| *k == kind).unwrap_or(13) as u8 + 1
}

fn kind_of(code: u8) -> Option<cpal::ErrorKind> {
    (code > 0).then(|| {
        KINDS
            .get(code as usize - 1)
            .copied()
            .unwrap_or(cpal::ErrorKind::Other)
    })
}

/// The stream's errors as the error callback leaves them: lock-free, allocation-free.
#[derive(Debug, Default)]
pub struct StreamErrors {
    /// The kind that lost the device (0: none yet); the first one is kept.
    lost: AtomicU8,
    /// Notices so far, and the last one's kind.
    notices: AtomicU64,
    last_notice: AtomicU8,
}

impl StreamErrors {
    /// The kind of error that lost the device, if one did.
    pub fn lost(&self) -> Option<cpal::ErrorKind> {
        kind_of(self.lost.load(Ordering::Acquire))
    }

    /// Notices reported so far, and the last one's kind.
    pub fn notices(&self) -> (u64, Option<cpal::ErrorKind>) {
        (
            self.notices.load(Ordering::Acquire),
            kind_of(self.last_notice.load(Ordering::Acquire)),
        )
    }
}

/// cpal's error callback: an overrun counts and flags the gap, a loss and a notice are stored
/// for the control thread. No lock, no allocation, no logging: it may run on the audio thread.
pub fn on_stream_error(error: &cpal::Error, errors: &StreamErrors, stats: &CallbackStats) {
    let kind = error.kind();
    match effect_of(kind) {
        StreamErrorEffect::Lost => {
            let _ =
                errors
                    .lost
                    .compare_exchange(0, code_of(kind), Ordering::AcqRel, Ordering::Acquire);
        }
        StreamErrorEffect::Overrun => {
            stats.overruns.fetch_add(1, Ordering::Relaxed);
            stats.discontinuity.store(true, Ordering::Release);
        }
        StreamErrorEffect::Notice => {
            errors.last_notice.store(code_of(kind), Ordering::Release);
            errors.notices.fetch_add(1, Ordering::AcqRel);
        }
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
    fn kinds_survive_their_codes() {
        for kind in KINDS {
            assert_eq!(kind_of(code_of(kind)), Some(kind));
        }
        assert_eq!(kind_of(0), None);
    }

    #[test]
    fn an_overrun_flags_the_gap_a_loss_is_kept_and_notices_are_counted() {
        let errors = StreamErrors::default();
        let stats = CallbackStats::default();
        on_stream_error(&ErrorKind::Xrun.into(), &errors, &stats);
        on_stream_error(&ErrorKind::RealtimeDenied.into(), &errors, &stats);
        assert_eq!(errors.lost(), None);
        assert_eq!(errors.notices(), (1, Some(ErrorKind::RealtimeDenied)));
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 1);
        assert!(stats.discontinuity.load(Ordering::Relaxed));
        on_stream_error(&ErrorKind::DeviceNotAvailable.into(), &errors, &stats);
        on_stream_error(&ErrorKind::HostUnavailable.into(), &errors, &stats);
        assert_eq!(
            errors.lost(),
            Some(ErrorKind::DeviceNotAvailable),
            "the first loss"
        );
    }
}
