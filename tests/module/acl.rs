//! Key names leave the server only to callers whose ACL lets them read those keys.

use std::collections::BTreeSet;

use hotkey_testkit::{Server, top_all};

fn acl_setuser(conn: &mut redis::Connection, rules: &[&str]) {
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(rules)
        .query(conn)
        .unwrap_or_else(|e| panic!("ACL SETUSER {}: {e}", rules.join(" ")));
}

fn visible(conn: &mut redis::Connection) -> BTreeSet<String> {
    top_all(conn)
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[test]
fn top_lists_only_keys_the_caller_may_read() {
    let server = Server::start();
    let mut admin = server.conn();
    acl_setuser(&mut admin, &["app", "on", ">pw", "~app:*", "+@all"]);
    // May write everything but read nothing (Redis 7 selectors).
    acl_setuser(&mut admin, &["writer", "on", ">pw", "%W~*", "+@all"]);
    for key in ["app:1", "app:2", "other:1"] {
        let () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut admin)
            .expect("SET");
    }

    assert_eq!(visible(&mut admin), set(&["app:1", "app:2", "other:1"]));
    let mut app = server.conn_as("app", "pw");
    assert_eq!(visible(&mut app), set(&["app:1", "app:2"]));
    let mut writer = server.conn_as("writer", "pw");
    assert_eq!(
        visible(&mut writer),
        set(&[]),
        "write-only access reveals no names"
    );
}
