//! A transcript in the formats people use: plain text, SubRip (`.srt`), WebVTT (`.vtt`) and
//! JSON (segments with start, end, text, avg_logprob, no_speech_prob). Segment times are made
//! well-formed on the way out: each starts no earlier than the previous one ended and lasts at
//! least a frame.

use std::path::{Path, PathBuf};
use v2m_shm_proto::protocol::TextSegment;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The text alone.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// JSON: the text and its segments.
    Json,
}

impl Format {
    /// Parses `txt`, `srt`, `vtt` or `json`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "txt" | "text" => Ok(Format::Txt),
            "srt" => Ok(Format::Srt),
            "vtt" | "webvtt" => Ok(Format::Vtt),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown format '{other}': choose txt, srt, vtt or json"
            )),
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
        }
    }
}

/// Where each input's transcript goes: standard output (`None`) without `output`; the file
/// named for one input; with several, `STEM.<format>` each in the folder named. Inputs that
/// would share a name keep their extension (`talk.mp3.srt`, `talk.wav.srt`), and any still
/// alike (the same name in two folders) are numbered (`talk.mp3-2.srt`), so no transcript
/// overwrites another.
pub fn output_paths(
    output: Option<&Path>,
    inputs: &[PathBuf],
    format: Format,
) -> Vec<Option<PathBuf>> {
    let Some(out) = output else {
        return vec![None; inputs.len()];
    };
    if inputs.len() == 1 {
        return vec![Some(out.to_owned())];
    }
    let stem = |p: &PathBuf| {
        p.file_stem()
            .unwrap_or(p.as_os_str())
            .to_string_lossy()
            .into_owned()
    };
    let full = |p: &PathBuf| {
        p.file_name()
            .unwrap_or(p.as_os_str())
            .to_string_lossy()
            .into_owned()
    };
    let names: Vec<String> = inputs
        .iter()
        .map(|p| {
            let shared = inputs.iter().filter(|q| stem(q) == stem(p)).count() > 1;
            if shared { full(p) } else { stem(p) }
        })
        .collect();
    let mut taken: Vec<String> = Vec::new();
    names
        .iter()
        .map(|name| {
            let mut candidate = name.clone();
            let mut n = 1;
            while taken.contains(&candidate) {
                n += 1;
                candidate = format!("{name}-{n}");
            }
            taken.push(candidate.clone());
            Some(out.join(format!("{candidate}.{}", format.extension())))
        })
        .collect()
}

/// A one-line progress report for a terminal: `42% 12 s of 29 s in 3 s (4.0× real time)`,
/// without the share when the length is unknown.
pub fn progress_line(done_s: f64, total_s: Option<f64>, elapsed_s: f64) -> String {
    let speed = if elapsed_s > 0.0 {
        format!(" ({:.1}× real time)", done_s / elapsed_s)
    } else {
        String::new()
    };
    match total_s {
        Some(t) if t > 0.0 => format!(
            "{:3.0}% {:.0} s of {:.0} s in {:.0} s{speed}",
            (100.0 * done_s / t).min(100.0),
            done_s,
            t,
            elapsed_s
        ),
        _ => format!("{done_s:.0} s in {elapsed_s:.0} s{speed}"),
    }
}

/// Segments with non-empty text, times in order: each starts at or after the previous end and
/// ends at least 20 ms after it starts.
pub fn tidy(segments: &[TextSegment]) -> Vec<TextSegment> {
    let mut out: Vec<TextSegment> = Vec::new();
    for s in segments {
        let text = s.text.trim();
        if text.is_empty() {
            continue;
        }
        let start = s.start_s.max(out.last().map_or(0.0, |p| p.end_s)).max(0.0);
        let end = s.end_s.max(start + 0.02);
        out.push(TextSegment {
            start_s: start,
            end_s: end,
            text: text.to_string(),
            ..s.clone()
        });
    }
    out
}

fn clock(seconds: f64, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

/// `text` and its `segments` rendered as `format` (`file` names the source, for JSON).
pub fn render(format: Format, text: &str, segments: &[TextSegment], file: Option<&str>) -> String {
    let segments = tidy(segments);
    match format {
        Format::Txt => format!("{}\n", text.trim()),
        Format::Srt => {
            let mut out = String::new();
            for (i, s) in segments.iter().enumerate() {
                out.push_str(&format!(
                    "{}\n{} --> {}\n{}\n\n",
                    i + 1,
                    clock(s.start_s, ','),
                    clock(s.end_s, ','),
                    s.text
                ));
            }
            out
        }
        Format::Vtt => {
            let mut out = String::from("WEBVTT\n\n");
            for s in &segments {
                out.push_str(&format!(
                    "{} --> {}\n{}\n\n",
                    clock(s.start_s, '.'),
                    clock(s.end_s, '.'),
                    s.text
                ));
            }
            out
        }
        Format::Json => {
            let v = serde_json::json!({
                "file": file,
                "text": text.trim(),
                "segments": segments.iter().map(|s| serde_json::json!({
                    "start": s.start_s,
                    "end": s.end_s,
                    "text": s.text,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                })).collect::<Vec<_>>(),
            });
            format!("{v}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start_s: f64, end_s: f64, text: &str) -> TextSegment {
        TextSegment {
            start_s,
            end_s,
            text: text.into(),
            avg_logprob: -0.25,
            no_speech_prob: 0.01,
        }
    }

    #[test]
    fn subtitles_number_and_time_their_segments() {
        let segs = [seg(0.0, 2.5, " Hello there."), seg(2.5, 3661.25, "Bye.")];
        assert_eq!(
            render(Format::Srt, "Hello there. Bye.", &segs, None),
            "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> 01:01:01,250\nBye.\n\n"
        );
        assert_eq!(
            render(Format::Vtt, "x", &segs[..1], None),
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
        );
        assert_eq!(render(Format::Txt, " Hello. ", &segs, None), "Hello.\n");
        let j: serde_json::Value =
            serde_json::from_str(&render(Format::Json, "t", &segs, Some("a.wav"))).unwrap();
        assert_eq!(j["segments"][1]["end"], 3661.25);
        assert_eq!(j["file"], "a.wav");
    }

    #[test]
    fn times_are_made_well_formed() {
        let segs = [
            seg(1.0, 3.0, "a"),
            seg(2.0, 2.0, "b"),
            seg(5.0, 6.0, "  "),
            seg(4.0, 3.5, "c"),
        ];
        let t = tidy(&segs);
        assert_eq!(t.len(), 3, "empty text dropped");
        assert_eq!((t[1].start_s, t[1].end_s), (3.0, 3.02));
        assert_eq!((t[2].start_s, t[2].end_s), (4.0, 4.02));
        assert!(Format::parse("mp3").is_err());
        assert_eq!(Format::parse("vtt").unwrap().extension(), "vtt");
    }

    #[test]
    fn outputs_go_to_the_file_or_one_per_input_in_the_folder_never_two_to_one() {
        let p = |s: &str| PathBuf::from(s);
        let one = [p("/x/talk.m4a")];
        assert_eq!(output_paths(None, &one, Format::Srt), vec![None]);
        assert_eq!(
            output_paths(Some(Path::new("/o.txt")), &one, Format::Srt),
            vec![Some(p("/o.txt"))]
        );
        let dir = Some(Path::new("/out"));
        let inputs = [
            p("/x/talk.m4a"),
            p("/x/notes.final.mp3"),
            p("/x/talk.wav"),
            p("/y/talk.wav"),
            p("/x/other"),
        ];
        assert_eq!(
            output_paths(dir, &inputs, Format::Srt),
            vec![
                Some(p("/out/talk.m4a.srt")),
                Some(p("/out/notes.final.srt")),
                Some(p("/out/talk.wav.srt")),
                Some(p("/out/talk.wav-2.srt")),
                Some(p("/out/other.srt")),
            ]
        );
    }

    #[test]
    fn progress_lines_say_how_far_and_how_fast() {
        assert_eq!(
            progress_line(12.0, Some(24.0), 3.0),
            " 50% 12 s of 24 s in 3 s (4.0× real time)"
        );
        assert_eq!(progress_line(7.4, None, 0.0), "7 s in 0 s");
    }
}
