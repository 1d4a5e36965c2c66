//! `hotkey exporter` against a real server (and a down one) and a real cluster: what it serves,
//! that a down node is counted and not fatal, that binary keys come out escaped, and that the
//! book's Grafana dashboard asks only for metrics the exporter serves.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use hotkey_testkit::{Cluster, Server};
use serde_json::Value;

use crate::run::{closed_port, reads};

/// A running `hotkey exporter`, killed when dropped.
struct Exporter {
    child: Child,
    addr: String,
}

impl Exporter {
    fn start(args: &[&str]) -> Exporter {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hotkey"))
            .arg("exporter")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hotkey exporter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the exporter's first line");
        let addr = line
            .trim()
            .strip_prefix("hotkey exporter: listening on http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("not the listening line: {line:?}"))
            .to_owned();
        Exporter { child, addr }
    }

    /// `GET path`: the status line and the body.
    fn get(&self, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the exporter");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("send the request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read the response");
        let (head, body) = response.split_once("\r\n\r\n").expect("a response");
        let status = head.lines().next().unwrap_or("").to_owned();
        (status, body.to_owned())
    }

    /// `GET /metrics`, which must succeed.
    fn scrape(&self) -> String {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        assert!(
            body.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF: {body}"
        );
        body
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sample lines of `text` whose metric name is `name`.
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

/// The value of the one sample of `name` whose labels contain `labels`.
fn value(text: &str, name: &str, labels: &str) -> f64 {
    let lines: Vec<&str> = samples(text, name)
        .into_iter()
        .filter(|l| l.contains(labels))
        .collect();
    let [line] = lines.as_slice() else {
        panic!("one {name} with {labels} expected: {lines:?}\n{text}");
    };
    sample_value(line)
}

/// The value at the end of a sample line.
fn sample_value(line: &str) -> f64 {
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value: {line}"))
}

fn strings(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == key => out.push(s.clone()),
                    other => strings(other, key, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        _ => {}
    }
}

/// The metric names the book's dashboard queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/src/grafana-dashboard.json"
    );
    let text = std::fs::read_to_string(path).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard's JSON");
    let mut exprs = Vec::new();
    strings(&dashboard, "expr", &mut exprs);
    strings(&dashboard, "query", &mut exprs);
    let mut names = BTreeSet::new();
    for expr in exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("hotkey_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

#[test]
fn the_exporter_serves_info_the_hot_set_and_a_bounded_top_and_counts_a_down_node() {
    let server = Server::start();
    let mut conn = server.conn();
    let node = format!("node=\"127.0.0.1:{}\"", server.port);
    let down = format!("127.0.0.1:{}", closed_port());
    let hot_key: &[u8] = b"\xffhot\"key\\";
    let _: () = redis::cmd("HOTKEY.PIN")
        .arg(hot_key)
        .query(&mut conn)
        .expect("PIN");
    for (i, key) in ["k1", "k2", "k3", "k4", "k5"].iter().enumerate() {
        reads(&mut conn, key.as_bytes(), 20 * (i + 1));
    }

    let exporter = Exporter::start(&[&server.url(), &down, "--count", "2"]);
    let text = exporter.scrape();
    assert_eq!(value(&text, "hotkey_node_up", &node), 1.0);
    assert_eq!(
        value(&text, "hotkey_node_up", &format!("node=\"{down}\"")),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "hotkey_exporter_node_errors_total",
            &format!("node=\"{down}\"")
        ),
        1.0
    );
    assert!(value(&text, "hotkey_commands_seen_total", &node) >= 100.0);
    assert_eq!(value(&text, "hotkey_pinned_keys", &node), 1.0);
    assert!(text.contains("# TYPE hotkey_tracked_keys gauge"), "{text}");
    let info = samples(&text, "hotkey_node_info");
    assert!(
        info.iter()
            .any(|l| l.contains(&node) && l.contains("role=\"master\"")),
        "{info:?}"
    );

    // The pinned binary key: its bytes as \xHH, its backslash doubled, then the text
    // format's own escaping of `\` and `"`.
    let hot = samples(&text, "hotkey_hot_key_reads_per_second");
    assert_eq!(hot.len(), 1, "{hot:?}");
    assert!(
        hot[0].contains(r#"key="\\xffhot\"key\\\\""#) && hot[0].contains("pinned=\"1\""),
        "{}",
        hot[0]
    );

    // --count 2: two top keys per node, the two most read.
    let top = samples(&text, "hotkey_top_key_reads_per_second");
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(
        top.iter().any(|l| l.contains("key=\"k5\""))
            && top.iter().any(|l| l.contains("key=\"k4\"")),
        "{top:?}"
    );

    // Every numeric INFO hotkey field is served, as a gauge or a counter.
    let fields: String = redis::cmd("INFO")
        .arg("hotkey")
        .query(&mut conn)
        .expect("INFO");
    for line in fields.lines() {
        let Some((name, raw)) = line.trim_end().split_once(':') else {
            continue;
        };
        if raw.parse::<f64>().is_err() {
            continue;
        }
        assert!(
            !samples(&text, name).is_empty()
                || !samples(&text, &format!("{name}_total")).is_empty(),
            "INFO's {name} is not served:\n{text}"
        );
    }

    // The down node is counted again, and the scrape still succeeds.
    let text = exporter.scrape();
    assert_eq!(
        value(
            &text,
            "hotkey_exporter_node_errors_total",
            &format!("node=\"{down}\"")
        ),
        2.0
    );

    // The book's dashboard asks only for what is served here.
    let served: BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let wanted = dashboard_metrics();
    assert!(wanted.len() >= 10, "{wanted:?}");
    for name in &wanted {
        assert!(
            served.contains(name.as_str()),
            "the dashboard queries {name}, which the exporter does not serve: {served:?}"
        );
    }

    let (status, _) = exporter.get("/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn on_a_cluster_the_exporter_finds_every_master_and_counts_a_killed_one() {
    let cluster = Cluster::start(3, 0);
    let key = b"leaderboard:global";
    let owner = cluster.node_for_key(key);
    let _: () = redis::cmd("HOTKEY.PIN")
        .arg(key)
        .query(&mut owner.conn())
        .expect("PIN");
    let seed = cluster.other_master(owner);
    let exporter = Exporter::start(&["--cluster", &seed.url()]);

    let text = exporter.scrape();
    let up = samples(&text, "hotkey_node_up");
    assert_eq!(up.len(), 3, "{up:?}");
    assert!(up.iter().all(|l| sample_value(l) == 1.0), "{up:?}");
    let hot = samples(&text, "hotkey_hot_key_reads_per_second");
    assert_eq!(hot.len(), 1, "{hot:?}");
    assert!(
        hot[0].contains(&format!("node=\"{}\"", owner.addr()))
            && hot[0].contains("key=\"leaderboard:global\""),
        "{}",
        hot[0]
    );

    // A master killed: still listed by the seed, now down and counted; the others answer.
    let victim = cluster
        .masters()
        .into_iter()
        .find(|m| m.id != seed.id)
        .expect("a master other than the seed");
    cluster.kill(victim);
    let text = exporter.scrape();
    let victim_node = format!("node=\"{}\"", victim.addr());
    assert_eq!(value(&text, "hotkey_node_up", &victim_node), 0.0);
    assert_eq!(
        value(&text, "hotkey_exporter_node_errors_total", &victim_node),
        1.0
    );
    let up: Vec<&str> = samples(&text, "hotkey_node_up")
        .into_iter()
        .filter(|l| sample_value(l) == 1.0)
        .collect();
    assert_eq!(up.len(), 2, "{text}");
}
