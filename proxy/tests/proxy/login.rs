//! A client that has not logged in gets through the proxy what the server gives such a
//! client, never the rights of the proxy's own login.

use redis::Value;

use crate::common::{Proxy, master};

fn text(e: &redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

#[test]
fn a_server_that_wants_a_password_gets_one_through_the_proxy_too() {
    let master = master(&[]);
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("pw")
        .query(&mut master.conn())
        .expect("CONFIG SET");
    let proxy = Proxy::start_with(
        &[format!("redis://:pw@127.0.0.1:{}/", master.port).as_str()],
        &[],
    );
    let mut conn = proxy.conn();
    let e = redis::cmd("GET")
        .arg("k")
        .query::<Value>(&mut conn)
        .expect_err("NOAUTH");
    assert_eq!(text(&e), "NOAUTH Authentication required.");
    let e = redis::cmd("HELLO")
        .arg(3)
        .query::<Value>(&mut conn)
        .expect_err("NOAUTH");
    assert_eq!(e.code(), Some("NOAUTH"), "{e}");
    let e = redis::cmd("AUTH")
        .arg("wrong")
        .query::<()>(&mut conn)
        .expect_err("WRONGPASS");
    assert_eq!(e.code(), Some("WRONGPASS"), "{e}");
    let e = redis::cmd("GET")
        .arg("k")
        .query::<Value>(&mut conn)
        .expect_err("still NOAUTH");
    assert_eq!(e.code(), Some("NOAUTH"), "{e}");
    let () = redis::cmd("AUTH").arg("pw").query(&mut conn).expect("AUTH");
    let () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("SET");
    let v: String = redis::cmd("GET").arg("k").query(&mut conn).expect("GET");
    assert_eq!(v, "v");
    // HELLO … AUTH logs in too, on a connection of the client's own.
    let mut other = proxy.conn();
    let hello: Value = redis::cmd("HELLO")
        .arg(3)
        .arg("AUTH")
        .arg("default")
        .arg("pw")
        .query(&mut other)
        .expect("HELLO AUTH");
    assert!(matches!(hello, Value::Map(_)), "{hello:?}");
    let v: String = redis::cmd("GET").arg("k").query(&mut other).expect("GET");
    assert_eq!(v, "v");
}

#[test]
fn without_a_login_a_client_keeps_the_default_users_rights_not_the_proxys() {
    let master = master(&[]);
    let mut admin = master.conn();
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "proxy", "on", ">proxy-pw", "~*", "&*", "+@all"])
        .query(&mut admin)
        .expect("ACL SETUSER proxy");
    let () = redis::cmd("SET")
        .arg("secret:k")
        .arg("s")
        .query(&mut admin)
        .expect("SET");
    let () = redis::cmd("SET")
        .arg("public:k")
        .arg("p")
        .query(&mut admin)
        .expect("SET");
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "resetkeys", "~public:*"])
        .query(&mut admin)
        .expect("ACL SETUSER default");
    let proxy = Proxy::start_with(
        &[format!("redis://proxy:proxy-pw@127.0.0.1:{}/", master.port).as_str()],
        &[],
    );
    let mut conn = proxy.conn();
    let v: String = redis::cmd("GET")
        .arg("public:k")
        .query(&mut conn)
        .expect("GET");
    assert_eq!(v, "p");
    let e = redis::cmd("GET")
        .arg("secret:k")
        .query::<Value>(&mut conn)
        .expect_err("NOPERM");
    assert_eq!(e.code(), Some("NOPERM"), "{e}");
    // Logged in as the proxy's user, the client has its rights.
    let mut logged_in = proxy.conn();
    let () = redis::cmd("AUTH")
        .arg("proxy")
        .arg("proxy-pw")
        .query(&mut logged_in)
        .expect("AUTH");
    let v: String = redis::cmd("GET")
        .arg("secret:k")
        .query(&mut logged_in)
        .expect("GET");
    assert_eq!(v, "s");
}
