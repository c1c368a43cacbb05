//! Rendering events for `listen`: on a terminal, one line rewritten as provisional text
//! grows and ended by the final; piped, one JSON object per event.

use std::io::Write;
use v2m_shm_proto::protocol::Event;

/// How events are shown.
pub struct Renderer {
    terminal: bool,
    line_open: bool,
}

impl Renderer {
    /// A renderer for a terminal (`true`) or a pipe.
    pub fn new(terminal: bool) -> Renderer {
        Renderer {
            terminal,
            line_open: false,
        }
    }

    /// Writes `event` to `out`.
    pub fn show(&mut self, out: &mut impl Write, event: &Event) -> std::io::Result<()> {
        if !self.terminal {
            serde_json::to_writer(&mut *out, event)?;
            writeln!(out)?;
            return out.flush();
        }
        match event {
            Event::Provisional(p) => {
                // \r and "clear to end of line": the line is rewritten in place.
                write!(out, "\r\x1b[K{}", join(&p.stable, &p.tentative))?;
                self.line_open = true;
            }
            Event::Final(f) => {
                writeln!(out, "\r\x1b[K{}", f.text.trim())?;
                self.line_open = false;
            }
            Event::StateChanged { .. } | Event::ReadLag { .. } | Event::Progress { .. } => {}
            Event::WorkerUp(w) => self.note(out, &format!("worker {} up ({})", w.name, w.model))?,
            Event::WorkerDown { name, reason } => {
                self.note(out, &format!("worker {name} down: {reason}"))?
            }
        }
        out.flush()
    }

    fn note(&mut self, out: &mut impl Write, text: &str) -> std::io::Result<()> {
        if self.line_open {
            writeln!(out)?;
            self.line_open = false;
        }
        writeln!(out, "[{text}]")
    }
}

/// One terminal line of provisional text: a tentative part that begins with punctuation (a
/// spoken "comma") joins the stable part without a space; line breaks (a spoken "new line")
/// show as ↵, since the line is rewritten in place.
fn join(stable: &str, tentative: &str) -> String {
    let (s, t) = (stable.trim_matches(' '), tentative.trim_matches(' '));
    let line = match (s.is_empty(), t.is_empty()) {
        (true, _) => t.to_string(),
        (_, true) => s.to_string(),
        _ if t.starts_with([',', '.', ';', ':', '!', '?', ')', '\n']) => format!("{s}{t}"),
        _ => format!("{s} {t}"),
    };
    line.replace('\n', "↵")
}

#[cfg(test)]
mod tests {
    use super::*;
    use v2m_shm_proto::protocol::{FinalText, ProvisionalText, Timings};

    fn provisional(stable: &str, tentative: &str) -> Event {
        Event::Provisional(ProvisionalText {
            session_id: 1,
            stable: stable.into(),
            tentative: tentative.into(),
            worker: "w".into(),
            timings: Timings::default(),
        })
    }

    #[test]
    fn a_terminal_gets_one_rewritten_line_and_a_pipe_json() {
        let fin = Event::Final(FinalText {
            session_id: 1,
            text: " hello world".into(),
            worker: "w".into(),
            stop_to_final_ms: 1.0,
            timings: Timings::default(),
            capture_to_read: Default::default(),
            speculative: false,
            lost_frames: 0,
            segments: Vec::new(),
        });
        let mut out = Vec::new();
        let mut r = Renderer::new(true);
        for e in [
            provisional("", "hel"),
            provisional("hello", "wor"),
            fin.clone(),
        ] {
            r.show(&mut out, &e).unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[Khel\r\x1b[Khello wor\r\x1b[Khello world\n"
        );
        let mut out = Vec::new();
        let mut r = Renderer::new(true);
        r.show(&mut out, &provisional("Dear John", ",\nThanks"))
            .unwrap();
        r.show(&mut out, &provisional("Hello", "world")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\r\x1b[KDear John,↵Thanks\r\x1b[KHello world"
        );
        let mut out = Vec::new();
        Renderer::new(false).show(&mut out, &fin).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["Final"]["text"], " hello world");
    }
}
