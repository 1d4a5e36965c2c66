use super::*;
use crate::command_table::fixture::table;

fn keys(table: &CommandTable, args: &[&str]) -> Vec<(String, Access)> {
    let spec = table.lookup(args).expect("known command");
    assert!(!spec.movable, "{} is movable", spec.name);
    let mut out = Vec::new();
    spec.for_each_key(args, |pos, access| {
        out.push((args[pos].to_string(), access))
    });
    out
}

use Access::{Read, Write};

#[test]
fn flags_say_who_may_serve_a_command() {
    let t = table();
    let get = t.lookup(&["GET", "k"][..]).expect("get");
    assert!(get.readonly && !get.blocking && get.deterministic);
    let set = t.lookup(&["SET", "k", "v"][..]).expect("set");
    assert!(!set.readonly);
    let xread = t
        .lookup(&["XREAD", "STREAMS", "s", "0"][..])
        .expect("xread");
    assert!(xread.readonly && xread.blocking);
    let srandmember = t.lookup(&["SRANDMEMBER", "s"][..]).expect("srandmember");
    assert!(srandmember.readonly && !srandmember.deterministic);
}

#[test]
fn single_key_commands() {
    let t = table();
    assert_eq!(keys(&t, &["GET", "k"]), vec![("k".into(), Read)]);
    assert_eq!(keys(&t, &["set", "k", "v"]), vec![("k".into(), Write)]);
}

#[test]
fn multi_key_commands_count_each_key() {
    let t = table();
    assert_eq!(
        keys(&t, &["MSET", "a", "1", "b", "2"]),
        vec![("a".into(), Write), ("b".into(), Write)]
    );
    assert_eq!(
        keys(&t, &["MGET", "a", "b", "c"]),
        vec![("a".into(), Read), ("b".into(), Read), ("c".into(), Read)]
    );
}

#[test]
fn keyword_search_with_limit() {
    let t = table();
    assert_eq!(
        keys(
            &t,
            &["XREAD", "COUNT", "2", "streams", "s1", "s2", "0", "0"]
        ),
        vec![("s1".into(), Read), ("s2".into(), Read)]
    );
}

#[test]
fn keynum_specs_read_the_count() {
    let t = table();
    assert_eq!(
        keys(
            &t,
            &["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]
        ),
        vec![
            ("dst".into(), Write),
            ("a".into(), Read),
            ("b".into(), Read)
        ]
    );
    // A count larger than the arguments stops at the end; a bad count finds no source keys.
    assert_eq!(
        keys(&t, &["ZUNIONSTORE", "dst", "9", "a"]),
        vec![("dst".into(), Write), ("a".into(), Read)]
    );
    assert_eq!(
        keys(&t, &["ZUNIONSTORE", "dst", "x", "a"]),
        vec![("dst".into(), Write)]
    );
}

#[test]
fn unknown_key_specs_make_a_command_movable() {
    let t = table();
    assert!(t.lookup(&["SORT", "k"][..]).unwrap().movable);
    assert!(!t.lookup(&["GET", "k"][..]).unwrap().movable);
}

#[test]
fn subcommands_are_looked_up_by_container_and_name() {
    let t = table();
    assert_eq!(
        keys(&t, &["OBJECT", "ENCODING", "k"]),
        vec![("k".into(), Read)]
    );
    assert!(t.lookup(&["OBJECT", "nosuch", "k"][..]).is_none());
    assert!(t.lookup(&["OBJECT"][..]).is_none());
}

#[test]
fn kinds() {
    let t = table();
    let kind = |args: &[&str]| t.lookup(args).unwrap().kind;
    assert_eq!(kind(&["EVAL", "return 1", "0"]), CommandKind::Script);
    assert_eq!(kind(&["SELECT", "1"]), CommandKind::Select);
    assert_eq!(kind(&["PING"]), CommandKind::Keyless);
    assert_eq!(kind(&["GET", "k"]), CommandKind::Keys);
}

#[test]
fn malformed_commands_never_read_past_the_arguments() {
    let t = table();
    assert!(keys(&t, &["GET"]).is_empty());
    assert!(keys(&t, &["MSET"]).is_empty());
    assert_eq!(keys(&t, &["MSET", "a"]), vec![("a".into(), Write)]);
    assert!(keys(&t, &["XREAD", "STREAMS"]).is_empty());
    assert!(keys(&t, &["ZUNIONSTORE"]).is_empty());
}

#[test]
fn unknown_and_overlong_names_are_not_found() {
    let t = table();
    assert!(t.lookup(&["NOSUCH", "k"][..]).is_none());
    let long = "g".repeat(200);
    assert!(t.lookup(&[long.as_str(), "k"][..]).is_none());
    assert!(t.lookup(&[] as &[&str]).is_none());
}

#[test]
fn parse_count_is_strict() {
    assert_eq!(parse_count(b"12"), Some(12));
    assert_eq!(parse_count(b""), None);
    assert_eq!(parse_count(b"-1"), None);
    assert_eq!(parse_count(b"1x"), None);
    assert_eq!(parse_count(b"9999999999999999999"), None);
}

#[test]
fn packed_and_hashed_lookups_agree() {
    let t = table();
    for name in [
        "get",
        "GET",
        "Get",
        "zunionstore",
        "ZUNIONSTORE",
        "object",
        "xread",
    ] {
        let packed = t
            .lookup(&[name, "encoding", "k"][..])
            .map(|s| s.name.clone());
        let hashed = t.get(name.as_bytes()).map(|s| s.name.clone()).map(|n| {
            if n.as_ref() == "object" {
                "object|encoding".into()
            } else {
                n
            }
        });
        assert_eq!(packed, hashed, "{name}");
    }
    // Near misses: a prefix, an extension, a NUL byte.
    for name in ["ge", "GE", "gett", "GETT", "get\0", "zunionstorex"] {
        assert!(t.lookup(&[name, "k"][..]).is_none(), "{name:?}");
    }
}

#[test]
fn every_name_is_found_in_lower_upper_and_mixed_case() {
    let t = table();
    for spec in &t.specs {
        let name: &str = &spec.name;
        if name.contains('|') || spec.has_subcommands {
            continue;
        }
        let mixed: String = name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        for sent in [name.to_string(), name.to_ascii_uppercase(), mixed] {
            let found = t.lookup(&[sent.as_str(), "a", "b", "c"][..]);
            assert_eq!(found.map(|s| &*s.name), Some(name), "{sent}");
        }
    }
}

#[test]
fn lower_word_matches_to_ascii_lowercase_for_every_byte() {
    for b in 0..=255u8 {
        let word = u64::from_le_bytes([b, b'A', b'z', b'@', b'[', b'`', b'{', 0xC1]);
        let expected = u64::from_le_bytes(
            [b, b'A', b'z', b'@', b'[', b'`', b'{', 0xC1].map(|c| c.to_ascii_lowercase()),
        );
        assert_eq!(lower_word(word), expected, "byte {b:#x}");
    }
}
