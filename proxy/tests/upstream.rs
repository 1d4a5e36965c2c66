//! `hotkey_proxy::upstream` against real redis-server processes (no module needed).

use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use hotkey_proxy::lanes::Lanes;
use hotkey_proxy::upstream::{Connection, Endpoint, Protocol, Tunnel, UpstreamError};
use hotkey_testkit::{Server, WAIT, scaled, wait_until_async};
use tokio::sync::mpsc;

const CONNECT: Duration = Duration::from_secs(5);

fn plain_server() -> Server {
    Server::builder().without_module().start()
}

fn endpoint(server: &Server) -> Endpoint {
    Endpoint::new("127.0.0.1", server.port)
}

fn cmd(args: &[&[u8]]) -> Bytes {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n", arg.len()).into_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out.into()
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

async fn connect(endpoint: &Endpoint) -> Connection {
    Connection::connect(endpoint, scaled(CONNECT))
        .await
        .unwrap()
}

/// Send SIGSTOP or SIGCONT to `pid`.
fn signal(name: &str, pid: u32) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_from_several_tasks_get_their_own_replies() {
    let server = plain_server();
    let conn = connect(&endpoint(&server)).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let mut replies = Vec::new();
            for i in 0..200 {
                let key = format!("k{task}:{i}");
                let value = format!("v{task}:{i}");
                let set = conn.request(cmd(&[b"SET", key.as_bytes(), value.as_bytes()]), None);
                let get = conn.request(cmd(&[b"GET", key.as_bytes()]), None);
                replies.push((set, get, value));
            }
            for (set, get, value) in replies {
                assert_eq!(&set.await.unwrap()[..], b"+OK\r\n");
                assert_eq!(get.await.unwrap().to_vec(), bulk(value.as_bytes()));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn binary_values_come_back_byte_for_byte() {
    let server = plain_server();
    let conn = connect(&endpoint(&server)).await;
    let key: &[u8] = b"k\r\n\0\xff";
    let value: &[u8] = b"\r\n$3\r\n\0\x80*1\r\n";
    let set = conn
        .request(cmd(&[b"SET", key, value]), None)
        .await
        .unwrap();
    assert_eq!(&set[..], b"+OK\r\n");
    let got = conn.request(cmd(&[b"GET", key]), None).await.unwrap();
    assert_eq!(got.to_vec(), bulk(value));
}

#[tokio::test]
async fn a_large_reply_split_across_reads_is_one_frame() {
    let server = plain_server();
    let conn = connect(&endpoint(&server)).await;
    let value: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let set = conn.request(cmd(&[b"SET", b"big", &value]), None);
    let get = conn.request(cmd(&[b"GET", b"big"]), None);
    let ping = conn.request(cmd(&[b"PING"]), None);
    assert_eq!(&set.await.unwrap()[..], b"+OK\r\n");
    assert_eq!(get.await.unwrap().to_vec(), bulk(&value));
    assert_eq!(&ping.await.unwrap()[..], b"+PONG\r\n");
}

#[tokio::test]
async fn a_resp3_connection_gets_maps_and_nulls() {
    let server = plain_server();
    let mut endpoint = endpoint(&server);
    endpoint.protocol = Protocol::Resp3;
    let conn = connect(&endpoint).await;
    conn.request(cmd(&[b"HSET", b"h", b"f", b"v"]), None)
        .await
        .unwrap();
    let map = conn.request(cmd(&[b"HGETALL", b"h"]), None).await.unwrap();
    assert_eq!(&map[..], b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    let null = conn
        .request(cmd(&[b"GET", b"missing"]), None)
        .await
        .unwrap();
    assert_eq!(&null[..], b"_\r\n");
}

#[tokio::test]
async fn a_tracking_push_goes_to_the_sink_not_to_a_request() {
    let server = plain_server();
    let (sink, mut pushes) = mpsc::unbounded_channel();
    let mut endpoint = endpoint(&server);
    endpoint.protocol = Protocol::Resp3;
    endpoint.pushes = Some(sink);
    let conn = connect(&endpoint).await;
    let on = conn
        .request(cmd(&[b"CLIENT", b"TRACKING", b"ON"]), None)
        .await
        .unwrap();
    assert_eq!(&on[..], b"+OK\r\n");
    conn.request(cmd(&[b"GET", b"tracked"]), None)
        .await
        .unwrap();

    let mut other = server.conn();
    let () = redis::cmd("SET")
        .arg("tracked")
        .arg("1")
        .query(&mut other)
        .unwrap();

    let push = wait_until_async("the invalidation push", WAIT, || {
        let push = pushes.try_recv();
        async move { push }
    })
    .await;
    assert_eq!(
        &push[..],
        b">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n"
    );
    let pong = conn.request(cmd(&[b"PING"]), None).await.unwrap();
    assert_eq!(&pong[..], b"+PONG\r\n");
}

/// A server with the ACL user `alice` (password `secret`).
fn server_with_alice() -> Server {
    let server = plain_server();
    let mut conn = server.conn();
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "alice", "on", ">secret", "~*", "+@all"])
        .query(&mut conn)
        .unwrap();
    server
}

#[tokio::test]
async fn an_acl_user_is_authenticated_in_either_protocol() {
    let server = server_with_alice();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let mut endpoint = endpoint(&server);
        endpoint.user = Some("alice".into());
        endpoint.password = Some("secret".into());
        endpoint.protocol = protocol;
        let conn = connect(&endpoint).await;
        let who = conn.request(cmd(&[b"ACL", b"WHOAMI"]), None).await.unwrap();
        assert_eq!(&who[..], b"$5\r\nalice\r\n", "{protocol:?}");
    }
}

#[tokio::test]
async fn a_wrong_password_fails_the_connect_with_the_servers_words() {
    let server = server_with_alice();
    for protocol in [Protocol::Resp2, Protocol::Resp3] {
        let mut endpoint = endpoint(&server);
        endpoint.user = Some("alice".into());
        endpoint.password = Some("wrong".into());
        endpoint.protocol = protocol;
        let Err(e) = Connection::connect(&endpoint, scaled(CONNECT)).await else {
            panic!("a wrong password connected ({protocol:?})");
        };
        assert!(matches!(e, UpstreamError::Handshake { .. }), "{e}");
        assert_eq!(
            e.reply_text(),
            "WRONGPASS invalid username-password pair or user is disabled."
        );
    }
}

#[tokio::test]
async fn the_handshake_selects_the_db_and_names_the_client() {
    let server = Server::builder()
        .without_module()
        .server_args(&["--databases", "4"])
        .start();
    let mut endpoint = endpoint(&server);
    endpoint.db = 3;
    endpoint.client_name = Some("hotkey-proxy".into());
    let conn = connect(&endpoint).await;
    conn.request(cmd(&[b"SET", b"k", b"in-3"]), None)
        .await
        .unwrap();
    let name = conn
        .request(cmd(&[b"CLIENT", b"GETNAME"]), None)
        .await
        .unwrap();
    assert_eq!(&name[..], b"$12\r\nhotkey-proxy\r\n");
    let value: Option<String> = redis::cmd("GET")
        .arg("k")
        .query(&mut server.conn_db(3))
        .unwrap();
    assert_eq!(value.as_deref(), Some("in-3"));

    endpoint.db = 9;
    let Err(e) = Connection::connect(&endpoint, scaled(CONNECT)).await else {
        panic!("SELECT 9 of 4 databases succeeded");
    };
    assert_eq!(e.reply_text(), "ERR DB index is out of range");
}

#[tokio::test]
async fn a_killed_server_fails_the_pending_requests() {
    let mut server = plain_server();
    let conn = connect(&endpoint(&server)).await;
    let blocked = conn.request(cmd(&[b"BLPOP", b"nothing", b"0"]), None);
    let behind = conn.request(cmd(&[b"PING"]), None);
    server.kill();
    let e = blocked.await.unwrap_err();
    assert!(
        matches!(e, UpstreamError::Closed { .. } | UpstreamError::Io { .. }),
        "{e}"
    );
    assert!(behind.await.is_err());
    assert!(conn.is_broken());
    assert!(conn.request(cmd(&[b"PING"]), None).await.is_err());
}

#[tokio::test]
async fn a_stopped_server_hits_the_timeout_and_breaks_the_connection() {
    let server = plain_server();
    let conn = connect(&endpoint(&server)).await;
    signal("STOP", server.pid());
    let waiting = conn.request(cmd(&[b"PING"]), None);
    let timed = conn
        .request(cmd(&[b"PING"]), Some(Duration::from_millis(200)))
        .await;
    signal("CONT", server.pid());
    let e = timed.unwrap_err();
    assert!(matches!(e, UpstreamError::Timeout { .. }), "{e}");
    assert!(
        e.reply_text().contains("no reply within 200ms"),
        "{}",
        e.reply_text()
    );
    let e = waiting.await.unwrap_err();
    assert!(matches!(e, UpstreamError::Timeout { .. }), "{e}");
    assert!(conn.is_broken());
}

#[tokio::test]
async fn lanes_reconnect_after_a_restart_and_fail_fast_while_down() {
    let mut server = plain_server();
    let port = server.port;
    let lanes = Lanes::new(endpoint(&server), 2, scaled(CONNECT));
    let pong = lanes.request(0, cmd(&[b"PING"]), None).await.unwrap();
    assert_eq!(&pong[..], b"+PONG\r\n");
    assert!(
        lanes.request(2, cmd(&[b"PING"]), None).await.is_ok(),
        "lane 2 is lane 0"
    );

    server.kill();
    assert!(lanes.request(0, cmd(&[b"PING"]), None).await.is_err());
    let down = lanes.request(0, cmd(&[b"PING"]), None).await.unwrap_err();
    assert!(matches!(down, UpstreamError::Connect { .. }), "{down}");
    // Within the retry interval the lane answers with the same error, without a connect.
    let again = lanes.request(0, cmd(&[b"PING"]), None).await.unwrap_err();
    assert_eq!(again.to_string(), down.to_string());

    let _restarted = Server::builder().without_module().port(port).start();
    wait_until_async("the lane to reconnect", WAIT, || async {
        lanes
            .request(0, cmd(&[b"PING"]), None)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
}

#[tokio::test]
async fn commands_queued_while_a_lane_connects_go_up_in_order() {
    let server = plain_server();
    let lanes = Lanes::new(endpoint(&server), 1, scaled(CONNECT));
    // All queued before the lane is open: they must reach the server in this order.
    let replies: Vec<_> = (0..100)
        .map(|i| {
            let value = i.to_string();
            lanes.request(0, cmd(&[b"SET", b"order", value.as_bytes()]), None)
        })
        .collect();
    let last = lanes.request(0, cmd(&[b"GET", b"order"]), None);
    for reply in replies {
        assert_eq!(&reply.await.unwrap()[..], b"+OK\r\n");
    }
    assert_eq!(&last.await.unwrap()[..], b"$2\r\n99\r\n");
}

#[tokio::test]
async fn a_tunnel_carries_subscribe_and_its_messages() {
    let server = plain_server();
    let Tunnel {
        mut sender,
        mut receiver,
    } = Tunnel::open(&endpoint(&server), scaled(CONNECT))
        .await
        .unwrap();
    sender.send(cmd(&[b"SUBSCRIBE", b"ch"])).await.unwrap();
    let subscribed = receiver.next_frame().await.unwrap().unwrap();
    assert_eq!(
        &subscribed[..],
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    );

    let mut publisher = server.conn();
    let _: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg(b"hi\r\n")
        .query(&mut publisher)
        .unwrap();
    let message = receiver.next_frame().await.unwrap().unwrap();
    assert_eq!(
        &message[..],
        b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nhi\r\n\r\n"
    );

    sender.send(cmd(&[b"QUIT"])).await.unwrap();
    assert_eq!(
        &receiver.next_frame().await.unwrap().unwrap()[..],
        b"+OK\r\n"
    );
    assert!(receiver.next_frame().await.is_none());
}

#[tokio::test]
async fn a_tunnel_follows_its_client_into_resp3() {
    let server = plain_server();
    let Tunnel {
        mut sender,
        mut receiver,
    } = Tunnel::open(&endpoint(&server), scaled(CONNECT))
        .await
        .unwrap();
    sender.send(cmd(&[b"GET", b"missing"])).await.unwrap();
    assert_eq!(
        &receiver.next_frame().await.unwrap().unwrap()[..],
        b"$-1\r\n"
    );
    sender.send(cmd(&[b"HELLO", b"3"])).await.unwrap();
    let hello = receiver.next_frame().await.unwrap().unwrap();
    assert_eq!(hello[0], b'%');
    sender.send(cmd(&[b"GET", b"missing"])).await.unwrap();
    assert_eq!(&receiver.next_frame().await.unwrap().unwrap()[..], b"_\r\n");
}

#[tokio::test]
async fn a_refused_connect_names_the_address() {
    let server = plain_server();
    let mut gone = endpoint(&server);
    drop(server);
    gone.host = "127.0.0.1".into();
    let Err(e) = Connection::connect(&gone, scaled(CONNECT)).await else {
        panic!("connected to a stopped server");
    };
    assert!(e.to_string().contains(&gone.address()), "{e}");
    assert!(
        e.reply_text().starts_with("ERR upstream connect to "),
        "{}",
        e.reply_text()
    );
}
