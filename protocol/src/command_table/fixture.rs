//! A command table shaped like Redis 7.0's `COMMAND` reply, for unit tests (feature `fixture`).

use super::{CommandReply, CommandTable};

fn s(x: &str) -> CommandReply {
    CommandReply::Str(x.as_bytes().to_vec())
}
fn i(x: i64) -> CommandReply {
    CommandReply::Int(x)
}
fn a(items: Vec<CommandReply>) -> CommandReply {
    CommandReply::Array(items)
}
fn strs(items: &[&str]) -> CommandReply {
    a(items.iter().map(|x| s(x)).collect())
}

fn index_range(flags: &[&str], index: i64, last: i64, step: i64, limit: i64) -> CommandReply {
    a(vec![
        s("flags"),
        strs(flags),
        s("begin_search"),
        a(vec![
            s("type"),
            s("index"),
            s("spec"),
            a(vec![s("index"), i(index)]),
        ]),
        s("find_keys"),
        a(vec![
            s("type"),
            s("range"),
            s("spec"),
            a(vec![
                s("lastkey"),
                i(last),
                s("keystep"),
                i(step),
                s("limit"),
                i(limit),
            ]),
        ]),
    ])
}

fn entry(
    name: &str,
    flags: &[&str],
    specs: Vec<CommandReply>,
    subs: Vec<CommandReply>,
) -> CommandReply {
    entry_with_tips(name, flags, &[], specs, subs)
}

fn entry_with_tips(
    name: &str,
    flags: &[&str],
    tips: &[&str],
    specs: Vec<CommandReply>,
    subs: Vec<CommandReply>,
) -> CommandReply {
    a(vec![
        s(name),
        i(-2),
        strs(flags),
        i(0),
        i(0),
        i(0),
        strs(&[]),
        strs(tips),
        a(specs),
        a(subs),
    ])
}

/// A table shaped like Redis 7.0's `COMMAND` reply for a few commands.
pub fn table() -> CommandTable {
    let xread_spec = a(vec![
        s("flags"),
        strs(&["RO", "access"]),
        s("begin_search"),
        a(vec![
            s("type"),
            s("keyword"),
            s("spec"),
            a(vec![s("keyword"), s("STREAMS"), s("startfrom"), i(1)]),
        ]),
        s("find_keys"),
        a(vec![
            s("type"),
            s("range"),
            s("spec"),
            a(vec![
                s("lastkey"),
                i(-1),
                s("keystep"),
                i(1),
                s("limit"),
                i(2),
            ]),
        ]),
    ]);
    let zunion_dest = index_range(&["OW", "update"], 1, 0, 1, 0);
    let zunion_src = a(vec![
        s("flags"),
        strs(&["RO", "access"]),
        s("begin_search"),
        a(vec![
            s("type"),
            s("index"),
            s("spec"),
            a(vec![s("index"), i(2)]),
        ]),
        s("find_keys"),
        a(vec![
            s("type"),
            s("keynum"),
            s("spec"),
            a(vec![
                s("keynumidx"),
                i(0),
                s("firstkey"),
                i(1),
                s("keystep"),
                i(1),
            ]),
        ]),
    ]);
    let sort_unknown = a(vec![
        s("flags"),
        strs(&["OW", "update"]),
        s("begin_search"),
        a(vec![s("type"), s("unknown"), s("spec"), a(vec![])]),
        s("find_keys"),
        a(vec![s("type"), s("unknown"), s("spec"), a(vec![])]),
    ]);
    let reply = a(vec![
        entry(
            "get",
            &["readonly", "fast"],
            vec![index_range(&["RO", "access"], 1, 0, 1, 0)],
            vec![],
        ),
        entry(
            "set",
            &["write", "denyoom"],
            vec![index_range(&["RW", "access", "update"], 1, 0, 1, 0)],
            vec![],
        ),
        entry(
            "mset",
            &["write"],
            vec![index_range(&["OW", "update"], 1, -1, 2, 0)],
            vec![],
        ),
        entry(
            "mget",
            &["readonly"],
            vec![index_range(&["RO", "access"], 1, -1, 1, 0)],
            vec![],
        ),
        entry(
            "xread",
            &["readonly", "blocking", "movablekeys"],
            vec![xread_spec],
            vec![],
        ),
        entry(
            "zunionstore",
            &["write", "movablekeys"],
            vec![zunion_dest, zunion_src],
            vec![],
        ),
        entry(
            "sort",
            &["write", "movablekeys"],
            vec![index_range(&["RO", "access"], 1, 0, 1, 0), sort_unknown],
            vec![],
        ),
        entry_with_tips(
            "srandmember",
            &["readonly"],
            &["nondeterministic_output"],
            vec![index_range(&["RO", "access"], 1, 0, 1, 0)],
            vec![],
        ),
        entry("eval", &["noscript"], vec![], vec![]),
        entry("select", &["loading"], vec![], vec![]),
        entry("reset", &["noscript"], vec![], vec![]),
        entry("ping", &["fast"], vec![], vec![]),
        entry(
            "object",
            &[],
            vec![],
            vec![entry(
                "object|encoding",
                &["readonly"],
                vec![index_range(&["RO"], 2, 0, 1, 0)],
                vec![],
            )],
        ),
    ]);
    CommandTable::from_command_reply(&reply)
}
