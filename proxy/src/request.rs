//! Client requests off the wire: RESP arrays of bulk strings and inline commands, parsed the way
//! Redis 7.0 parses them (`processMultibulkBuffer`, `processInlineBuffer` and `sdssplitargs` in
//! its `networking.c` and `sds.c`), with its limits and its protocol error texts, so a client
//! of the proxy sees what the server would have said.
//!
//! [`parse`] is stateless: a partial request is looked at again from its start when more bytes
//! arrive. Only its headers are re-read (a bulk payload is skipped by its length), and nothing
//! is held but the caller's buffer, which the limits bound: a header announcing more than a
//! limit is an error at once, before its payload is sent.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// How large a request may be. The defaults are Redis 7.0's for an authenticated client (its
/// tighter limits before `AUTH`, 10 arguments of 16 KiB, are the upstream server's to apply).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk argument (`proto-max-bulk-len`, 512 MiB).
    pub max_bulk_len: usize,
    /// The most arguments in one request (Redis allows up to `INT_MAX`).
    pub max_multibulk_len: usize,
    /// How many bytes of an inline request, or of a `*<count>` / `$<len>` header, may wait for
    /// their line end (`PROTO_INLINE_MAX_SIZE`, 64 KiB). As in Redis, a longer line that
    /// arrives whole is taken.
    pub max_inline_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            max_inline_len: 64 * 1024,
        }
    }
}

/// One whole client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The arguments, the command name first (slices of one frozen buffer: no copy per arg).
    pub args: Vec<Bytes>,
    /// The request as RESP (an inline request re-encoded as an array), ready to forward.
    pub raw: Bytes,
}

/// A request Redis would refuse with a protocol error (and then close the connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// `*<count>` is not a number, or over the limit.
    InvalidMultibulkLength,
    /// `$<len>` is not a number, negative, or over the limit.
    InvalidBulkLength,
    /// An argument of an array does not start with `$`; the byte found instead.
    ExpectedBulk(u8),
    /// No line end within the inline limit.
    TooBigInline,
    /// No line end after `*` within the inline limit.
    TooBigMultibulkCount,
    /// No line end after `$` within the inline limit.
    TooBigBulkCount,
    /// An inline request whose quotes do not close (or a closing quote not followed by a space).
    UnbalancedQuotes,
}

impl ProtocolError {
    /// The error reply Redis sends, as a RESP frame: the text of [`Display`](fmt::Display),
    /// except that the byte of [`ProtocolError::ExpectedBulk`] goes out as it came (Redis
    /// prints it with `%c`; only a line end is turned into a space, to keep the frame whole).
    pub fn to_reply(&self) -> Bytes {
        let mut reply = BytesMut::new();
        reply.put_u8(b'-');
        match self {
            ProtocolError::ExpectedBulk(byte) => {
                reply.put_slice(b"ERR Protocol error: expected '$', got '");
                reply.put_u8(printable_in_reply(*byte));
                reply.put_slice(b"'");
            }
            other => reply.put_slice(other.to_string().as_bytes()),
        }
        reply.put_slice(b"\r\n");
        reply.freeze()
    }
}

/// Redis sends error replies with `\r` and `\n` replaced by spaces.
fn printable_in_reply(byte: u8) -> u8 {
    match byte {
        b'\r' | b'\n' => b' ',
        other => other,
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::ExpectedBulk(byte) => {
                let got = char::from(printable_in_reply(*byte));
                return write!(f, "ERR Protocol error: expected '$', got '{got}'");
            }
            ProtocolError::TooBigInline => "too big inline request",
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string",
            ProtocolError::TooBigBulkCount => "too big bulk count string",
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
        };
        write!(f, "ERR Protocol error: {what}")
    }
}

impl std::error::Error for ProtocolError {}

/// Take the next whole request off the front of `buf`. `Ok(None)`: no whole request yet (the
/// buffer keeps the partial one); empty inline lines and `*0` / `*-1` are consumed on the way,
/// as Redis ignores them. `Err`: the connection must be closed after sending
/// [`ProtocolError::to_reply`], as Redis does.
pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Request>, ProtocolError> {
    loop {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let parsed = if first == b'*' {
            parse_multibulk(buf, limits)?
        } else {
            parse_inline(buf, limits)?
        };
        match parsed {
            Parsed::Partial => return Ok(None),
            Parsed::Nothing => continue,
            Parsed::Request(request) => return Ok(Some(request)),
        }
    }
}

/// What one look at the front of the buffer found.
enum Parsed {
    /// Not enough bytes yet.
    Partial,
    /// A whole request with no arguments (consumed).
    Nothing,
    Request(Request),
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some((count, mut pos)) = header(buf, 0, limits, ProtocolError::TooBigMultibulkCount)?
    else {
        return Ok(Parsed::Partial);
    };
    let count = match count {
        Some(n) if n <= 0 => {
            buf.advance(pos);
            return Ok(Parsed::Nothing);
        }
        Some(n) if n as u64 <= limits.max_multibulk_len as u64 => n as usize,
        _ => return Err(ProtocolError::InvalidMultibulkLength),
    };
    // Ranges first, slices after the freeze: the buffer must not be split before the request
    // is known to be whole.
    let mut ranges = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Partial);
        }
        let Some((len, start)) = header(buf, pos, limits, ProtocolError::TooBigBulkCount)? else {
            return Ok(Parsed::Partial);
        };
        if buf[pos] != b'$' {
            return Err(ProtocolError::ExpectedBulk(buf[pos]));
        }
        let len = match len {
            Some(n) if n >= 0 && n as u64 <= limits.max_bulk_len as u64 => n as usize,
            _ => return Err(ProtocolError::InvalidBulkLength),
        };
        // Like Redis, the two bytes after the payload are skipped, not checked: the server
        // the request is forwarded to reads them the same way.
        let end = start + len;
        if buf.len() < end + 2 {
            return Ok(Parsed::Partial);
        }
        ranges.push(start..end);
        pos = end + 2;
    }
    let raw = buf.split_to(pos).freeze();
    let args = ranges.into_iter().map(|r| raw.slice(r)).collect();
    Ok(Parsed::Request(Request { args, raw }))
}

/// The number after the type byte at `buf[pos]`, up to its `\r` (Redis skips the byte after
/// the `\r` without looking at it), and where the next line starts. `Ok(None)`: the line is not
/// whole yet; `too_big` when it already exceeds the inline limit. The number is `None` when it
/// is not one Redis's `string2ll` accepts.
fn header(
    buf: &[u8],
    pos: usize,
    limits: &Limits,
    too_big: ProtocolError,
) -> Result<Option<(Option<i64>, usize)>, ProtocolError> {
    let rest = &buf[pos..];
    let Some(cr) = find_in_c_string(rest, b'\r') else {
        if rest.len() > limits.max_inline_len {
            return Err(too_big);
        }
        return Ok(None);
    };
    if cr + 2 > rest.len() {
        return Ok(None);
    }
    Ok(Some((string_to_i64(&rest[1..cr]), pos + cr + 2)))
}

/// Where `byte` is in `bytes`, searched the way Redis's `strchr` on its query buffer does: a NUL
/// byte ends the search, so a header or inline line with a NUL in it never ends (until it is
/// too big), exactly as with Redis.
fn find_in_c_string(bytes: &[u8], byte: u8) -> Option<usize> {
    bytes
        .iter()
        .position(|&b| b == byte || b == 0)
        .filter(|&i| bytes[i] == byte)
}

/// Redis's `string2ll`: an optional `-`, then digits with no leading zero (or a lone `0`), no
/// sign `+`, no spaces, no overflow.
fn string_to_i64(digits: &[u8]) -> Option<i64> {
    let (negative, magnitude) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    match magnitude {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut value: i64 = 0;
    for &d in magnitude {
        if !d.is_ascii_digit() {
            return None;
        }
        let digit = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(digit)?
        } else {
            value.checked_add(digit)?
        };
    }
    Some(value)
}

fn parse_inline(buf: &mut BytesMut, limits: &Limits) -> Result<Parsed, ProtocolError> {
    let Some(newline) = find_in_c_string(buf, b'\n') else {
        if buf.len() > limits.max_inline_len {
            return Err(ProtocolError::TooBigInline);
        }
        return Ok(Parsed::Partial);
    };
    let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
        newline - 1
    } else {
        newline
    };
    let args = split_args(&buf[..line_end])?;
    buf.advance(newline + 1);
    if args.is_empty() {
        return Ok(Parsed::Nothing);
    }
    Ok(Parsed::Request(encode(&args)))
}

/// An inline request as a RESP array, its arguments sliced out of the encoding.
fn encode(args: &[Vec<u8>]) -> Request {
    let mut raw = BytesMut::with_capacity(args.iter().map(|a| a.len() + 16).sum::<usize>() + 16);
    raw.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    let mut ranges = Vec::with_capacity(args.len());
    for arg in args {
        raw.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        ranges.push(raw.len()..raw.len() + arg.len());
        raw.put_slice(arg);
        raw.put_slice(b"\r\n");
    }
    let raw = raw.freeze();
    let args = ranges.into_iter().map(|r| raw.slice(r)).collect();
    Request { args, raw }
}

/// C's `isspace`, which `sdssplitargs` skips between arguments.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The inline arguments of one line, by `sdssplitargs`'s rules: arguments are separated by
/// spaces; `"..."` takes `\xHH` and `\n \r \t \b \a` escapes (any other escaped byte stands
/// for itself); `'...'` takes only `\'`; a quote may open inside an argument, but a closing
/// quote must be followed by a space or the end of the line.
fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        let mut quote = None;
        loop {
            let at = |i: usize| line.get(i).copied();
            match (quote, at(p)) {
                (Some(_), None) => return Err(ProtocolError::UnbalancedQuotes),
                (None, None) => break,
                (Some(b'"'), Some(b'\\')) => {
                    let hex = (at(p + 1), at(p + 2), at(p + 3));
                    if let (Some(b'x'), Some(hi), Some(lo)) = hex
                        && let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo))
                    {
                        arg.push(hi * 16 + lo);
                        p += 3;
                    } else if let Some(escaped) = at(p + 1) {
                        arg.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        p += 1;
                    } else {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                }
                (Some(b'\''), Some(b'\\')) if at(p + 1) == Some(b'\'') => {
                    arg.push(b'\'');
                    p += 1;
                }
                (Some(q), Some(b)) if b == q => {
                    if at(p + 1).is_some_and(|next| !is_space(next)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    p += 1;
                    break;
                }
                (Some(_), Some(b)) => arg.push(b),
                (None, Some(b' ' | b'\n' | b'\r' | b'\t')) => break,
                (None, Some(q @ (b'"' | b'\''))) => quote = Some(q),
                (None, Some(b)) => arg.push(b),
            }
            p += 1;
        }
        args.push(arg);
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests;
