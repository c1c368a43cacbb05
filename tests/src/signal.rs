//! Comparing captured audio with its source.

/// Normalised correlation of `a` and `b` over their common length (1.0: the same shape).
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    let dot: f64 = (0..n).map(|i| a[i] as f64 * b[i] as f64).sum();
    let na: f64 = a[..n].iter().map(|x| (*x as f64).powi(2)).sum();
    let nb: f64 = b[..n].iter().map(|x| (*x as f64).powi(2)).sum();
    dot / (na.sqrt() * nb.sqrt())
}
