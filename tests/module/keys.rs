//! Key names are binary-safe end to end.

use hotkey_testkit::{Server, find, show, top_all};

const KEYS: [&[u8]; 6] = [
    b"nul\x00inside",
    b"\xff\xfe\x80 not utf-8",
    b"crlf\r\nkey",
    b"with  spaces ",
    b"\x00",
    b"",
];

#[test]
fn binary_key_names_come_back_byte_exact() {
    let server = Server::start();
    let mut conn = server.conn();
    for key in KEYS {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut conn)
            .expect("SET");
        let value: Vec<u8> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
        assert_eq!(value, b"v");
    }
    let mut resp3 = server.conn_resp3();
    for (protocol, conn) in [("RESP2", &mut conn), ("RESP3", &mut resp3)] {
        let entries = top_all(conn);
        assert_eq!(entries.len(), KEYS.len(), "{protocol}: {}", show(&entries));
        for key in KEYS {
            let e = find(&entries, key, 0).unwrap_or_else(|| {
                panic!("{protocol}: key {key:?} is not in TOP:\n{}", show(&entries))
            });
            assert!(e.reads > 0.0 && e.writes > 0.0, "{protocol}: {e:?}");
        }
    }
    // Both shapes carry the same entries.
    let mut a = top_all(&mut conn);
    let mut b = top_all(&mut resp3);
    a.sort_by(|x, y| x.key.cmp(&y.key));
    b.sort_by(|x, y| x.key.cmp(&y.key));
    let strip = |v: &[hotkey_testkit::TopRow]| -> Vec<(Vec<u8>, i64)> {
        v.iter().map(|e| (e.key.clone(), e.db)).collect()
    };
    assert_eq!(strip(&a), strip(&b), "RESP2 and RESP3 list the same keys");
}
