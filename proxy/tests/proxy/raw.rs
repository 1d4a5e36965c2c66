//! A client that sends commands as RESP and keeps each reply as the bytes that came back, to
//! compare replies exactly (a parsed value would hide `$-1` against `*-1`, or a map against a
//! flat array).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One connection, RESP2 until a `HELLO 3`.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    resp3: bool,
}

impl Raw {
    pub fn connect(port: u16) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Raw {
            stream,
            buf: Vec::new(),
            resp3: false,
        }
    }

    /// Sends `args` and returns the one reply frame.
    pub fn call(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        if args
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case(b"hello"))
            && args.get(1).is_some_and(|v| *v == b"3")
        {
            self.resp3 = true;
        }
        self.frame()
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// The next frame from the server (a reply or a push).
    pub fn frame(&mut self) -> Vec<u8> {
        loop {
            let decoded = if self.resp3 {
                redis_protocol::resp3::decode::complete::decode(&self.buf)
                    .map(|o| o.map(|(_, n)| n))
            } else {
                redis_protocol::resp2::decode::decode(&self.buf).map(|o| o.map(|(_, n)| n))
            };
            match decoded {
                Ok(Some(n)) => return self.buf.drain(..n).collect(),
                Ok(None) => {}
                Err(e) => panic!("not RESP ({e:?}): {:?}", String::from_utf8_lossy(&self.buf)),
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(
                n > 0,
                "the connection closed; so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Everything until the peer closes the connection.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        let _ = self.stream.read_to_end(&mut out);
        out
    }
}

/// `args` as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}
