//! Numbers as the demo and the bench print them.

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate, rounded, with thousands separators.
pub fn rate(per_sec: f64) -> String {
    thousands(per_sec.max(0.0).round() as u64)
}

/// A fraction as a percentage with one decimal: `0.0123` → `1.2%`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// A small fraction with two decimals: `0.00012` → `0.01%`.
pub fn fine_percent(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(52_343.6), "52,344");
        assert_eq!(rate(-1.0), "0");
        assert_eq!(percent(0.0123), "1.2%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(fine_percent(0.00012), "0.01%");
    }
}
