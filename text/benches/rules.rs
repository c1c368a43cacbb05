//! What the `[text]` rules cost a final: the default rules plus a user's table (ten
//! replacements, two regular expressions) on dictations of 10, 40 and 160 words with spoken
//! punctuation and fillers in them, and on provisional text (stable + tentative).
//!
//! `cargo bench -p v2m-text --bench rules`. Prints last:
//! `rules: final_10w_p50_us=… final_40w_p50_us=… final_160w_p50_us=… p99_us=… provisional_40w_p50_us=…`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;
use v2m_text::config::TextTable;
use v2m_text::rules::TextRules;

const SENTENCE: &str = "um so the meeting with Jason is on Monday comma at nine period \
please bring the k8s report and the slides question mark ";

fn dictation(words: usize) -> String {
    SENTENCE
        .split_whitespace()
        .cycle()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn time(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect()
}

fn main() {
    let mut replacements = BTreeMap::new();
    for (k, v) in [
        ("jason", "JSON"),
        ("new york", "New York"),
        ("github", "GitHub"),
        ("postgres", "PostgreSQL"),
        ("rust", "Rust"),
        ("linux", "Linux"),
        ("wayland", "Wayland"),
        ("x eleven", "X11"),
        ("v two m", "v2m"),
        ("whisper", "Whisper"),
    ] {
        replacements.insert(k.to_string(), v.to_string());
    }
    let mut regex = BTreeMap::new();
    regex.insert(r"\bk ?8 ?s\b".to_string(), "Kubernetes".to_string());
    regex.insert(r"(\d+) percent".to_string(), "$1%".to_string());
    let rules = TextRules::new(&TextTable {
        replacements: Some(replacements),
        regex_replacements: Some(regex),
        ..TextTable::default()
    })
    .expect("valid rules");
    let runs = 2000;
    let mut line = Vec::new();
    let mut all = Vec::new();
    for words in [10, 40, 160] {
        let text = dictation(words);
        let mut t = time(runs, || {
            black_box(rules.apply(black_box(&text)));
        });
        all.extend_from_slice(&t);
        let p50 = percentile(&mut t, 0.5);
        println!(
            "final {words:>3} words: p50 {p50:.1} us, p99 {:.1} us",
            percentile(&mut t, 0.99)
        );
        line.push(format!("final_{words}w_p50_us={p50:.1}"));
    }
    let text = dictation(40);
    let (stable, tentative) = text.split_at(text.len() * 3 / 4);
    let mut t = time(runs, || {
        black_box(rules.apply_provisional(black_box(stable), black_box(tentative)));
    });
    println!(
        "rules: {} p99_us={:.1} provisional_40w_p50_us={:.1}",
        line.join(" "),
        percentile(&mut all, 0.99),
        percentile(&mut t, 0.5)
    );
    println!("  (example: {:?})", rules.apply(&dictation(20)));
}
