//! Why the DSP chain or its thread cannot run.

/// Why the DSP chain cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum DspError {
    /// No channels.
    #[error("the input has no channels")]
    NoChannels,
    /// The resampler could not be built.
    #[error(transparent)]
    Resampler(#[from] v2m_audio::resample::ResampleError),
    /// VAD aggressiveness out of range.
    #[error("VAD mode {0} is not 0 to 3")]
    BadVadMode(u8),
    /// The DSP thread could not be started.
    #[error("cannot start the DSP thread: {0}")]
    Thread(String),
    /// The DSP thread panicked; the ring writer went with it.
    #[error("the DSP thread panicked")]
    Panicked,
}
