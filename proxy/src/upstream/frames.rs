//! Whole frames off a server's byte stream, split without copying.
//!
//! `redis-protocol` says where a frame ends. Its RESP2 and RESP3 decoders disagree only where
//! one of them fails: RESP3's takes `$-1` / `*-1` (RESP2's nulls) for streamed frames, RESP2's
//! knows no `%`, `_`, `>`… So a frame the decoder of the current protocol refuses is tried with
//! the other, which becomes current: a tunnel whose client sends `HELLO 3` (or `HELLO 2`)
//! follows the switch without reading the client's commands.

use bytes::{Bytes, BytesMut};
use redis_protocol::resp2::decode as resp2;
use redis_protocol::resp3::decode::complete as resp3;
use redis_protocol::resp3::types::RangeFrame;

use super::Protocol;

/// The least free space worth a read; below it the buffer grows by [`READ_SIZE`].
pub(super) const MIN_READ: usize = 16 * 1024;
pub(super) const READ_SIZE: usize = 64 * 1024;

/// One frame as the server sent it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) bytes: Bytes,
    /// A RESP3 push (`>`): not a reply to any request.
    pub(super) push: bool,
}

/// The read buffer of a connection and the protocol its frames are in.
pub(super) struct Frames {
    pub(super) buf: BytesMut,
    protocol: Protocol,
}

impl Frames {
    pub(super) fn new(protocol: Protocol) -> Frames {
        Frames {
            buf: BytesMut::with_capacity(READ_SIZE),
            protocol,
        }
    }

    /// The next whole frame, split off the buffer; `Ok(None)` until one is whole. `Err`: the
    /// bytes are RESP in neither version (the decoder's words).
    pub(super) fn next(&mut self) -> Result<Option<Frame>, String> {
        let found = match frame_end(&self.buf, self.protocol) {
            Ok(found) => found,
            Err(refused) => {
                let other = match self.protocol {
                    Protocol::Resp2 => Protocol::Resp3,
                    Protocol::Resp3 => Protocol::Resp2,
                };
                let found = frame_end(&self.buf, other).map_err(|_| refused)?;
                self.protocol = other;
                found
            }
        };
        Ok(found.map(|(len, push)| Frame {
            bytes: self.buf.split_to(len).freeze(),
            push,
        }))
    }
}

/// The length of the whole frame at the front of `buf`, in `protocol` or else the other.
pub(super) fn frame_length(buf: &[u8], protocol: Protocol) -> Option<usize> {
    let other = match protocol {
        Protocol::Resp2 => Protocol::Resp3,
        Protocol::Resp3 => Protocol::Resp2,
    };
    match frame_end(buf, protocol) {
        Ok(found) => found.map(|(len, _)| len),
        Err(_) => frame_end(buf, other).ok().flatten().map(|(len, _)| len),
    }
}

/// The length of the frame at the front of `buf` and whether it is a push.
fn frame_end(buf: &[u8], protocol: Protocol) -> Result<Option<(usize, bool)>, String> {
    match protocol {
        Protocol::Resp2 => resp2::decode_range(buf)
            .map(|found| found.map(|(_, len)| (len, false)))
            .map_err(|e| e.to_string()),
        Protocol::Resp3 => resp3::decode_range(buf)
            .map(|found| found.map(|(frame, len)| (len, matches!(frame, RangeFrame::Push { .. }))))
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(protocol: Protocol, input: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut frames = Frames::new(protocol);
        frames.buf.extend_from_slice(input);
        let mut out = Vec::new();
        while let Some(frame) = frames.next().unwrap() {
            out.push((frame.bytes.to_vec(), frame.push));
        }
        assert!(frames.buf.is_empty(), "left: {:?}", frames.buf);
        out
    }

    #[test]
    fn resp2_frames_with_nulls_are_split_whole() {
        let input = b"+OK\r\n*3\r\n$-1\r\n:1\r\n$2\r\n\r\n\r\n*-1\r\n-ERR x\r\n";
        let frames = split(Protocol::Resp2, input);
        assert_eq!(
            frames,
            vec![
                (b"+OK\r\n".to_vec(), false),
                (b"*3\r\n$-1\r\n:1\r\n$2\r\n\r\n\r\n".to_vec(), false),
                (b"*-1\r\n".to_vec(), false),
                (b"-ERR x\r\n".to_vec(), false),
            ]
        );
    }

    #[test]
    fn resp3_maps_nulls_and_pushes_are_told_apart() {
        let input = b"%1\r\n+a\r\n_\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n#t\r\n";
        let frames = split(Protocol::Resp3, input);
        assert_eq!(
            frames,
            vec![
                (b"%1\r\n+a\r\n_\r\n".to_vec(), false),
                (
                    b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n".to_vec(),
                    true
                ),
                (b"#t\r\n".to_vec(), false),
            ]
        );
    }

    #[test]
    fn a_switch_of_protocol_mid_stream_is_followed() {
        let frames = split(Protocol::Resp2, b"$-1\r\n%1\r\n+a\r\n_\r\n*1\r\n$-1\r\n");
        assert_eq!(frames.len(), 3);
    }

    #[test]
    fn a_partial_frame_waits_and_stays_in_the_buffer() {
        let mut frames = Frames::new(Protocol::Resp3);
        frames.buf.extend_from_slice(b"$5\r\nhel");
        assert_eq!(frames.next(), Ok(None));
        assert_eq!(&frames.buf[..], b"$5\r\nhel");
        frames.buf.extend_from_slice(b"lo\r\n");
        assert_eq!(
            frames.next().unwrap().unwrap().bytes,
            &b"$5\r\nhello\r\n"[..]
        );
    }

    #[test]
    fn bytes_that_are_not_resp_are_an_error() {
        let mut frames = Frames::new(Protocol::Resp2);
        frames.buf.extend_from_slice(b"hello\r\n");
        assert!(frames.next().is_err());
    }
}
