//! v2m-rt: the capture daemon. Keeps the microphone (or a WAV file played as one) open,
//! publishes 16 kHz frames into the shared-memory ring, and serves control clients and
//! workers on the Unix socket. Arguments and wiring only; the work is in the library.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use v2m_rt::capture::list_inputs;
use v2m_rt::config::{self, FileConfig};
use v2m_rt::engine::{Engine, LiveSource};
use v2m_rt::server::{self, core::Core, core::Settings, supervisor::Supervisor};
use v2m_shm_proto::platform::alloc_count::CountingAlloc;
use v2m_shm_proto::ring::{self, FRAME_NS};

// Counts allocations and frees of the realtime threads; `status` reports them.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// v2m's capture daemon: microphone -> 16 kHz frames in a shared-memory ring -> workers;
/// control over a Unix socket (v2m-cli).
#[derive(Parser)]
#[command(
    version,
    after_help = "Configuration: $XDG_CONFIG_HOME/v2m/config.toml ([rt] and [[workers]] tables); flags override it."
)]
struct Args {
    /// Configuration file [default: $XDG_CONFIG_HOME/v2m/config.toml].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Input device: a cpal id such as alsa:default, or a name (see --list-devices)
    /// [default: the default input].
    #[arg(long)]
    device: Option<String>,
    /// Play this audio file (WAV, FLAC, MP3, Ogg…; others with ffmpeg) as the microphone (real
    /// time, then silence) instead of a device.
    #[arg(long, conflicts_with = "device")]
    input: Option<PathBuf>,
    /// Control socket [default: $XDG_RUNTIME_DIR/v2m/control.sock].
    #[arg(long, env = "V2M_SOCKET")]
    socket: Option<PathBuf>,
    /// Audio before `start` that belongs to the session, ms [default: 300].
    #[arg(long)]
    pre_roll_ms: Option<u64>,
    /// WebRTC VAD aggressiveness, 0 (keeps most) to 3 [default: 3].
    #[arg(long)]
    vad_mode: Option<u8>,
    /// Ring capacity in seconds of audio [default: 160].
    #[arg(long)]
    ring_seconds: Option<f64>,
    /// How long `stop` waits for the final text, ms [default: 30000].
    #[arg(long)]
    stop_timeout_ms: Option<u64>,
    /// Worker whose finals answer `stop` [default: the first configured, else the first
    /// connected].
    #[arg(long)]
    final_worker: Option<String>,
    /// Do not start the [[workers]] of the configuration.
    #[arg(long, conflicts_with = "default_worker")]
    no_workers: bool,
    /// With no [[workers]] configured, supervise one `v2m-worker run` (the one beside this
    /// executable, else on PATH) named "worker".
    #[arg(long)]
    default_worker: bool,
    /// Print the input devices and exit.
    #[arg(long)]
    list_devices: bool,
}

/// Why v2m-rt could not run, or stopped on its own.
#[derive(Debug, thiserror::Error)]
enum RtError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("ring: {0}")]
    Ring(#[from] ring::RingError),
    #[error(transparent)]
    Engine(#[from] v2m_rt::engine::EngineError),
    #[error(transparent)]
    Paths(#[from] v2m_shm_proto::paths::PathError),
    #[error(transparent)]
    Server(#[from] server::ServerError),
    #[error(transparent)]
    Core(#[from] server::CoreError),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,symphonia=off"),
    )
    .init();
    let args = Args::parse();
    // Before any thread exists, so that every thread inherits the mask; the thread that takes
    // them starts at once, so start-up itself can be interrupted.
    let target = server::SignalTarget::default();
    server::spawn_signal_thread(server::block_termination_signals(), Arc::clone(&target));
    match run(args, target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("v2m-rt: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args, signals: server::SignalTarget) -> Result<(), RtError> {
    if args.list_devices {
        let devices = list_inputs();
        if devices.is_empty() {
            println!("no input devices");
        }
        for (id, name) in devices {
            println!("{id}\t{name}");
        }
        return Ok(());
    }
    let (path, explicit) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (v2m_shm_proto::paths::config_file(), false),
    };
    let mut cfg: FileConfig = config::load(&path, explicit)?;
    // Flags override the file.
    let rt = &mut cfg.rt;
    rt.device = args.device.clone().or(rt.device.take());
    rt.pre_roll_ms = args.pre_roll_ms.or(rt.pre_roll_ms);
    rt.vad_mode = args.vad_mode.or(rt.vad_mode);
    rt.ring_seconds = args.ring_seconds.or(rt.ring_seconds);
    rt.stop_timeout_ms = args.stop_timeout_ms.or(rt.stop_timeout_ms);
    rt.final_worker = args.final_worker.clone().or(rt.final_worker.take());
    if args.no_workers {
        cfg.workers.clear();
    }
    if args.default_worker && cfg.workers.is_empty() {
        let beside = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("v2m-worker")))
            .filter(|p| p.exists());
        let program = beside.map_or("v2m-worker".to_string(), |p| p.display().to_string());
        cfg.workers.push(config::WorkerCommand {
            name: "worker".into(),
            command: vec![program, "run".into()],
        });
    }
    config::check(&cfg).map_err(|problem| config::ConfigError {
        path: path.clone(),
        problem,
    })?;

    let capacity = ring::capacity_for_seconds(cfg.rt.ring_seconds.unwrap_or(160.0))?;
    let (writer, control) = ring::create(capacity)?;
    let mut engine = Engine::new(writer, cfg.rt.vad_mode.unwrap_or(3));
    let live = match &args.input {
        Some(file) => LiveSource::File(file.clone()),
        None => LiveSource::Device(cfg.rt.device.clone()),
    };
    let device = engine.start_live(&live)?;

    let socket = match args.socket {
        Some(s) => s,
        None => v2m_shm_proto::paths::control_socket()?,
    };
    let listener = server::bind(&socket)?;
    let (tx, rx) = crossbeam::channel::unbounded();
    let settings = Settings {
        pre_roll_frames: cfg.rt.pre_roll_ms.unwrap_or(300) * 1_000_000 / FRAME_NS,
        stop_timeout: Duration::from_millis(cfg.rt.stop_timeout_ms.unwrap_or(30_000)),
        final_worker: cfg.rt.final_worker.clone(),
        live,
    };
    let supervisor = Supervisor::new(
        cfg.workers.clone(),
        socket.clone(),
        explicit.then(|| std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone())),
        tx.clone(),
    );
    let core = Core::new(
        (tx.clone(), rx),
        control,
        engine,
        device,
        settings,
        supervisor,
    );
    server::spawn_acceptor(listener, tx.clone(), server::connection_cap());
    let _ = signals.set(tx);
    log::info!(
        "v2m-rt {} listening on {} (ring: {capacity} frames)",
        env!("CARGO_PKG_VERSION"),
        socket.display()
    );
    let result = core.run();
    let _ = std::fs::remove_file(&socket);
    log::info!("stopped");
    Ok(result?)
}
