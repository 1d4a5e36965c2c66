//! TLS: `--tls` with `--cacert`, `rediss://` URLs, `--insecure`, and the errors of a
//! certificate the tool does not trust, against a real server with a TLS port.

use std::path::Path;
use std::process::Command;

use hotkey_testkit::Server;

use crate::run::{closed_port, hotkey, key_entry, reads, stderr};

/// A CA and a certificate for 127.0.0.1 it signed, made with `openssl` in `dir`.
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl (scripts/install-deps.sh installs it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san.ext");
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=hotkey test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

#[test]
fn tls_nodes_are_reached_with_a_trusted_or_an_unverified_certificate() {
    let dir = tempdir();
    certificates(&dir);
    let file = |name: &str| dir.join(name).display().to_string();
    let tls_port = closed_port().to_string();
    let server = Server::builder()
        .server_args(&[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &file("server.crt"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.crt"),
            "--tls-auth-clients",
            "no",
        ])
        .start();
    reads(&mut server.conn(), b"over-tls", 30);
    let cacert = file("ca.crt");

    let trusted = hotkey(&[
        "top", "-p", &tls_port, "--tls", "--cacert", &cacert, "--json",
    ]);
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    let top: serde_json::Value = serde_json::from_slice(&trusted.stdout).expect("JSON");
    assert!(
        key_entry(&top, "over-tls")["reads_per_sec"].as_f64() > Some(0.0),
        "{top}"
    );

    let url = format!("rediss://127.0.0.1:{tls_port}/");
    let untrusted = hotkey(&["top", &url, "--once"]);
    assert_eq!(untrusted.status.code(), Some(1));
    assert!(
        stderr(&untrusted).contains("certificate"),
        "{}",
        stderr(&untrusted)
    );

    let unverified = hotkey(&["top", &url, "--insecure", "--once"]);
    assert_eq!(unverified.status.code(), Some(0), "{}", stderr(&unverified));

    let route = hotkey(&["route", "over-tls", &url, "--cacert", &cacert]);
    assert_eq!(route.status.code(), Some(0), "{}", stderr(&route));

    let missing = hotkey(&["top", &url, "--cacert", &file("nothing.pem"), "--once"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("cannot read the CA certificate file"),
        "{}",
        stderr(&missing)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hotkey-cli-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
