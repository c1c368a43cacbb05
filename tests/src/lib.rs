//! Helpers shared by the integration tests and the peer processes they start.
#![deny(missing_docs)]

pub mod alloc_counter;
pub mod daemon;
pub mod fifo_mic;
pub mod fixtures;
pub mod latency;
pub mod pattern;
pub mod process;
pub mod pulse_mic;
pub mod ring_peer;
pub mod signal;
pub mod watchdog;

/// Fails the calling test, saying how to install it, unless the Whisper model `name` is set up
/// under `$XDG_DATA_HOME/v2m/models/`.
pub fn require_model(name: &str) {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".local/share")))
        .expect("neither XDG_DATA_HOME nor HOME is set");
    assert!(
        data.join("v2m/models").join(name).exists(),
        "the {name} model is missing: run scripts/setup-model.sh {name}"
    );
}
