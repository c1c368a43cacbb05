//! Scoring transcripts: a subset of Whisper's English normaliser and word error rate.
//!
//! Normalisation: lower case, `mister`/`missus`/`doctor` to their abbreviations, hyphens to
//! spaces, punctuation dropped, number words to digits (each word on its own: "five five" is
//! "5 5", as is Whisper's "5 5"). Applied to both sides before counting.

fn number_word(w: &str) -> Option<&'static str> {
    const WORDS: [(&str, &str); 28] = [
        ("zero", "0"),
        ("one", "1"),
        ("two", "2"),
        ("three", "3"),
        ("four", "4"),
        ("five", "5"),
        ("six", "6"),
        ("seven", "7"),
        ("eight", "8"),
        ("nine", "9"),
        ("ten", "10"),
        ("eleven", "11"),
        ("twelve", "12"),
        ("thirteen", "13"),
        ("fourteen", "14"),
        ("fifteen", "15"),
        ("sixteen", "16"),
        ("seventeen", "17"),
        ("eighteen", "18"),
        ("nineteen", "19"),
        ("twenty", "20"),
        ("thirty", "30"),
        ("forty", "40"),
        ("fifty", "50"),
        ("sixty", "60"),
        ("seventy", "70"),
        ("eighty", "80"),
        ("ninety", "90"),
    ];
    WORDS.iter().find(|(k, _)| *k == w).map(|(_, v)| *v)
}

/// Normalised words of `text`.
pub fn normalize(text: &str) -> Vec<String> {
    let lower = text.to_lowercase().replace(['-', '—', '–'], " ");
    lower
        .split_whitespace()
        .filter_map(|w| {
            let w: String = w
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect();
            let w = w.trim_matches('\'').to_string();
            if w.is_empty() {
                return None;
            }
            Some(match w.as_str() {
                "mister" => "mr".to_string(),
                "missus" | "missis" => "mrs".to_string(),
                "doctor" => "dr".to_string(),
                other => number_word(other).map_or_else(|| other.to_string(), str::to_string),
            })
        })
        .collect()
}

/// Word-level edit distance between reference and hypothesis words.
pub fn word_errors(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let sub = prev[j] + usize::from(r != h);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// Corpus WER over (reference, hypothesis) pairs: total errors / total reference words.
pub fn corpus_wer<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> f64 {
    let (mut errors, mut words) = (0usize, 0usize);
    for (r, h) in pairs {
        let (r, h) = (normalize(r), normalize(h));
        errors += word_errors(&r, &h);
        words += r.len();
    }
    errors as f64 / words.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_punctuation_titles_and_numbers() {
        assert_eq!(
            normalize("And Mr. John Dashwood, ten meters!"),
            ["and", "mr", "john", "dashwood", "10", "meters"]
        );
        assert_eq!(normalize("five five"), normalize("5 5"));
        assert_eq!(normalize("cold-hearted"), ["cold", "hearted"]);
    }

    #[test]
    fn wer_counts_substitutions_insertions_deletions() {
        let w = |s: &str| normalize(s);
        assert_eq!(word_errors(&w("a b c"), &w("a b c")), 0);
        assert_eq!(word_errors(&w("a b c"), &w("a x c")), 1);
        assert_eq!(word_errors(&w("a b c"), &w("a c")), 1);
        assert_eq!(word_errors(&w("a b c"), &w("a b c d")), 1);
        assert_eq!(word_errors(&w("a b c"), &w("")), 3);
        assert!((corpus_wer([("a b c d", "a b c"), ("e f", "e f")]) - 1.0 / 6.0).abs() < 1e-9);
    }
}
