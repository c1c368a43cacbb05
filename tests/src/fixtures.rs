//! Where the tests' inputs are (pocketsphinx-testdata's real recordings, installed by
//! scripts/setup.sh) and where their scratch files go: one place for every test crate.

use std::path::{Path, PathBuf};

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

/// A fresh, empty scratch folder for one test: `$TMPDIR/v2m-<name>-<pid>`. It stays after the
/// test (to look into after a failure) until a later test process sweeps it away.
pub fn scratch(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    let _ = std::fs::remove_dir_all(&dir);
    make_scratch(&dir);
    dir
}

/// A scratch folder shared by every call with `name` in this test process (made once, never
/// emptied): for helpers that write files a test reads back later.
pub fn process_scratch(name: &str) -> PathBuf {
    let dir = scratch_path(name);
    make_scratch(&dir);
    dir
}

/// Marks a folder as a test's scratch: only marked folders are swept.
const SCRATCH_MARK: &str = ".v2m-test-scratch";

fn scratch_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("v2m-{name}-{}", std::process::id()))
}

fn make_scratch(dir: &Path) {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(|| sweep_ended_scratch(&std::env::temp_dir()));
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mark = dir.join(SCRATCH_MARK);
    if !mark.exists() {
        std::fs::write(&mark, b"").unwrap_or_else(|e| panic!("{}: {e}", mark.display()));
    }
}

/// Removes the scratch folders under `tmp` whose test process has ended. nextest runs every
/// test in a process of its own, and a worker test's folder holds a copy of a model (over a
/// gigabyte): without this, every run of the suite left gigabytes behind.
fn sweep_ended_scratch(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("v2m-"))
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists();
        if !alive && entry.path().join(SCRATCH_MARK).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
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
        let left: Vec<_> = std::fs::read_dir(&again)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [SCRATCH_MARK]);
    }

    #[test]
    fn scratch_of_ended_processes_is_swept_and_nothing_else() {
        let tmp = scratch("fixtures-sweep");
        // A process that has ended (and been reaped): its pid is free.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let make = |name: String, marked: bool| {
            let dir = tmp.join(name);
            std::fs::create_dir_all(dir.join("model")).unwrap();
            std::fs::write(dir.join("model/weights"), b"w").unwrap();
            if marked {
                std::fs::write(dir.join(SCRATCH_MARK), b"").unwrap();
            }
            dir
        };
        let gone = make(format!("v2m-worker-test-{ended}"), true);
        let unmarked = make(format!("v2m-mine-{ended}"), false);
        let running = make(format!("v2m-worker-test-{}", std::process::id()), true);
        let other = make(format!("other-{ended}"), true);
        sweep_ended_scratch(&tmp);
        assert!(!gone.exists(), "an ended test's scratch stays");
        for kept in [&unmarked, &running, &other] {
            assert!(
                kept.join("model/weights").exists(),
                "{} was swept",
                kept.display()
            );
        }
    }
}
