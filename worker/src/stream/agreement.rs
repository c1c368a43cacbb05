//! LocalAgreement-2: of two consecutive hypotheses for the same audio, the words they agree on
//! from the start are stable; the rest is tentative and may still change.

fn key(w: &str) -> String {
    w.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// Number of leading words `a` and `b` share (ignoring case and punctuation).
pub fn common_prefix_words(a: &str, b: &str) -> usize {
    a.split_whitespace()
        .zip(b.split_whitespace())
        .take_while(|(x, y)| key(x) == key(y))
        .count()
}

/// Splits `current` into (stable, tentative) given the previous hypothesis.
pub fn split_stable(previous: &str, current: &str) -> (String, String) {
    let n = common_prefix_words(previous, current);
    let words: Vec<&str> = current.split_whitespace().collect();
    (words[..n].join(" "), words[n..].join(" "))
}

/// LocalAgreement-2 with memory: words once stable stay stable within a segment. Given the
/// stable words so far, the previous and the current hypothesis, returns the new stable text
/// and the tentative rest. A hypothesis that contradicts stable words does not retract them;
/// its words beyond them are shown as tentative.
pub fn advance_stable(stable: &str, previous: &str, current: &str) -> (String, String) {
    let kept = stable.split_whitespace().count();
    let (agreed, _) = split_stable(previous, current);
    let words: Vec<&str> = current.split_whitespace().collect();
    let consistent = common_prefix_words(stable, current) == kept;
    if consistent && agreed.split_whitespace().count() >= kept {
        let n = agreed.split_whitespace().count();
        return (words[..n].join(" "), words[n..].join(" "));
    }
    let rest = words.get(kept.min(words.len())..).unwrap_or(&[]).join(" ");
    (stable.to_string(), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreed_prefix_is_stable() {
        assert_eq!(
            split_stable("He was not an", "He was not an ill disposed"),
            ("He was not an".into(), "ill disposed".into())
        );
        assert_eq!(
            split_stable("He was nod", "He was not an"),
            ("He was".into(), "not an".into())
        );
        assert_eq!(split_stable("", "Hello"), ("".into(), "Hello".into()));
        assert_eq!(common_prefix_words("Hello, world.", "hello world and"), 2);
    }

    #[test]
    fn stable_words_are_never_retracted() {
        // Agreement grows the stable part.
        assert_eq!(
            advance_stable("He was", "He was not an", "He was not an ill"),
            ("He was not an".into(), "ill".into())
        );
        // A pass that contradicts it keeps it, and shows its own words after it.
        assert_eq!(
            advance_stable("He was not", "He was not an", "He wasn't an ill"),
            ("He was not".into(), "ill".into())
        );
        // Less agreement than before does not shrink it.
        assert_eq!(
            advance_stable("He was not", "He was not an", "He was not a pill"),
            ("He was not".into(), "a pill".into())
        );
    }
}
