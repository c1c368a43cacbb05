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
}
