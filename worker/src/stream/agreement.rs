//! LocalAgreement-2 on tokens: of two consecutive hypotheses for the same growing window, the
//! tokens they share from the start, cut back to a word boundary, are stable. Provisional passes
//! feed the stable tokens as a forced prefix, so stable text only grows within a window.

/// Length of the longest common prefix of `a` and `b`.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// How many leading tokens of `current` are stable given the `previous` hypothesis and the
/// tokens already stable (`stable`, a prefix of both). A cut is a word boundary when the token
/// after it starts a word in both hypotheses, or when both hypotheses end there.
pub fn stable_len(
    previous: &[u32],
    current: &[u32],
    stable: usize,
    starts_word: impl Fn(u32) -> bool,
) -> usize {
    let mut n = common_prefix(previous, current);
    let boundary = |n: usize| match (previous.get(n), current.get(n)) {
        (None, None) => true,
        (Some(&p), Some(&c)) => starts_word(p) && starts_word(c),
        _ => false,
    };
    while n > stable && !boundary(n) {
        n -= 1;
    }
    n.max(stable.min(current.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens >= 100 start a word (a leading space), the others continue one.
    fn word(t: u32) -> bool {
        t >= 100
    }

    #[test]
    fn the_agreed_prefix_up_to_a_word_boundary_is_stable() {
        // "He was not an ill-disposed" vs "He was not an ill young": agree through "ill", but
        // in the first hypothesis "ill" goes on ("-disposed"): stable ends before it.
        let a = [100, 101, 102, 103, 104, 5, 6];
        let b = [100, 101, 102, 103, 104, 105];
        assert_eq!(common_prefix(&a, &b), 5);
        assert_eq!(stable_len(&a, &b, 0, word), 4);
        // Both go on with a new word after "ill": "ill" is stable.
        let c = [100, 101, 102, 103, 104, 106];
        assert_eq!(stable_len(&b, &c, 0, word), 5);
        // Identical hypotheses agree entirely.
        assert_eq!(stable_len(&b, &b, 0, word), 6);
        assert_eq!(stable_len(&[], &[100], 0, word), 0);
    }

    #[test]
    fn stable_tokens_are_never_retracted() {
        // A previous hypothesis that disagrees early (a speculative pass, decoded freely) does
        // not shrink what was already stable.
        let prev = [100, 9, 9];
        let cur = [100, 101, 102, 103];
        assert_eq!(stable_len(&prev, &cur, 3, word), 3);
        // But never beyond the current hypothesis.
        assert_eq!(stable_len(&prev, &[100], 3, word), 1);
    }
}
