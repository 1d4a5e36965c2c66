//! Text that leaves the module — error replies, simple strings, log lines, config values — is
//! printable ASCII. The server copies such text with C string functions (a NUL cuts it) and
//! writes it into the RESP stream (a CR or LF breaks the client's protocol), and the
//! `redis-module` crate panics on a NUL where it makes a C string. So every byte outside
//! 0x20..=0x7e is escaped as `\xNN`, and a user's bytes quoted in an error are also cut short.

use std::fmt::Write;

/// The most bytes of a user's argument an error quotes.
pub const QUOTE_MAX: usize = 40;

/// `text` with every byte outside printable ASCII escaped as `\xNN`.
pub fn legal(text: &str) -> String {
    escape(text.as_bytes())
}

/// A user's bytes for an error message: escaped, and cut after [`QUOTE_MAX`] bytes with `...`.
pub fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(QUOTE_MAX)];
    let mut out = escape(shown);
    if shown.len() < bytes.len() {
        out.push_str("...");
    }
    out
}

/// Whether `bytes` hold only printable ASCII.
pub fn is_legal(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x20..=0x7e).contains(b))
}

fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_printable_ascii_leaves() {
        assert_eq!(legal("plain text 1.5"), "plain text 1.5");
        assert_eq!(legal("\u{100}"), "\\xc4\\x80");
        assert_eq!(legal("a\0b\r\n"), "a\\x00b\\x0d\\x0a");
        assert!(is_legal(legal("\u{1F600}\t\x7f").as_bytes()));
        assert!(!is_legal(b"a\nb"));
    }

    #[test]
    fn quotes_are_escaped_and_cut() {
        assert_eq!(quote(b"\xc4\x80"), "\\xc4\\x80");
        let long = vec![b'x'; 1 << 20];
        let q = quote(&long);
        assert_eq!(q.len(), QUOTE_MAX + 3);
        assert!(q.ends_with("..."));
        assert_eq!(quote(b""), "");
    }
}
