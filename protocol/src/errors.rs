//! What an error reply's code (its first word: `LOADING`, `MOVED`, …) means to a router: the
//! one list the Rust router (from `redis::RedisError::code`) and the proxy (from the raw reply)
//! both read.

/// Codes of replies that say the node cannot serve now, rather than answering the command: a
/// replica loading its data set, a replica whose master link is down (`replica-serve-stale-data
/// no`), a cluster asking to try again. A hot read that gets one is served elsewhere.
pub const UNAVAILABLE: [&str; 3] = ["LOADING", "MASTERDOWN", "TRYAGAIN"];

/// True when `code` is one of [`UNAVAILABLE`].
pub fn is_unavailable(code: &[u8]) -> bool {
    UNAVAILABLE.iter().any(|c| c.as_bytes() == code)
}

/// The code of a raw RESP error reply (`-LOADING …\r\n`, or a RESP3 blob error
/// `!<len>\r\nCODE …\r\n`), if `reply` is one.
pub fn error_code(reply: &[u8]) -> Option<&[u8]> {
    let text = match reply.first()? {
        b'-' => &reply[1..],
        b'!' => {
            let start = reply.iter().position(|&b| b == b'\n')? + 1;
            reply.get(start..)?
        }
        _ => return None,
    };
    let end = text
        .iter()
        .position(|&b| b == b' ' || b == b'\r')
        .unwrap_or(text.len());
    Some(&text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_read_from_simple_and_blob_errors() {
        assert_eq!(
            error_code(b"-LOADING Redis is loading\r\n"),
            Some(&b"LOADING"[..])
        );
        assert_eq!(error_code(b"-ERR\r\n"), Some(&b"ERR"[..]));
        assert_eq!(
            error_code(b"!21\r\nMASTERDOWN Link down\r\n"),
            Some(&b"MASTERDOWN"[..])
        );
        assert_eq!(error_code(b"+OK\r\n"), None);
        assert_eq!(error_code(b"$-1\r\n"), None);
        assert_eq!(error_code(b""), None);
    }

    #[test]
    fn only_the_listed_codes_are_unavailable() {
        for code in UNAVAILABLE {
            assert!(is_unavailable(code.as_bytes()));
        }
        assert!(!is_unavailable(b"WRONGTYPE"));
        assert!(!is_unavailable(b"ERR"));
    }
}
