//! Where the tests' inputs are (pocketsphinx-testdata's real recordings, installed by
//! scripts/setup.sh) and where their scratch files go: one place for every test crate.

use std::path::PathBuf;

/// pocketsphinx-testdata's data folder.
pub const POCKETSPHINX: &str = "/usr/share/pocketsphinx/test/data";

/// Its LibriVox recordings (16 kHz mono, with a `transcription` file).
pub fn librivox_dir() -> PathBuf {
    PathBuf::from(POCKETSPHINX).join("librivox")
}

/// The LibriVox recording `id` (`0870`, `0880`, `0890`, `0920`, `0930`).
pub fn librivox(id: &str) -> PathBuf {
    librivox_dir().join(format!("sense_and_sensibility_01_austen_64kb-{id}.wav"))
}

/// The recording most tests play: 7 s of one speaker (LibriVox `0870`).
pub const SPEECH: &str =
    "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav";

/// The reference transcript of LibriVox recording `id` (lower case, no punctuation).
pub fn librivox_transcript(id: &str) -> String {
    let path = librivox_dir().join("transcription");
    let all = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: pocketsphinx-testdata is missing: run scripts/setup.sh",
            path.display()
        )
    });
    let line = all
        .lines()
        .find(|l| l.contains(&format!("-{id})")))
        .unwrap_or_else(|| panic!("no transcript for {id} in {}", path.display()));
    line.replace("<s>", "")
        .replace("</s>", "")
        .split(" (")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A fresh, empty scratch folder for one test: `$TMPDIR/v2m-<name>-<pid>`.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("v2m-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// A scratch folder shared by every call with `name` in this test process (made once, never
/// emptied): for helpers that write files a test reads back later.
pub fn process_scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("v2m-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_recording_is_librivox_0870() {
        assert_eq!(PathBuf::from(SPEECH), librivox("0870"));
    }

    #[test]
    fn a_transcript_is_the_words_alone() {
        let t = librivox_transcript("0880");
        assert!(!t.contains('<') && !t.contains('('), "{t}");
        assert!(t.starts_with("he was not"), "{t}");
    }

    #[test]
    fn scratch_folders_start_empty() {
        let d = scratch("fixtures-test");
        std::fs::write(d.join("x"), "x").unwrap();
        let again = scratch("fixtures-test");
        assert_eq!(d, again);
        assert_eq!(std::fs::read_dir(&again).unwrap().count(), 0);
    }
}
