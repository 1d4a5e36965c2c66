//! ACL users keep their rights through the proxy: the server checks `AUTH` and `HELLO … AUTH`,
//! and a key cached for the proxy's own user never reaches a user who may not read it.

use crate::common::{Proxy, master, pin};
use crate::raw::Raw;

/// Whether `reply` is an error frame starting with `code`.
fn is_error(reply: &[u8], code: &str) -> bool {
    reply.starts_with(format!("-{code} ").as_bytes())
}

#[test]
fn a_restricted_user_never_gets_a_cached_key_it_may_not_read() {
    let master = master(&[("cache-ttl-ms", "60000")]);
    let mut admin = master.conn();
    let () = redis::cmd("ACL")
        .arg(&["SETUSER", "reader", "on", ">pw", "~public:*", "+@read"][..])
        .query(&mut admin)
        .expect("ACL SETUSER");
    for (key, value) in [("secret:k", "classified"), ("public:x", "open")] {
        let () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query(&mut admin)
            .expect("SET");
    }
    pin(&master, b"secret:k");
    let proxy = Proxy::start(&master, &[]);
    let mut default_user = proxy.conn();
    proxy.wait_for_cache_hit(&mut default_user, b"secret:k");
    let value: String = redis::cmd("GET")
        .arg("secret:k")
        .query(&mut default_user)
        .expect("GET");
    assert_eq!(value, "classified");

    let mut reader = Raw::connect(proxy.port);
    assert_eq!(reader.call(&[b"AUTH", b"reader", b"pw"]), b"+OK\r\n");
    let refused = reader.call(&[b"GET", b"secret:k"]);
    assert!(
        is_error(&refused, "NOPERM"),
        "the reader got {:?}",
        String::from_utf8_lossy(&refused)
    );
    assert_eq!(reader.call(&[b"GET", b"public:x"]), b"$4\r\nopen\r\n");

    // A wrong password gets the server's own words.
    let mut direct = Raw::connect(master.port);
    let expected = direct.call(&[b"AUTH", b"reader", b"wrong"]);
    assert!(is_error(&expected, "WRONGPASS"), "{expected:?}");
    let mut wrong = Raw::connect(proxy.port);
    assert_eq!(
        String::from_utf8_lossy(&wrong.call(&[b"AUTH", b"reader", b"wrong"])),
        String::from_utf8_lossy(&expected)
    );

    let mut hello = Raw::connect(proxy.port);
    let greeting = hello.call(&[b"HELLO", b"3", b"AUTH", b"reader", b"pw"]);
    assert!(
        greeting.starts_with(b"%"),
        "HELLO 3 AUTH: {:?}",
        String::from_utf8_lossy(&greeting)
    );
    let refused = hello.call(&[b"GET", b"secret:k"]);
    assert!(
        is_error(&refused, "NOPERM"),
        "the reader (HELLO 3 AUTH) got {:?}",
        String::from_utf8_lossy(&refused)
    );
    assert_eq!(hello.call(&[b"GET", b"public:x"]), b"$4\r\nopen\r\n");

    // The proxy's own user still reads it from the cache.
    let value: String = redis::cmd("GET")
        .arg("secret:k")
        .query(&mut default_user)
        .expect("GET");
    assert_eq!(value, "classified");
}
