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

/// Where `other` differs from `text` (normalised words, aligned by edit distance), each run of
/// differing words as `"was -> is"`, every distinct one once.
pub fn distinct_differences(text: &str, other: &str) -> std::collections::BTreeSet<String> {
    let (a, b) = (normalize(text), normalize(other));
    // d[i][j]: edits between a[i..] and b[j..].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..=a.len()).rev() {
        for j in (0..=b.len()).rev() {
            d[i][j] = if i == a.len() {
                b.len() - j
            } else if j == b.len() {
                a.len() - i
            } else if a[i] == b[j] {
                d[i + 1][j + 1]
            } else {
                1 + d[i + 1][j + 1].min(d[i + 1][j]).min(d[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = std::collections::BTreeSet::new();
    let (mut gone, mut came): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let mut flush = |gone: &mut Vec<&str>, came: &mut Vec<&str>| {
        if !gone.is_empty() || !came.is_empty() {
            out.insert(format!("{} -> {}", gone.join(" "), came.join(" ")));
            gone.clear();
            came.clear();
        }
    };
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] && d[i][j] == d[i + 1][j + 1] {
            flush(&mut gone, &mut came);
            i += 1;
            j += 1;
        } else if i < a.len() && j < b.len() && d[i][j] == 1 + d[i + 1][j + 1] {
            gone.push(&a[i]);
            came.push(&b[j]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || d[i][j] == 1 + d[i + 1][j]) {
            gone.push(&a[i]);
            i += 1;
        } else {
            came.push(&b[j]);
            j += 1;
        }
    }
    flush(&mut gone, &mut came);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_between_texts_are_counted_once_each() {
        let d = distinct_differences(
            "he was amiable and kind. he was amiable and kind.",
            "He was Amy Hable and kind. He was Amy Hable and kind!",
        );
        assert_eq!(d.into_iter().collect::<Vec<_>>(), ["amiable -> amy hable"]);
        let d = distinct_differences("a b c d e f", "a c d x f");
        assert_eq!(d.into_iter().collect::<Vec<_>>(), ["b -> ", "e -> x"]);
        assert!(distinct_differences("same words", "Same words.").is_empty());
    }

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
