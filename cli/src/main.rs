//! v2m-cli: the control client of v2m-rt. Arguments and wiring; the logic is in the library.

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use v2m_cli::deliver::{self, Session};
use v2m_cli::exit;
use v2m_cli::listen::Renderer;
use v2m_cli::refine::{Refiner, Task};
use v2m_shm_proto::client::{Client, ClientError};
use v2m_shm_proto::protocol::{Event, FinalText, Reply, RequestBody};
use v2m_text::progress::FileProgress;
use v2m_text::rules::TextRules;
use v2m_text::transcript::{self, Format};

/// Local voice dictation: control the v2m-rt daemon.
#[derive(Parser)]
#[command(version, after_help = exit::HELP)]
struct Args {
    /// v2m-rt's control socket [default: $XDG_RUNTIME_DIR/v2m/control.sock].
    #[arg(long, global = true, env = "V2M_SOCKET")]
    socket: Option<PathBuf>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Config file for `[text]` and `[refine]` [default: $XDG_CONFIG_HOME/v2m/config.toml].
    #[arg(long, global = true, env = "V2M_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Args, Clone, Copy, Default)]
struct Deliver {
    /// Copy the text to the clipboard (wl-copy, xclip or xsel).
    #[arg(long)]
    clipboard: bool,
    /// Type the text into the focused window (wtype, ydotool or xdotool).
    #[arg(long = "type")]
    type_it: bool,
    /// Show the text in a notification (notify-send).
    #[arg(long)]
    notify: bool,
}

#[derive(clap::Args, Clone, Default)]
struct RefineArgs {
    /// Clean the text up with the `[refine]` chat model (sends the text, never audio, to it).
    #[arg(long, conflicts_with = "no_refine")]
    refine: bool,
    /// Do not refine, even with `[refine] default = true`.
    #[arg(long)]
    no_refine: bool,
    /// Translate the text into LANG (a language name, "German") with the `[refine]` model.
    #[arg(long, value_name = "LANG", conflicts_with = "no_refine")]
    translate_to: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    Daemon(DaemonCmd),
    /// Clean up any text: the `[text]` rules, then the `[refine]` chat model when it is on
    /// (`[refine] default = true`, `--llm` or `--translate-to`). Needs no audio and no v2m-rt.
    Refine {
        /// The text [default: standard input].
        text: Option<String>,
        /// Read the text from the clipboard (wl-paste, xclip or xsel).
        #[arg(long, conflicts_with = "text")]
        clipboard_in: bool,
        /// Send the text to the `[refine]` chat model even without `[refine] default = true`.
        #[arg(long, conflicts_with = "no_llm")]
        llm: bool,
        /// The rules only, even with `[refine] default = true`.
        #[arg(long)]
        no_llm: bool,
        /// Translate the text into LANG with the `[refine]` model.
        #[arg(long, value_name = "LANG", conflicts_with = "no_llm")]
        translate_to: Option<String>,
        #[command(flatten)]
        deliver: Deliver,
    },
}

/// The commands that talk to v2m-rt.
#[derive(Subcommand)]
enum DaemonCmd {
    /// Start v2m-rt and a worker in the background (no-op if running); wait until ready.
    Up {
        /// Input device for v2m-rt (see `v2m-rt --list-devices`).
        #[arg(long)]
        device: Option<String>,
        /// Play this WAV file as the microphone instead of a device.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Seconds to wait for a worker to connect (the model loads first).
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Start dictating (the last 300 ms before are included).
    Start,
    /// Stop dictating and print the text.
    Stop {
        #[command(flatten)]
        deliver: Deliver,
        #[command(flatten)]
        refine: RefineArgs,
    },
    /// Start if idle, else stop and print the text (bind this to a hotkey).
    Toggle {
        #[command(flatten)]
        deliver: Deliver,
        #[command(flatten)]
        refine: RefineArgs,
    },
    /// Drop the current dictation.
    Cancel,
    /// Daemon state, input, workers, counters.
    Status,
    /// Check that v2m-rt answers.
    Ping,
    /// Release the microphone; start is refused until resume.
    Pause,
    /// Reopen the microphone.
    Resume,
    /// Show provisional and final text as it comes.
    Listen {
        /// Exit after the first final text.
        #[arg(long)]
        once: bool,
    },
    /// Print the most recent final texts (kept by v2m-rt, also those whose `stop` timed out).
    Last {
        /// How many.
        #[arg(default_value_t = 1)]
        count: u32,
    },
    /// Transcribe audio or video files through the daemon (WAV, FLAC, MP3, Ogg/Opus,
    /// AAC/M4A, MKV/MP4…; other formats through ffmpeg when installed), any length. Progress
    /// shows on the terminal; Ctrl-C cancels the file being transcribed.
    Transcribe {
        /// Output format: txt, srt, vtt or json (text with timed segments).
        #[arg(long, short = 'f', default_value = "txt", value_parser = Format::parse)]
        format: Format,
        /// Write the transcript to this file instead of standard output; with several files,
        /// a folder that gets NAME.<format> for each.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        #[command(flatten)]
        deliver: Deliver,
        /// Audio or video files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Stop v2m-rt and its workers.
    Shutdown,
}

fn main() -> ExitCode {
    let args = Args::parse();
    ExitCode::from(run(args))
}

fn fail(json: bool, code: u8, message: &str) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::json!({"error": message, "exit_code": code})
        );
    } else {
        eprintln!("v2m-cli: {message}");
    }
    code
}

fn run(args: Args) -> u8 {
    let Args {
        socket,
        json,
        config,
        command,
    } = args;
    let command = match command {
        Cmd::Daemon(command) => command,
        // Needs no socket: works whether or not v2m-rt runs.
        Cmd::Refine {
            text,
            clipboard_in,
            llm,
            no_llm,
            translate_to,
            deliver,
        } => {
            let input = match read_input(text, clipboard_in) {
                Ok(t) => t,
                Err(e) => return fail(json, exit::ERROR, &e),
            };
            let flags = RefineArgs {
                refine: llm,
                no_refine: no_llm,
                translate_to,
            };
            return refine_command(json, config.as_deref(), &input, &flags, deliver);
        }
    };
    let socket = match socket {
        Some(s) => s,
        None => match v2m_shm_proto::paths::control_socket() {
            Ok(s) => s,
            Err(e) => return fail(json, exit::ERROR, &e.to_string()),
        },
    };
    run_with_socket(&socket, json, config.as_deref(), command)
}

fn run_with_socket(
    socket: &std::path::Path,
    json: bool,
    config: Option<&std::path::Path>,
    command: DaemonCmd,
) -> u8 {
    let body = match command {
        DaemonCmd::Up {
            device,
            input,
            wait,
        } => {
            let mut extra = Vec::new();
            if let Some(d) = device {
                extra.extend(["--device".to_string(), d]);
            }
            if let Some(i) = input {
                extra.extend(["--input".to_string(), absolute(&i).display().to_string()]);
            }
            return match v2m_cli::up::up(socket, &extra, Duration::from_secs(wait)) {
                Ok(s) => {
                    if json {
                        println!("{}", serde_json::to_string(&s).unwrap_or_default());
                    } else {
                        let workers: Vec<String> = s
                            .workers
                            .iter()
                            .filter(|w| w.connected)
                            .map(|w| format!("{} ({})", w.identity.name, w.identity.model))
                            .collect();
                        println!(
                            "v2m-rt up on {} (input {}; workers: {})",
                            socket.display(),
                            s.device.as_deref().unwrap_or("none"),
                            workers.join(", ")
                        );
                    }
                    exit::OK
                }
                Err(e) => fail(json, exit::ERROR, &e.to_string()),
            };
        }
        DaemonCmd::Start => RequestBody::Start,
        DaemonCmd::Stop { deliver, refine } => {
            return final_request(socket, json, config, RequestBody::Stop, deliver, &refine);
        }
        DaemonCmd::Toggle { deliver, refine } => {
            return final_request(socket, json, config, RequestBody::Toggle, deliver, &refine);
        }
        DaemonCmd::Cancel => RequestBody::Cancel,
        DaemonCmd::Status => RequestBody::Status,
        DaemonCmd::Ping => RequestBody::Ping,
        DaemonCmd::Pause => RequestBody::Pause,
        DaemonCmd::Resume => RequestBody::Resume,
        DaemonCmd::Listen { once } => return listen(socket, json, once),
        DaemonCmd::Transcribe {
            format,
            output,
            deliver,
            files,
        } => {
            return transcribe(socket, json, format, output.as_deref(), deliver, &files);
        }
        DaemonCmd::Shutdown => RequestBody::Shutdown,
        DaemonCmd::Last { count } => RequestBody::Last { count },
    };
    match Client::connect(socket).and_then(|mut c| c.request(body)) {
        Ok(reply) => {
            if json {
                println!("{}", serde_json::to_string(&reply).unwrap_or_default());
            } else {
                print_reply(&reply);
            }
            exit::OK
        }
        Err(e) => fail(json, exit::code_for(&e), &e.to_string()),
    }
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    })
}

fn print_reply(reply: &Reply) {
    match reply {
        Reply::Pong => println!("pong"),
        Reply::Started { session_id, .. } => println!("recording (session {session_id})"),
        Reply::Stopped(f) | Reply::Transcribed(f) => println!("{}", f.text.trim()),
        Reply::Cancelled { session_id } => println!("cancelled session {session_id}"),
        Reply::Subscribed => println!("subscribed"),
        Reply::Paused => println!("paused: microphone released"),
        Reply::Resumed => println!("resumed: microphone open"),
        Reply::ShuttingDown => println!("v2m-rt is shutting down"),
        Reply::Last(finals) => {
            if finals.is_empty() {
                eprintln!("(no final text yet)");
            }
            for f in finals {
                println!("{}", f.text.trim());
            }
        }
        Reply::Status(s) => {
            println!("state: {:?}", s.state);
            if let Some(id) = s.session_id {
                println!("session: {id}");
            }
            println!(
                "input: {}",
                s.device.as_deref().unwrap_or("none (released)")
            );
            if let Some(e) = &s.device_error {
                println!("input error: {e}");
            }
            println!(
                "ring: {} frames written, {} samples dropped, {} discontinuities, capacity {} frames",
                s.ring.frames_written,
                s.ring.samples_dropped,
                s.ring.discontinuities,
                s.ring.capacity
            );
            for w in &s.workers {
                println!(
                    "worker {} ({}): {}{}{}{}, restarts {}",
                    w.identity.name,
                    w.identity.model,
                    match w.heard_ms_ago {
                        Some(ms) if ms > 3_000 => {
                            format!(
                                "connected but silent for {:.0} s (not answering?)",
                                ms as f64 / 1e3
                            )
                        }
                        _ if w.connected => "connected".to_string(),
                        _ => "not connected".to_string(),
                    },
                    if w.owns_finals { ", owns finals" } else { "" },
                    w.pass_ms
                        .map(|ms| format!(", in a pass for {ms} ms"))
                        .unwrap_or_default(),
                    w.health
                        .as_ref()
                        .map(|h| format!(
                            ", {} model {}",
                            h.execution_provider,
                            if h.model_loaded { "loaded" } else { "unloaded" }
                        ))
                        .unwrap_or_default(),
                    w.restarts
                );
            }
            if s.workers.is_empty() {
                println!("workers: none");
            }
            if let Some(l) = s.last_session {
                println!(
                    "last session {}: stop->final {:.0} ms{}",
                    l.session_id,
                    l.stop_to_final_ms,
                    l.first_provisional_ms
                        .map(|m| format!(", first provisional after {m:.0} ms"))
                        .unwrap_or_default()
                );
            }
            let c = s.capture;
            println!(
                "capture: {} callbacks, longest {:.0} us (p99 {:.0}), dsp p99 {:.0} us, capture->ring p99 {:.1} ms (device hand-over {:.1} ms, then v2m-rt {:.1} ms), realtime allocations {}, frees {}",
                c.callbacks,
                c.callback_max_us,
                c.callback_p99_us,
                c.dsp_frame_p99_us,
                c.capture_to_ring_p99_us / 1000.0,
                c.capture_to_handover_p99_us / 1000.0,
                c.handover_to_ring_p99_us / 1000.0,
                c.allocs_after_start
                    .map_or("not counted".into(), |a| a.to_string()),
                c.frees_after_start
                    .map_or("not counted".into(), |a| a.to_string())
            );
        }
    }
}

/// The outcome of refining: the text to deliver, and why it is the raw one if refining was
/// asked for and failed.
struct Refined {
    text: String,
    asked: bool,
    failure: Option<String>,
    /// How long the model took (or failed), ms.
    ms: f64,
}

/// Runs the `[refine]` model on `text` if `flags` (or `[refine] default`) ask for it.
fn refine_text(config: Option<&std::path::Path>, text: &str, flags: &RefineArgs) -> Refined {
    let raw = |asked, failure| Refined {
        text: text.to_string(),
        asked,
        failure,
        ms: 0.0,
    };
    if flags.no_refine || text.trim().is_empty() {
        return raw(false, None);
    }
    let table = match load_text_config(config) {
        Ok(c) => c.refine,
        Err(e) => {
            let asked = flags.refine || flags.translate_to.is_some();
            return raw(asked, asked.then_some(e));
        }
    };
    let refiner = match Refiner::from_table(&table) {
        Ok(r) => r,
        Err(e) => {
            let asked = flags.refine || flags.translate_to.is_some() || table.default == Some(true);
            return raw(asked, asked.then(|| e.to_string()));
        }
    };
    let task = match &flags.translate_to {
        Some(lang) if lang.trim().is_empty() => {
            return raw(
                true,
                Some("--translate-to needs a language (\"German\")".into()),
            );
        }
        Some(lang) => Task::TranslateTo(lang.trim().to_string()),
        None if flags.refine || refiner.default_on => Task::CleanUp,
        None => return raw(false, None),
    };
    let since = std::time::Instant::now();
    let result = refiner.run(text, &task);
    let ms = since.elapsed().as_secs_f64() * 1e3;
    match result {
        Ok(t) => Refined {
            text: t,
            asked: true,
            failure: None,
            ms,
        },
        Err(e) => Refined {
            ms,
            ..raw(true, Some(e.to_string()))
        },
    }
}

fn load_text_config(
    named: Option<&std::path::Path>,
) -> Result<v2m_text::config::TextConfig, String> {
    match named {
        Some(p) => v2m_text::config::load(p, true),
        None => v2m_text::config::load(&v2m_shm_proto::paths::config_file(), false),
    }
    .map_err(|e| e.to_string())
}

/// Adds the refining outcome to a JSON object.
fn with_refined(mut v: serde_json::Value, r: &Refined, raw: &str) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("text".into(), r.text.clone().into());
        if r.asked {
            o.insert("refined".into(), r.failure.is_none().into());
            if let Some(why) = &r.failure {
                o.insert("reason".into(), why.clone().into());
            }
            o.insert("refine_ms".into(), ((r.ms * 10.0).round() / 10.0).into());
            if r.text != raw {
                o.insert("raw_text".into(), raw.into());
            }
        }
    }
    v
}

/// stop, toggle: print the text (refined if asked), then deliver it.
fn final_request(
    socket: &std::path::Path,
    json: bool,
    config: Option<&std::path::Path>,
    body: RequestBody,
    d: Deliver,
    flags: &RefineArgs,
) -> u8 {
    let reply = match Client::connect(socket).and_then(|mut c| c.request(body)) {
        Ok(r) => r,
        Err(e) => return fail(json, exit::code_for(&e), &e.to_string()),
    };
    let Reply::Stopped(f) = &reply else {
        // toggle that started a session
        if json {
            println!("{}", serde_json::to_string(&reply).unwrap_or_default());
        } else {
            print_reply(&reply);
        }
        return exit::OK;
    };
    let raw = f.text.trim();
    let refined = refine_text(config, raw, flags);
    if json {
        let mut v = serde_json::to_value(&reply).unwrap_or_default();
        if let Some(inner) = v.get_mut("Stopped") {
            *inner = with_refined(inner.take(), &refined, raw);
        }
        println!("{v}");
    } else {
        println!("{}", refined.text);
    }
    deliver_refined(&refined, warn_lost(f), d)
}

/// Says why the text is unrefined if refining failed, then delivers it; the exit code says
/// what went wrong last (`code`: what the caller already found).
fn deliver_refined(refined: &Refined, code: u8, d: Deliver) -> u8 {
    let mut code = code;
    if let Some(why) = &refined.failure {
        eprintln!("v2m-cli: delivered unrefined: {why}");
        code = exit::UNREFINED;
    }
    match deliver_text(&refined.text, d) {
        exit::OK => code,
        failed => failed,
    }
}

/// Warns of lost audio: the exit code says words are missing.
fn warn_lost(f: &FinalText) -> u8 {
    if f.lost_frames > 0 {
        eprintln!(
            "v2m-cli: warning: {:.1} s of this dictation's audio were lost before the worker read them (it restarted after the ring had overwritten them): words are missing",
            f.lost_seconds()
        );
        return exit::INCOMPLETE;
    }
    exit::OK
}

/// Warns of lost audio, then delivers the text as asked; the exit code says what failed.
fn deliver_final(f: &FinalText, d: Deliver) -> u8 {
    let lost = warn_lost(f);
    match deliver_text(f.text.trim(), d) {
        exit::OK => lost,
        failed => failed,
    }
}

/// Delivers `text` as asked; exit::DELIVERY if a way failed (the text is printed already).
fn deliver_text(text: &str, d: Deliver) -> u8 {
    let session = Session::detect();
    let mut code = exit::OK;
    let mut attempt = |what: &str, r: Result<&'static str, deliver::DeliveryError>| {
        if let Err(e) = r {
            eprintln!("v2m-cli: {what}: {e} (the text is printed above)");
            code = exit::DELIVERY;
        }
    };
    if d.clipboard {
        attempt("clipboard", deliver::clipboard(text, session));
    }
    if d.type_it {
        attempt("type", deliver::type_text(text, session));
    }
    if d.notify {
        attempt("notify", deliver::notify(text));
    }
    code
}

/// refine's input: the argument, the clipboard, or standard input.
fn read_input(text: Option<String>, clipboard: bool) -> Result<String, String> {
    if let Some(t) = text {
        return Ok(t);
    }
    if clipboard {
        return deliver::read_clipboard(Session::detect()).map_err(|e| format!("clipboard: {e}"));
    }
    let mut t = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
        .map_err(|e| format!("standard input: {e}"))?;
    Ok(t)
}

/// refine: the rules, then the model if asked; printed, then delivered.
fn refine_command(
    json: bool,
    config: Option<&std::path::Path>,
    input: &str,
    flags: &RefineArgs,
    d: Deliver,
) -> u8 {
    let rules = match load_text_config(config)
        .and_then(|c| TextRules::new(&c.text).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => return fail(json, exit::ERROR, &e),
    };
    let ruled = rules.apply(input.trim());
    let refined = refine_text(config, &ruled, flags);
    if json {
        let mut v = with_refined(serde_json::json!({}), &refined, &ruled);
        if let Some(o) = v.as_object_mut() {
            o.entry("refined").or_insert(false.into());
        }
        println!("{v}");
    } else {
        println!("{}", refined.text);
    }
    deliver_refined(&refined, exit::OK, d)
}

/// transcribe: each file in its own request, its progress on the terminal (or as JSON lines
/// with `--json`), its transcript in `format` to standard output or `output`. A file that
/// fails is reported and the others go on; the exit code is the last failure's.
fn transcribe(
    socket: &std::path::Path,
    json: bool,
    format: Format,
    output: Option<&std::path::Path>,
    d: Deliver,
    files: &[PathBuf],
) -> u8 {
    let many = files.len() > 1;
    if many
        && let Some(dir) = output
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        return fail(json, exit::ERROR, &format!("{}: {e}", dir.display()));
    }
    let terminal = !json && std::io::stderr().is_terminal();
    let mut code = exit::OK;
    let outputs = transcript::output_paths(output, files, format);
    for (file, out) in files.iter().zip(outputs) {
        let path = absolute(file).display().to_string();
        let bar = FileProgress::new(&file.display().to_string(), terminal);
        let show = |e: &Event| {
            let Event::Progress {
                done_s, total_s, ..
            } = e
            else {
                return;
            };
            if json {
                let fraction = total_s.map(|t| (done_s / t.max(0.01)).min(1.0));
                println!(
                    "{}",
                    serde_json::json!({"file": path, "progress": fraction, "done_s": done_s})
                );
            } else {
                bar.update(*done_s, *total_s);
            }
        };
        let reply = Client::connect(socket).and_then(|mut c| {
            c.request_with_events(RequestBody::TranscribeFile { path: path.clone() }, show)
        });
        bar.finish();
        let f = match reply {
            Ok(Reply::Transcribed(f)) => f,
            Ok(other) => {
                code = fail(
                    json,
                    exit::ERROR,
                    &format!("{}: unexpected reply {other:?}", file.display()),
                );
                continue;
            }
            Err(e) => {
                let c = exit::code_for(&e);
                code = fail(json, c, &format!("{}: {e}", file.display()));
                continue;
            }
        };
        if json {
            println!(
                "{}",
                serde_json::to_string(&Reply::Transcribed(f.clone())).unwrap_or_default()
            );
        } else {
            let rendered = transcript::render(format, &f.text, &f.segments, Some(&path));
            match out {
                Some(out) => {
                    if let Err(e) = std::fs::write(&out, rendered) {
                        code = fail(json, exit::ERROR, &format!("{}: {e}", out.display()));
                        continue;
                    }
                }
                None => print!("{rendered}"),
            }
        }
        let delivered = deliver_final(&f, d);
        if delivered != exit::OK {
            code = delivered;
        }
    }
    code
}

fn listen(socket: &std::path::Path, json: bool, once: bool) -> u8 {
    let mut c = match Client::connect(socket) {
        Ok(c) => c,
        Err(e) => return fail(json, exit::code_for(&e), &e.to_string()),
    };
    if let Err(e) = c.request(RequestBody::Subscribe { metrics: false }) {
        return fail(json, exit::code_for(&e), &e.to_string());
    }
    let mut r = Renderer::new(!json && std::io::stdout().is_terminal());
    let mut out = std::io::stdout().lock();
    loop {
        match c.next_event(None) {
            Ok(e) => {
                if r.show(&mut out, &e).is_err() {
                    return exit::OK; // stdout closed
                }
                if once && matches!(e, Event::Final(_)) {
                    return exit::OK;
                }
            }
            Err(ClientError::Closed) => {
                return fail(json, exit::ERROR, "v2m-rt closed the connection");
            }
            Err(e) => return fail(json, exit::code_for(&e), &e.to_string()),
        }
    }
}
