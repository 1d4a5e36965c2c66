//! The routing corpus (`protocol/testdata/routing*.json`) run through [`plan`] with every
//! recorded `COMMAND` table (`protocol/testdata/command/*.json`). The Python router runs the
//! same files (`python/tests/test_corpus.py`), so the two rules cannot drift apart.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hotkey_protocol::ReadsTo;
use hotkey_protocol::command_table::{CommandReply, CommandTable};
use hotkey_protocol::keyless;
use serde_json::Value;

use super::*;
use crate::table::tests::{advice, routes};

/// Fewer cases than this run on one server means the files were not read as meant.
const MIN_CASES_PER_SERVER: usize = 500;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/testdata")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A string of the corpus: JSON text, or `{"b64": ...}` for bytes that are not UTF-8.
fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => BASE64
            .decode(o["b64"].as_str().expect("b64 is a string"))
            .expect("valid base64"),
        other => panic!("not a string: {other}"),
    }
}

fn reply(v: &Value) -> CommandReply {
    match v {
        Value::Null => CommandReply::Nil,
        Value::Number(n) => CommandReply::Int(n.as_i64().expect("an integer")),
        Value::Array(items) => CommandReply::Array(items.iter().map(reply).collect()),
        other => CommandReply::Str(bytes(other)),
    }
}

fn servers() -> Vec<(String, CommandTable)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(testdata().join("command"))
        .expect("protocol/testdata/command")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().expect("name").to_string_lossy().into_owned();
            (name, CommandTable::from_command_reply(&reply(&load(p))))
        })
        .collect()
}

fn cases() -> Vec<Value> {
    ["routing.json", "routing-table.json"]
        .iter()
        .flat_map(|f| {
            load(&testdata().join(f))["cases"]
                .as_array()
                .expect("cases")
                .clone()
        })
        .collect()
}

fn strings(v: &Value) -> Vec<Vec<u8>> {
    v.as_array()
        .map(|a| a.iter().map(bytes).collect())
        .unwrap_or_default()
}

fn route_table(case: &Value) -> RouteTable {
    let hot = case["hot"].as_array().cloned().unwrap_or_default();
    let keys: Vec<Vec<u8>> = hot.iter().map(|h| bytes(&h["key"])).collect();
    let db_keys: Vec<(u32, &[u8])> = keys.iter().map(|k| (0, k.as_slice())).collect();
    let mut snapshot = routes("corpus", 0, &db_keys);
    for (entry, h) in snapshot.keys.iter_mut().zip(&hot) {
        let reads_to = match h["reads_to"].as_str() {
            Some("replicas") => ReadsTo::Replicas,
            Some("master") => ReadsTo::Master,
            other => panic!("reads_to {other:?}"),
        };
        entry.advice = advice(reads_to, h["cache_ttl_ms"].as_u64().expect("cache_ttl_ms"));
    }
    let mut table = RouteTable::new(0);
    table.load(&snapshot);
    if case["synced"] == Value::Bool(false) {
        table.unsync();
    }
    table
}

/// A plan in the corpus's terms: target, blocking, keys read off the master, keys written,
/// cache TTL.
type Observed<'a> = (&'a str, bool, Vec<Vec<u8>>, Vec<Vec<u8>>, u64);

fn observed(plan: &Plan<'_>) -> Observed<'static> {
    let owned = |keys: &[&[u8]]| keys.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    match plan {
        Plan::Master => ("master", false, vec![], vec![], 0),
        Plan::Write(keys) => ("master", false, vec![], owned(keys), 0),
        Plan::Blocking(keys) => ("master", true, vec![], owned(keys), 0),
        Plan::HotRead(read) => {
            let (target, ttl) = match read.cache {
                Some((ttl, _)) => ("cache", ttl.as_millis() as u64),
                None if read.replicas => ("replica", 0),
                None => ("master", 0),
            };
            (target, false, owned(&read.keys), vec![], ttl)
        }
    }
}

fn expected(e: &Value) -> Observed<'_> {
    (
        e["target"].as_str().expect("target"),
        e["blocking"].as_bool().unwrap_or(false),
        strings(&e["reads"]),
        strings(&e["writes"]),
        e["cache_ttl_ms"].as_u64().unwrap_or(0),
    )
}

/// A plan for a failure message: keys as text.
fn show(plan: &Observed<'_>) -> String {
    let keys = |ks: &[Vec<u8>]| -> Vec<String> {
        ks.iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    let (target, blocking, reads, writes, ttl) = plan;
    format!(
        "{target} blocking={blocking} reads={:?} writes={:?} cache_ttl_ms={ttl}",
        keys(reads),
        keys(writes)
    )
}

fn applies_to(case: &Value, server: &str) -> bool {
    case["only"]
        .as_array()
        .is_none_or(|only| only.iter().any(|s| s == server))
}

#[test]
fn the_rule_passes_the_routing_corpus_on_every_recorded_server() {
    let cases = cases();
    let mut failures = Vec::new();
    for (server, commands) in servers() {
        let mut ran = 0;
        for case in cases.iter().filter(|c| applies_to(c, &server)) {
            let argv: Vec<Vec<u8>> = strings(&case["argv"]);
            let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            // A command this server lacks is skipped on this server only; a case about commands
            // no server knows says so.
            if commands.lookup(&args[..]).is_none() && case["unknown"] != Value::Bool(true) {
                continue;
            }
            ran += 1;
            let table = route_table(case);
            let got = observed(&plan(&commands, &table, &args));
            let want = expected(&case["expect"]);
            if got != want {
                failures.push(format!(
                    "{server}: {}: got {}, want {}",
                    case["name"],
                    show(&got),
                    show(&want)
                ));
            }
            if let Some(group) = case["expect"]["keyless"].as_str() {
                let got = keyless::group(&args).as_str();
                if got != group {
                    failures.push(format!(
                        "{server}: {}: keyless group {got}, want {group}",
                        case["name"]
                    ));
                }
            }
        }
        println!("{server}: {ran} cases");
        assert!(
            ran >= MIN_CASES_PER_SERVER,
            "{server}: only {ran} cases ran (of {})",
            cases.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
