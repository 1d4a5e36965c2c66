//! The commands that set up a new connection, sent in one pipeline before it is used; the
//! first error reply fails the connect with the server's own text.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::frames::{Frames, READ_SIZE};
use super::{Endpoint, Protocol, UpstreamError};

/// Each command of the handshake, with the name an error gives it.
fn commands(endpoint: &Endpoint) -> Vec<(&'static str, Vec<&[u8]>)> {
    let user = endpoint.user.as_deref().unwrap_or("default").as_bytes();
    let mut commands = Vec::new();
    match (endpoint.protocol, &endpoint.password) {
        (Protocol::Resp3, Some(password)) => commands.push((
            "HELLO 3 AUTH",
            vec![&b"HELLO"[..], b"3", b"AUTH", user, password.as_bytes()],
        )),
        (Protocol::Resp3, None) => commands.push(("HELLO 3", vec![&b"HELLO"[..], b"3"])),
        (Protocol::Resp2, Some(password)) => match &endpoint.user {
            Some(_) => commands.push(("AUTH", vec![&b"AUTH"[..], user, password.as_bytes()])),
            None => commands.push(("AUTH", vec![&b"AUTH"[..], password.as_bytes()])),
        },
        (Protocol::Resp2, None) => {}
    }
    commands
}

fn encode(args: &[&[u8]], out: &mut BytesMut) {
    out.put_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        out.put_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Send the handshake of `endpoint` and check every reply.
pub(super) async fn run(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    frames: &mut Frames,
    endpoint: &Endpoint,
) -> Result<(), UpstreamError> {
    let addr = endpoint.address();
    let db = endpoint.db.to_string();
    let redirect = endpoint.tracking_redirect.map(|id| id.to_string());
    let mut commands = commands(endpoint);
    if endpoint.db != 0 {
        commands.push(("SELECT", vec![&b"SELECT"[..], db.as_bytes()]));
    }
    if endpoint.readonly {
        commands.push(("READONLY", vec![&b"READONLY"[..]]));
    }
    if let Some(id) = &redirect {
        commands.push((
            "CLIENT TRACKING",
            vec![
                &b"CLIENT"[..],
                b"TRACKING",
                b"ON",
                b"REDIRECT",
                id.as_bytes(),
            ],
        ));
    }
    if let Some(name) = &endpoint.client_name {
        commands.push((
            "CLIENT SETNAME",
            vec![&b"CLIENT"[..], b"SETNAME", name.as_bytes()],
        ));
    }
    if commands.is_empty() {
        return Ok(());
    }
    let mut out = BytesMut::new();
    for (_, args) in &commands {
        encode(args, &mut out);
    }
    let sent = async {
        stream.write_all(&out).await?;
        stream.flush().await
    };
    sent.await.map_err(|e| UpstreamError::io(&addr, e))?;

    let mut first_error = None;
    let mut replies = 0;
    while replies < commands.len() {
        let frame = match frames.next() {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                frames.buf.reserve(READ_SIZE);
                let n = stream
                    .read_buf(&mut frames.buf)
                    .await
                    .map_err(|e| UpstreamError::io(&addr, e))?;
                if n == 0 {
                    return Err(UpstreamError::Closed { addr });
                }
                continue;
            }
            Err(detail) => return Err(UpstreamError::Protocol { addr, detail }),
        };
        if frame.push {
            super::push(&endpoint.pushes, frame.bytes, &addr);
            continue;
        }
        if first_error.is_none()
            && let Some(text) = error_text(&frame.bytes)
        {
            first_error = Some(UpstreamError::Handshake {
                addr: addr.clone(),
                command: commands[replies].0,
                reply: text,
            });
        }
        replies += 1;
    }
    first_error.map_or(Ok(()), Err)
}

/// The text of an error reply (`-TEXT` or RESP3's `!len` blob error), `None` for any other
/// frame.
fn error_text(frame: &[u8]) -> Option<String> {
    let body = frame.strip_suffix(b"\r\n")?;
    let text = match body.first()? {
        b'-' => &body[1..],
        b'!' => {
            let header_end = body.iter().position(|&b| b == b'\n')?;
            &body[header_end + 1..]
        }
        _ => return None,
    };
    Some(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[test]
    fn error_replies_give_their_text_and_others_none() {
        assert_eq!(
            error_text(b"-WRONGPASS invalid\r\n").as_deref(),
            Some("WRONGPASS invalid")
        );
        assert_eq!(error_text(b"!5\r\nERR x\r\n").as_deref(), Some("ERR x"));
        assert_eq!(error_text(b"+OK\r\n"), None);
        assert_eq!(error_text(b"%1\r\n+a\r\n:1\r\n"), None);
    }
}
