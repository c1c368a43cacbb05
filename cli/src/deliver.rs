//! Putting the final text where the user wants it: the clipboard (wl-copy on Wayland, xclip
//! or xsel on X11), typed into the focused window (wtype, ydotool, xdotool), a notification
//! (notify-send). The text is always printed too; a missing tool is an error naming what
//! to install, never lost text.

use std::io::Write;
use std::process::{Command, Stdio};

/// Why the text could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// The graphical session, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// WAYLAND_DISPLAY is set.
    Wayland,
    /// DISPLAY is set.
    X11,
    /// Neither.
    None,
}

impl Session {
    /// The session this process runs in.
    pub fn detect() -> Session {
        if std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty()) {
            Session::Wayland
        } else if std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty()) {
            Session::X11
        } else {
            Session::None
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), DeliveryError> {
    // No pipes but stdin: clipboard tools fork a process that keeps the selection and would
    // hold a captured stdout or stderr open forever.
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| DeliveryError(format!("{program}: {e}")))?;
    if let Some(text) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(text.as_bytes())
            .map_err(|e| DeliveryError(format!("{program}: {e}")))?;
    }
    let status = child
        .wait()
        .map_err(|e| DeliveryError(format!("{program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(DeliveryError(format!("{program} failed ({status})")))
    }
}

/// A clipboard tool and its arguments.
type Tool = (&'static str, &'static [&'static str]);

/// The first of the session's clipboard tools on PATH (`wayland` or `x11`), or why none.
fn clipboard_tool(session: Session, wayland: &[Tool], x11: &[Tool]) -> Result<Tool, DeliveryError> {
    let tools = match session {
        Session::Wayland => wayland,
        Session::X11 => x11,
        Session::None => {
            return Err(DeliveryError(
                "no graphical session (neither WAYLAND_DISPLAY nor DISPLAY is set): no clipboard"
                    .into(),
            ));
        }
    };
    tools
        .iter()
        .find(|(program, _)| on_path(program))
        .copied()
        .ok_or_else(|| {
            DeliveryError(match session {
                Session::Wayland => "no clipboard tool: install wl-clipboard".into(),
                _ => "no clipboard tool: install xclip or xsel".into(),
            })
        })
}

/// Copies `text` to the clipboard.
pub fn clipboard(text: &str, session: Session) -> Result<&'static str, DeliveryError> {
    let (program, args) = clipboard_tool(
        session,
        &[("wl-copy", &[])],
        &[
            ("xclip", &["-selection", "clipboard"]),
            ("xsel", &["--clipboard", "--input"]),
        ],
    )?;
    run(program, args, Some(text))?;
    Ok(program)
}

/// Types `text` into the focused window.
pub fn type_text(text: &str, session: Session) -> Result<&'static str, DeliveryError> {
    let tools: &[(&str, &[&str])] = match session {
        Session::Wayland => &[("wtype", &["--"]), ("ydotool", &["type", "--"])],
        Session::X11 => &[
            ("xdotool", &["type", "--clearmodifiers", "--"]),
            ("ydotool", &["type", "--"]),
        ],
        Session::None => &[("ydotool", &["type", "--"])],
    };
    for (program, args) in tools {
        if on_path(program) {
            let mut all: Vec<&str> = args.to_vec();
            all.push(text);
            run(program, &all, None)?;
            return Ok(program);
        }
    }
    Err(DeliveryError(match session {
        Session::Wayland => "no typing tool: install wtype (or ydotool)".into(),
        Session::X11 => "no typing tool: install xdotool (or ydotool)".into(),
        Session::None => "no graphical session; typing needs ydotool".into(),
    }))
}

/// Shows `text` in a desktop notification.
pub fn notify(text: &str) -> Result<&'static str, DeliveryError> {
    if !on_path("notify-send") {
        return Err(DeliveryError(
            "no notify-send: install libnotify-bin".into(),
        ));
    }
    run("notify-send", &["v2m", text], None)?;
    Ok("notify-send")
}

/// The clipboard's text.
pub fn read_clipboard(session: Session) -> Result<String, DeliveryError> {
    let (program, args) = clipboard_tool(
        session,
        &[("wl-paste", &["--no-newline"])],
        &[
            ("xclip", &["-selection", "clipboard", "-o"]),
            ("xsel", &["--clipboard", "--output"]),
        ],
    )?;
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| DeliveryError(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(DeliveryError(format!(
            "{program} failed ({}): is the clipboard empty?",
            out.status
        )));
    }
    String::from_utf8(out.stdout).map_err(|_| DeliveryError("the clipboard holds no text".into()))
}
