//! A file job's progress on a terminal: an `indicatif` bar on standard error with the share
//! done, the audio covered, the time taken and the speed in × real time
//! ([`crate::transcript::progress_line`]). Nothing is drawn when standard error is not a
//! terminal (or the caller prints JSON instead).

use crate::transcript::progress_line;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Bar resolution: the bar counts milliseconds of audio.
const MS: f64 = 1000.0;

/// The progress bar of one file.
pub struct FileProgress {
    bar: Option<ProgressBar>,
}

impl FileProgress {
    /// A bar labelled `name`, drawn only when `terminal`.
    pub fn new(name: &str, terminal: bool) -> FileProgress {
        if !terminal {
            return FileProgress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(name.to_string());
        FileProgress { bar: Some(bar) }
    }

    /// `done_s` of `total_s` seconds of audio transcribed (the length may be unknown).
    pub fn update(&self, done_s: f64, total_s: Option<f64>) {
        let Some(bar) = &self.bar else { return };
        if let Some(total) = total_s.filter(|t| *t > 0.0) {
            bar.set_length((total * MS) as u64);
        }
        bar.set_position((done_s.max(0.0) * MS) as u64);
        bar.set_message(progress_line(done_s, total_s, bar.elapsed().as_secs_f64()));
    }

    /// Removes the bar (the transcript or an error follows on a clean line).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_nothing_is_drawn_and_updates_are_harmless() {
        let p = FileProgress::new("talk.mp3", false);
        p.update(3.0, Some(10.0));
        p.update(4.0, None);
        assert!(p.bar.is_none());
        p.finish();
    }

    #[test]
    fn the_bar_counts_milliseconds_of_audio_and_says_how_fast() {
        let p = FileProgress::new("talk.mp3", true);
        p.update(12.0, Some(24.0));
        let bar = p.bar.as_ref().unwrap();
        assert_eq!(bar.length(), Some(24_000));
        assert_eq!(bar.position(), 12_000);
        assert!(bar.message().contains("12 s of 24 s"), "{}", bar.message());
        assert!(bar.message().contains("× real time"), "{}", bar.message());
        p.finish();
    }
}
