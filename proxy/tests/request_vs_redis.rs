//! `hotkey_proxy::request::parse` against Redis itself: the same bytes sent to a real
//! redis-server must be read as the same requests, or refused with the same error.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use hotkey_proxy::request::{Limits, parse};
use hotkey_testkit::{Server, scaled};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redis_protocol::resp2::decode::decode_range;

/// The replies Redis gives to `input` (all `ECHO` requests): read up to the `+PONG` of a `PING`
/// sent after it, or to the end of the connection when Redis closes it. A close with the
/// `PING` unread resets the connection, which can lose the last replies: then `input` is sent
/// again alone, and read to the close.
fn redis_replies(server: &Server, input: &[u8]) -> Vec<Vec<u8>> {
    match replies_until_pong(server, input, true) {
        Ok(replies) => replies,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            replies_until_pong(server, input, false).unwrap()
        }
        Err(e) => panic!("{e}"),
    }
}

fn replies_until_pong(server: &Server, input: &[u8], ping: bool) -> std::io::Result<Vec<Vec<u8>>> {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    // Only a guard against a hang: every read below ends with a reply or the close.
    stream
        .set_read_timeout(Some(scaled(Duration::from_secs(10))))
        .unwrap();
    stream.write_all(input)?;
    if ping {
        stream.write_all(b"PING\r\n")?;
    }
    let mut buf = Vec::new();
    let mut replies = Vec::new();
    loop {
        while let Some((_, len)) = decode_range(&buf).unwrap() {
            let reply: Vec<u8> = buf.drain(..len).collect();
            if reply == b"+PONG\r\n" {
                return Ok(replies);
            }
            replies.push(reply);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(replies);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The replies Redis should give to `input` as the proxy's parser reads it.
fn expected_replies(input: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = BytesMut::from(input);
    let mut replies = Vec::new();
    loop {
        match parse(&mut buf, &Limits::default()) {
            Ok(Some(request)) => replies.push(match &request.args[..] {
                [_, arg] => {
                    let mut reply = format!("${}\r\n", arg.len()).into_bytes();
                    reply.extend_from_slice(arg);
                    reply.extend_from_slice(b"\r\n");
                    reply
                }
                _ => b"-ERR wrong number of arguments for 'echo' command\r\n".to_vec(),
            }),
            Ok(None) => return replies,
            Err(e) => {
                replies.push(e.to_reply().to_vec());
                return replies;
            }
        }
    }
}

fn show(replies: &[Vec<u8>]) -> Vec<String> {
    replies
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect()
}

#[test]
fn known_inputs_are_read_as_redis_reads_them() {
    let server = Server::builder().without_module().start();
    let cases: &[&[u8]] = &[
        b"ECHO \"a\\x41\\n\\r\\t\\b\\a\\q\"\r\n",
        b"ECHO 'b\\'c\\n'\r\n",
        b"ECHO \"\\xzz\"\r\n",
        b"ECHO a\"b c\"\r\n",
        b"ECHO \"a\"b\r\n",
        b"ECHO 'a\r\n",
        b"\r\n\n  ECHO x\n",
        b"*2\r\n$4\r\nECHO\r\n$3\r\na\r\n\r\n*0\r\n*-1\r\n",
        b"*2\r\n$4\r\nECHO\r\n+x\r\n",
        b"*2\r\n$4\r\nECHO\r\n$-1\r\n",
        b"*2\r\n$4\r\nECHO\r\n$01\r\nx\r\n",
        b"*01\r\n",
        b"*2147483648\r\n",
        b"*1\r\n\xff\r\n",
        b"*2\rx$4\r\nECHO\r\n$1\r\nxyz",
    ];
    for input in cases {
        assert_eq!(
            show(&redis_replies(&server, input)),
            show(&expected_replies(input)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn random_inline_lines_are_split_as_redis_splits_them() {
    let server = Server::builder().without_module().start();
    // Pieces rather than bytes, so that quotes and escapes often come whole.
    let pieces: &[&[u8]] = &[
        b"a",
        b"b",
        b" ",
        b"\t",
        b"\x0b",
        b"\"",
        b"'",
        b"\\",
        b"\\n",
        b"\\x41",
        b"\\xg1",
        b"\\'",
        b"\\\"",
        b"\"a b\"",
        b"'a\"b'",
        b"\"\\n\\t\\x7e\"",
        b"'\\n'",
    ];
    let line = prop::collection::vec(prop::sample::select(pieces), 0..8)
        .prop_map(|pieces| pieces.concat());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        ..Config::default()
    });
    runner
        .run(&line, |tail| {
            let mut input = b"ECHO ".to_vec();
            input.extend(tail);
            input.extend_from_slice(b"\r\n");
            prop_assert_eq!(
                show(&redis_replies(&server, &input)),
                show(&expected_replies(&input)),
                "{:?}",
                String::from_utf8_lossy(&input)
            );
            Ok(())
        })
        .unwrap();
}
