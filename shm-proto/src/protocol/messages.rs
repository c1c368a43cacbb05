//! Every message that crosses the control socket.
//!
//! Direction is in the type: peers (clients and workers) send [`PeerMessage`], v2m-rt sends
//! [`DaemonMessage`]. Answers ([`Response`]) and unsolicited news ([`Event`]) are different
//! variants, so a client can never take an event for the answer to its request.
//!
//! Postcard encodes enums by variant index: append new variants at the end and bump
//! [`PROTOCOL_VERSION`] for any other change.

use super::ReadLag;
use serde::{Deserialize, Serialize};

/// Version both ends put in their hello; v2m-rt refuses a peer with another.
pub const PROTOCOL_VERSION: u32 = 7;

/// Longest worker name or model label, in bytes.
pub const MAX_NAME_LEN: usize = 128;
/// Longest file path in a request, in bytes.
pub const MAX_PATH_LEN: usize = 4096;
/// Most finals [`RequestBody::Last`] returns (and v2m-rt keeps).
pub const HISTORY_LEN: usize = 32;

/// First message on every connection, from the peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The peer's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// What the peer is.
    pub role: Role,
}

impl Hello {
    /// A hello for this build's protocol.
    pub fn new(role: Role) -> Hello {
        Hello {
            protocol: PROTOCOL_VERSION,
            role,
        }
    }

    /// Refuses names beyond [`MAX_NAME_LEN`] (or empty, or with control characters): a
    /// worker's name and model appear in every status reply.
    pub fn check(&self) -> Result<(), ErrorReply> {
        if let Role::Worker(w) = &self.role {
            check_name("worker name", &w.name)?;
            check_name("worker model", &w.model)?;
        }
        Ok(())
    }
}

fn check_name(what: &str, s: &str) -> Result<(), ErrorReply> {
    if s.is_empty() || s.len() > MAX_NAME_LEN || s.chars().any(char::is_control) {
        return Err(ErrorReply::new(
            ErrorKind::Malformed,
            format!("{what} must be 1 to {MAX_NAME_LEN} bytes of printable text"),
        ));
    }
    Ok(())
}

/// What a peer is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Role {
    /// A control client (v2m-cli, a script).
    Client,
    /// A transcription worker.
    Worker(WorkerIdentity),
}

/// Who a worker is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerIdentity {
    /// Name given in the config or on the command line; unique among connected workers.
    pub name: String,
    /// Model it runs, e.g. `tiny.en/int8`.
    pub model: String,
}

/// Everything a client or worker sends to v2m-rt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PeerMessage {
    /// Must come first.
    Hello(Hello),
    /// A request; v2m-rt answers with a [`Response`] carrying the same id.
    Request(Request),
    /// A worker's output; only accepted from a connection that said hello as a worker.
    Worker(WorkerMessage),
}

/// A request with its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client, echoed in the response. 0 is reserved for replies to messages
    /// that could not be read (see [`Response::id`]).
    pub id: u64,
    /// What is asked.
    pub body: RequestBody,
}

/// What a client can ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestBody {
    /// Liveness check: answered with [`Reply::Pong`].
    Ping,
    /// Open a session (reaching back by the pre-roll).
    Start,
    /// Close the open session and wait for its final text.
    Stop,
    /// Start if idle, stop if recording.
    Toggle,
    /// Drop the open session: no text.
    Cancel,
    /// Daemon state, counters, workers.
    Status,
    /// Receive [`Event`]s on this connection from now on; with `metrics`, also
    /// [`Event::ReadLag`] (the latency tool's histograms).
    Subscribe {
        /// Also the per-session capture→read histograms.
        metrics: bool,
    },
    /// Release the microphone; `start` is refused until `resume`.
    Pause,
    /// Reopen the microphone.
    Resume,
    /// Transcribe an audio or video file through the DSP path in its own session.
    TranscribeFile {
        /// Absolute path, read by v2m-rt.
        path: String,
    },
    /// Stop workers, remove the socket, exit.
    Shutdown,
    /// The most recent finals (at most `count`, newest last), kept whether or not a `stop`
    /// was still waiting for them.
    Last {
        /// How many.
        count: u32,
    },
}

impl RequestBody {
    /// Refuses paths beyond [`MAX_PATH_LEN`] before anything acts on them.
    pub fn check(&self) -> Result<(), ErrorReply> {
        if let RequestBody::TranscribeFile { path } = self
            && (path.is_empty() || path.len() > MAX_PATH_LEN || path.contains('\0'))
        {
            return Err(ErrorReply::new(
                ErrorKind::BadFile,
                format!("a file path must be 1 to {MAX_PATH_LEN} bytes without NUL"),
            ));
        }
        Ok(())
    }
}

/// v2m-rt's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id, or 0 when the message being answered could not be decoded.
    pub id: u64,
    /// The outcome.
    pub result: Result<Reply, ErrorReply>,
}

/// Successful answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// To [`RequestBody::Ping`].
    Pong,
    /// A session was opened (by `start` or `toggle`).
    Started {
        /// The new session.
        session_id: u64,
        /// Its first frame in the ring (pre-roll included).
        first_seq: u64,
    },
    /// A session ended with its final text (by `stop` or `toggle`).
    Stopped(FinalText),
    /// The session was dropped.
    Cancelled {
        /// The dropped session.
        session_id: u64,
    },
    /// To [`RequestBody::Status`].
    Status(StatusReport),
    /// Events will follow on this connection.
    Subscribed,
    /// The microphone is released.
    Paused,
    /// The microphone is open again.
    Resumed,
    /// To [`RequestBody::TranscribeFile`].
    Transcribed(FinalText),
    /// The daemon is shutting down; the connection closes after this.
    ShuttingDown,
    /// To [`RequestBody::Last`]: the newest finals, oldest first.
    Last(Vec<FinalText>),
}

/// A failed request: a kind to branch on and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for programs.
    pub kind: ErrorKind,
    /// What went wrong, for people: one line.
    pub message: String,
}

impl ErrorReply {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorReply {
        ErrorReply {
            kind,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for ErrorReply {}

/// Kinds of request failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// Something other than a hello came first.
    HelloRequired,
    /// The peer speaks another protocol version.
    VersionMismatch,
    /// The peer is another user, or a client sent a worker-only message.
    PermissionDenied,
    /// The frame could not be decoded.
    Malformed,
    /// The frame's length exceeds the maximum.
    TooLarge,
    /// Not possible in the current state (stop while idle, start while recording…).
    InvalidState,
    /// Refused because capture is paused.
    Paused,
    /// The session held no speech.
    NoSpeech,
    /// The final text did not arrive in time.
    Timeout,
    /// No worker is connected to transcribe.
    NoWorker,
    /// The audio device is missing or failed.
    Device,
    /// A file was missing, unreadable or of an unsupported format.
    BadFile,
    /// Too many connections, or no room for the request: try again later.
    Busy,
    /// Anything else; the message says what.
    Internal,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorKind::HelloRequired => "hello required",
            ErrorKind::VersionMismatch => "protocol version mismatch",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Malformed => "malformed message",
            ErrorKind::TooLarge => "message too large",
            ErrorKind::InvalidState => "invalid state",
            ErrorKind::Paused => "paused",
            ErrorKind::NoSpeech => "no speech detected",
            ErrorKind::Timeout => "timed out",
            ErrorKind::NoWorker => "no worker",
            ErrorKind::Device => "audio device",
            ErrorKind::BadFile => "bad file",
            ErrorKind::Busy => "busy",
            ErrorKind::Internal => "internal error",
        })
    }
}

/// The final text of a session, with how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalText {
    /// The session.
    pub session_id: u64,
    /// The whole dictation.
    pub text: String,
    /// Worker that produced it.
    pub worker: String,
    /// From the stop request (or end of file) to the final text, in milliseconds.
    pub stop_to_final_ms: f32,
    /// Cost of the pass that produced the text (zeros when none was needed).
    pub timings: Timings,
    /// For the session's live frames (captured after the worker took the session up, so
    /// neither pre-roll nor a backlog): how long they waited from capture to the worker's
    /// read. The whole histogram goes to metrics subscribers as [`Event::ReadLag`].
    pub capture_to_read: LagSummary,
    /// Whether the text came from the speculative final, run when the speaker paused and
    /// ready before the session ended (no pass after `stop`).
    pub speculative: bool,
    /// Frames of the session the worker never heard: the ring overwrote them before it read
    /// them (a worker restarted late in a dictation longer than the ring). 20 ms each; the
    /// text is missing whatever was said in them.
    pub lost_frames: u64,
    /// The text in timed pieces (seconds from the session's first frame): Whisper's segments
    /// for files (decoded with timestamps), a piece per window for dictation.
    pub segments: Vec<TextSegment>,
}

/// A piece of a final text and where it lies in the audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSegment {
    /// Start, seconds from the session's (file's) start.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
    /// Its text, trimmed.
    pub text: String,
    /// Mean log-probability of the pass it came from.
    pub avg_logprob: f32,
    /// No-speech probability of the pass it came from.
    pub no_speech_prob: f32,
}

impl FinalText {
    /// Seconds of the session's audio missing from the text.
    pub fn lost_seconds(&self) -> f64 {
        self.lost_frames as f64 * 0.02
    }
}

/// Percentiles of a [`ReadLag`] histogram, small enough for every final.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LagSummary {
    /// Frames counted.
    pub frames: u64,
    /// Median, ms.
    pub p50_ms: f32,
    /// 99th percentile, ms.
    pub p99_ms: f32,
    /// Largest, ms.
    pub max_ms: f32,
}

impl LagSummary {
    /// The summary of `lag`.
    pub fn of(lag: &ReadLag) -> LagSummary {
        LagSummary {
            frames: lag.frames(),
            p50_ms: lag.quantile_ms(0.5).unwrap_or(0.0),
            p99_ms: lag.quantile_ms(0.99).unwrap_or(0.0),
            max_ms: lag.quantile_ms(1.0).unwrap_or(0.0),
        }
    }
}

/// Everything v2m-rt sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DaemonMessage {
    /// Answer to [`Hello`]. For a worker, the ring's two memfds (audio read-only, wake words)
    /// travel with this message's bytes (SCM_RIGHTS): read them with
    /// [`super::read_frame_with_fds`] and open [`crate::ring::RingFds`].
    Welcome(Welcome),
    /// Answer to a request.
    Response(Response),
    /// News for subscribers.
    Event(Event),
    /// For workers: what to transcribe.
    Assignment(Assignment),
}

/// v2m-rt's side of the hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The daemon's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The daemon's version string.
    pub daemon_version: String,
    /// For workers: whether the ring's memfds are attached to this message.
    pub ring_attached: bool,
}

/// Work for a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Assignment {
    /// Follow a session from its first frame (it may already have ended).
    Session {
        /// The session in the ring's session table.
        session_id: u64,
        /// Whether this worker's final answers the client's `stop` (others need not run
        /// provisional or speculative passes: nobody sees them).
        owns_final: bool,
        /// A file being transcribed: decode with timestamps (segments for subtitles), and
        /// report progress ([`WorkerMessage::Progress`]): the file is fed at the worker's pace.
        file: bool,
    },
    /// Drop a session: no output wanted.
    Cancel {
        /// The session.
        session_id: u64,
    },
    /// Exit cleanly (daemon shutdown).
    Shutdown,
}

/// Unsolicited news, for subscribed connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Text so far for an open session.
    Provisional(ProvisionalText),
    /// A session's final text (the same that answers `stop`).
    Final(FinalText),
    /// The daemon's state changed.
    StateChanged {
        /// The new state.
        state: DaemonState,
        /// The session involved, if any.
        session_id: Option<u64>,
    },
    /// A worker said hello.
    WorkerUp(WorkerIdentity),
    /// A worker disconnected or exited.
    WorkerDown {
        /// Its name.
        name: String,
        /// Why, as far as v2m-rt knows.
        reason: String,
    },
    /// A session's capture→read histogram (only to subscribers that asked for metrics).
    ReadLag {
        /// The session.
        session_id: u64,
        /// Its live frames' lags.
        histogram: ReadLag,
    },
    /// How far a file's transcription is (to its requester, and to subscribers).
    Progress {
        /// The file's session.
        session_id: u64,
        /// Seconds of the file transcribed.
        done_s: f64,
        /// Its length, when known.
        total_s: Option<f64>,
    },
}

/// Provisional text: a stable prefix that will not change, and a tentative tail that may.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionalText {
    /// The session.
    pub session_id: u64,
    /// Committed and agreed-upon text (LocalAgreement-2).
    pub stable: String,
    /// The latest hypothesis beyond the stable part.
    pub tentative: String,
    /// Worker that produced it.
    pub worker: String,
    /// Cost of this pass.
    pub timings: Timings,
}

/// The daemon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DaemonState {
    /// Microphone open, no session.
    Idle,
    /// A session is open.
    Recording,
    /// A session was stopped; waiting for its final text.
    Finishing,
    /// Microphone released.
    Paused,
}

/// What one transcription pass cost.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// Log-mel spectrogram, ms.
    pub mel_ms: f32,
    /// Encoder, ms.
    pub encoder_ms: f32,
    /// All decoder steps, ms.
    pub decoder_ms: f32,
    /// Tokens decoded.
    pub tokens: u32,
    /// First frame of the audio this pass covered.
    pub audio_first_seq: u64,
    /// One past its last frame.
    pub audio_end_seq: u64,
}

/// What a worker sends besides its hello.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum WorkerMessage {
    /// Provisional text for an open session.
    Provisional(ProvisionalText),
    /// Final text of a session that ended.
    Final(FinalText),
    /// The worker's health, sent on change.
    Health(WorkerHealth),
    /// Sent every second, whatever the worker is doing: it is alive, and how long the pass in
    /// progress has been running.
    Heartbeat {
        /// The running pass' age, ms; `None` when idle.
        pass_ms: Option<u32>,
    },
    /// A session's capture→read histogram, sent before its final.
    ReadLag {
        /// The session.
        session_id: u64,
        /// Its live frames' lags.
        histogram: ReadLag,
    },
    /// Where the worker has read a session to (sent a few times a second while it follows
    /// one): a file is fed no further ahead than the ring holds.
    Progress {
        /// The session.
        session_id: u64,
        /// The next frame it will read.
        next_seq: u64,
    },
}

/// A worker's view of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerHealth {
    /// Whether the model is loaded (it is unloaded under memory pressure).
    pub model_loaded: bool,
    /// Execution provider in use: `cpu` or `cuda`.
    pub execution_provider: String,
    /// Frames lost to ring overruns since start.
    pub frames_lost: u64,
    /// Free text: why the model is unloaded, which provider failed…
    pub note: String,
}

/// Answer to [`RequestBody::Status`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Daemon state.
    pub state: DaemonState,
    /// The open session, if any.
    pub session_id: Option<u64>,
    /// Capture device name, if open.
    pub device: Option<String>,
    /// Last capture error (device gone…), if any.
    pub device_error: Option<String>,
    /// Ring counters.
    pub ring: RingCounters,
    /// Connected and configured workers.
    pub workers: Vec<WorkerStatus>,
    /// Latencies of the last finished session.
    pub last_session: Option<SessionLatency>,
    /// How the realtime capture path is doing.
    pub capture: CaptureMetrics,
}

/// Figures of the realtime path since the daemon started (all sources, all reopenings).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct CaptureMetrics {
    /// cpal callbacks run.
    pub callbacks: u64,
    /// Longest callback, µs.
    pub callback_max_us: f32,
    /// 99th percentile of callback durations, µs.
    pub callback_p99_us: f32,
    /// Median DSP time per drained block (about one 20 ms frame), µs.
    pub dsp_frame_p50_us: f32,
    /// 99th percentile of the same, µs.
    pub dsp_frame_p99_us: f32,
    /// Median time from a frame's capture (its first sample) to its publish in the ring, µs.
    pub capture_to_ring_p50_us: f32,
    /// 99th percentile of the same, µs.
    pub capture_to_ring_p99_us: f32,
    /// 99th percentile of the time from a frame's capture (its first sample) to the device's
    /// hand-over of the input that completed it, µs: the 20 ms frame, the resampler's delay and
    /// the device's own wait; the floor of `capture_to_ring`, as no code of v2m-rt's runs
    /// before it.
    pub capture_to_handover_p99_us: f32,
    /// 99th percentile of the time from that hand-over to the frame's publish, µs: v2m-rt's own
    /// callback → DSP → ring.
    pub handover_to_ring_p99_us: f32,
    /// Allocations made by the realtime threads (cpal callback, DSP thread) once running.
    /// `None` when the daemon was built without its counting allocator.
    pub allocs_after_start: Option<u64>,
    /// Frees made by the realtime threads once running (as bad as an allocation there).
    pub frees_after_start: Option<u64>,
}

/// Counters of the capture side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RingCounters {
    /// Frames published into the ring.
    pub frames_written: u64,
    /// Input samples dropped because the callback→DSP queue was full.
    pub samples_dropped: u64,
    /// Frames published with the discontinuity flag.
    pub discontinuities: u64,
    /// Ring capacity in frames.
    pub capacity: u32,
}

/// One worker as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    /// Who.
    pub identity: WorkerIdentity,
    /// Whether it is connected now.
    pub connected: bool,
    /// Whether its finals answer `stop`.
    pub owns_finals: bool,
    /// Last health it reported.
    pub health: Option<WorkerHealth>,
    /// Times it was (re)started by the supervisor.
    pub restarts: u32,
    /// Milliseconds since it last sent anything (heartbeats come every second); `None`
    /// while not connected. A worker that stopped answering shows a growing figure.
    pub heard_ms_ago: Option<u64>,
    /// How long its pass in progress had run, as of its last heartbeat.
    pub pass_ms: Option<u32>,
}

/// Latencies of one finished session.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SessionLatency {
    /// The session.
    pub session_id: u64,
    /// Stop request to final text, ms.
    pub stop_to_final_ms: f32,
    /// Session start to first provisional text, ms.
    pub first_provisional_ms: Option<f32>,
}
