//! Capture refuses a device that does not exist with an error naming it.

use v2m_rt::capture::{self, CaptureError};

#[test]
fn a_missing_device_is_a_clear_error() {
    for name in ["alsa:v2m-no-such-device", "v2m no such microphone"] {
        let err = match capture::open(Some(name), 1.0, Default::default()) {
            Ok(_) => panic!("{name}: opened a device that does not exist"),
            Err(e) => e,
        };
        let text = err.to_string();
        eprintln!("{name}: {text}");
        assert!(
            matches!(err, CaptureError::NoDevice(_) | CaptureError::Device { .. }),
            "{err:?}"
        );
        assert!(
            text.contains("no-such-device") || text.contains("no such microphone"),
            "{text}"
        );
    }
}
