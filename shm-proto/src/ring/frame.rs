//! A frame as readers and writers hold it in their own memory.

use super::layout::FRAME_SAMPLES;

/// Per-frame flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct FrameFlags(pub u32);

impl FrameFlags {
    /// Voice activity detection heard speech in this frame.
    pub const SPEECH: FrameFlags = FrameFlags(1);
    /// Input was lost just before this frame (device overrun, dropped samples, device reopen):
    /// its first sample does not follow the previous frame's last.
    pub const DISCONTINUITY: FrameFlags = FrameFlags(2);

    /// No flag set.
    pub const fn empty() -> FrameFlags {
        FrameFlags(0)
    }

    /// Whether every flag in `other` is set.
    pub const fn contains(self, other: FrameFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets of flags.
    pub const fn union(self, other: FrameFlags) -> FrameFlags {
        FrameFlags(self.0 | other.0)
    }
}

impl std::ops::BitOr for FrameFlags {
    type Output = FrameFlags;
    fn bitor(self, rhs: FrameFlags) -> FrameFlags {
        self.union(rhs)
    }
}

/// What the writer says about a frame besides its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// `CLOCK_MONOTONIC` nanoseconds of the frame's first sample.
    pub capture_ns: u64,
    /// Session open when the frame was captured; 0 for none.
    pub session_id: u64,
    /// VAD and continuity flags.
    pub flags: FrameFlags,
}

/// One 20 ms frame copied out of the ring.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Sequence number: frames are numbered 0, 1, 2… from the ring's creation.
    pub seq: u64,
    /// Metadata as published.
    pub meta: FrameMeta,
    /// 320 samples of 16 kHz mono audio, nominally in [-1, 1].
    pub samples: [f32; FRAME_SAMPLES],
}

impl Default for Frame {
    fn default() -> Frame {
        Frame {
            seq: 0,
            meta: FrameMeta::default(),
            samples: [0.0; FRAME_SAMPLES],
        }
    }
}
