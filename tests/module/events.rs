//! probe
use std::time::Duration;
use crate::common::{Server, Subscriber, load, is_hot, top_all, entry};

#[test]
fn probe_steady() {
    for rate in [1100u64, 1150, 1200, 1300] {
        let server = Server::start();
        let sub = Subscriber::new(&server, "__hotkey__");
        let mut conn = server.conn();
        let mut tops = Vec::new();
        for _ in 0..6 {
            load(&mut conn, b"k", rate, Duration::from_millis(500));
            tops.push(entry(&top_all(&mut conn), "k").reads.round());
        }
        let msgs = sub.collect(Duration::from_millis(300));
        let hot = msgs.iter().filter(|m| is_hot(m, b"k")).count();
        eprintln!("rate {rate}: hot events {hot}, top {tops:?}");
    }
}
