//! Whisper's failure mode on noise and long windows: the same phrase over and over. A phrase
//! of 1 to 8 words repeated four or more times in a row is kept once. Twice or three times
//! ("five five") is left alone: people do say that.

/// Consecutive repeats at which a phrase counts as a loop.
const MIN_REPEATS: usize = 4;
/// Longest phrase checked, in words.
const MAX_PHRASE: usize = 8;

fn norm(w: &str) -> String {
    w.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// `text` with every run of a phrase repeated [`MIN_REPEATS`] or more times kept once.
pub fn collapse_repeats(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = words.iter().map(|w| norm(w)).collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    let mut i = 0;
    'outer: while i < words.len() {
        for n in 1..=MAX_PHRASE.min((words.len() - i) / MIN_REPEATS) {
            let phrase = &keys[i..i + n];
            let mut reps = 1;
            while i + (reps + 1) * n <= words.len()
                && keys[i + reps * n..i + (reps + 1) * n] == *phrase
            {
                reps += 1;
            }
            if reps >= MIN_REPEATS {
                out.extend(&words[i..i + n]);
                i += reps * n;
                continue 'outer;
            }
        }
        out.push(words[i]);
        i += 1;
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_collapse_and_natural_repeats_stay() {
        assert_eq!(collapse_repeats("five five"), "five five");
        assert_eq!(collapse_repeats("no no no"), "no no no");
        assert_eq!(
            collapse_repeats("I see. Thank you. Thank you. Thank you. Thank you. Bye"),
            "I see. Thank you. Bye"
        );
        assert_eq!(collapse_repeats("la la la la la"), "la");
        assert_eq!(collapse_repeats(""), "");
    }
}
