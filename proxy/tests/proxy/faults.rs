//! Bad input and faults: none of them crashes the proxy or disturbs other clients.

use hotkey_testkit::{check, wait_until};

use crate::common::{Proxy, WAIT, master, signal};
use crate::raw::Raw;

#[test]
fn malformed_resp_gets_the_servers_protocol_error_and_the_connection_closes() {
    let master = master(&[]);
    let proxy = Proxy::start(&master, &[]);
    let mut other = proxy.conn();
    for (bad, error) in [
        (
            &b"*1\r\n$x\r\n"[..],
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*x\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n+GET\r\n",
            "-ERR Protocol error: expected '$', got '+'\r\n",
        ),
        (
            b"GET \"k\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut raw = Raw::connect(proxy.port);
        raw.send(bad);
        let rest = raw.rest();
        assert_eq!(String::from_utf8_lossy(&rest), error, "{bad:?}");
        let pong: String = redis::cmd("PING").query(&mut other).expect("PING");
        assert_eq!(pong, "PONG", "another client goes on");
    }
    // A bulk over the limit is refused at its header, before its payload is sent.
    let limited = Proxy::start(&master, &["--max-bulk-len", "1kb"]);
    let mut raw = Raw::connect(limited.port);
    raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n");
    assert_eq!(
        String::from_utf8_lossy(&raw.rest()),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
}

#[test]
fn sigterm_answers_the_requests_in_flight_then_exits() {
    let master = master(&[]);
    let mut proxy = Proxy::start(&master, &[]);
    let mut raw = Raw::connect(proxy.port);
    raw.send(&crate::raw::encode(&[b"BLPOP", b"empty", b"1"]));
    wait_until("the BLPOP blocks on the server", WAIT, || {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query(&mut master.conn())
            .expect("INFO");
        check(info.contains("blocked_clients:1"), || info)
    });
    signal(proxy.pid(), "TERM");
    // The blocked command still gets its reply (a null array when it times out)...
    assert_eq!(raw.frame(), b"*-1\r\n");
    // ... and the proxy exits cleanly once nothing is in flight.
    let status = proxy.terminate();
    assert!(status.success(), "{status}:\n{}", proxy.log_text());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", proxy.port)).is_err(),
        "no longer listening"
    );
}
