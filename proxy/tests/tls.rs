//! `rediss://` upstreams: a real redis-server with a TLS port and certificates of a CA made
//! for the test (by the `openssl` command).

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use hotkey_proxy::upstream::{Connection, Endpoint, Tls, Tunnel, UpstreamError};
use hotkey_testkit::{Server, scaled};

/// A directory of the test's own, removed on drop.
struct Certs {
    dir: PathBuf,
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`) and a server certificate it signed for 127.0.0.1 (`server.crt`,
/// `server.key`), in a fresh directory named after `name`.
fn make_certs(name: &str) -> Certs {
    let dir = std::env::temp_dir().join(format!("hotkey-proxy-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let certs = Certs { dir };
    let dir = &certs.dir;
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ]
        .iter()
        .chain(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=hotkey test CA",
        ])
        .copied()
        .collect::<Vec<_>>(),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
        ]
        .iter()
        .chain(&["-out", "server.csr", "-subj", "/CN=127.0.0.1"])
        .copied()
        .collect::<Vec<_>>(),
    );
    fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
        ]
        .iter()
        .chain(&[
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ])
        .copied()
        .collect::<Vec<_>>(),
    );
    certs
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tls_server(certs: &Certs) -> (Server, u16) {
    let port = free_port();
    let path = |name: &str| certs.dir.join(name).display().to_string();
    let (cert, key, ca) = (path("server.crt"), path("server.key"), path("ca.crt"));
    let server = Server::builder()
        .without_module()
        .server_args(&[
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ])
        .start();
    (server, port)
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

fn connect_timeout() -> Duration {
    scaled(Duration::from_secs(5))
}

#[tokio::test]
async fn a_tls_connection_checks_the_certificate_and_carries_requests() {
    let certs = make_certs("tls-ok");
    let (_server, port) = tls_server(&certs);
    let ca = fs::read(certs.dir.join("ca.crt")).unwrap();
    let mut endpoint = Endpoint::new("127.0.0.1", port);
    endpoint.tls = Some(Tls::ca_pem(&ca).unwrap());
    let conn = Connection::connect(&endpoint, connect_timeout())
        .await
        .unwrap();
    let value = vec![7u8; 1024 * 1024];
    let set = conn.request(cmd(&[b"SET", b"k", &value]), None);
    let get = conn.request(cmd(&[b"GET", b"k"]), None);
    assert_eq!(&set.await.unwrap()[..], b"+OK\r\n");
    assert_eq!(
        get.await.unwrap().len(),
        value.len() + b"$1048576\r\n\r\n".len()
    );

    let Tunnel {
        mut sender,
        mut receiver,
    } = Tunnel::open(&endpoint, connect_timeout()).await.unwrap();
    sender.send(cmd(&[b"PING"])).await.unwrap();
    assert_eq!(
        &receiver.next_frame().await.unwrap().unwrap()[..],
        b"+PONG\r\n"
    );
}

#[tokio::test]
async fn a_certificate_of_another_ca_is_refused() {
    let certs = make_certs("tls-server");
    let other = make_certs("tls-other");
    let (_server, port) = tls_server(&certs);
    let ca = fs::read(other.dir.join("ca.crt")).unwrap();
    let mut endpoint = Endpoint::new("127.0.0.1", port);
    endpoint.tls = Some(Tls::ca_pem(&ca).unwrap());
    let Err(e) = Connection::connect(&endpoint, connect_timeout()).await else {
        panic!("a certificate of an untrusted CA was accepted");
    };
    assert!(matches!(e, UpstreamError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[test]
fn a_ca_file_with_no_certificate_is_refused() {
    let e = Tls::ca_pem(b"not a PEM").unwrap_err();
    assert_eq!(e.to_string(), "TLS: no certificate in the CA PEM");
}
