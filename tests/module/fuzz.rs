//! Hostile bytes in every argument position of every `HOTKEY.*` command, every
//! `CONFIG SET hotkey.*` and `MODULE LOAD`, against a real server: invalid UTF-8, multi-byte
//! characters, NUL, CR/LF with fake RESP after them, 1 MiB arguments, numbers at the edges,
//! option names in odd case. The server must answer PING after every batch, every reply must be
//! a value or an error, and every error and status text must be short printable ASCII.
//!
//! The generator is seeded: each test prints its seed, and `HOTKEY_FUZZ_SEED=<n>` replays it.
//! The iteration counts keep the three tests at about 30 s together on a 2-core machine.

use std::fs;

use hotkey_testkit::{Server, error_text, expect_error, info_hotkey, module_path};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use redis::{Connection, RedisError, Value};

/// Replays a run: the seed a failing run printed.
const SEED_VAR: &str = "HOTKEY_FUZZ_SEED";

/// The longest error text a reply may carry: the longest fixed text plus a quote of at most
/// 64 bytes of user input, each byte shown as at most four characters (`\xNN`).
const MAX_ERROR_LEN: usize = 100 + 64 * 4;

/// Commands between two liveness checks.
const BATCH: usize = 25;

const ONE_MIB: usize = 1 << 20;

/// Each command's valid arguments, one per position; the fuzzer replaces one position at a
/// time (or appends after the last), so that every position is reached with the others valid.
const TEMPLATES: [(&str, &[&str]); 6] = [
    ("HOTKEY.TOP", &["COUNT", "5", "BY", "reads", "DB", "0"]),
    ("HOTKEY.ROUTE", &["k", "WRITE", "DB", "0"]),
    ("HOTKEY.ROUTES", &[]),
    ("HOTKEY.PIN", &["k", "TTL", "60", "DB", "0"]),
    ("HOTKEY.UNPIN", &["k", "DB", "0"]),
    ("HOTKEY.REPORT", &["k", "5", "k2", "7"]),
];

/// The option names and values of the commands; the fuzzer writes them in odd case.
const WORDS: [&str; 12] = [
    "COUNT", "BY", "DB", "READ", "WRITE", "TTL", "total", "reads", "writes", "yes", "no", "LIMIT",
];

/// Numbers at and past the edges of every numeric argument and config.
const NUMBERS: [&str; 22] = [
    "0",
    "1",
    "-1",
    "15",
    "16",
    "315360001",
    "1000000000001",
    "1048577",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "+1",
    " 1",
    "0.5 ",
    "1.0000000000000000001",
    "0x10",
];

/// Invalid UTF-8: a lone lead byte, bytes that never occur, an overlong NUL, a surrogate.
const INVALID_UTF8: [&[u8]; 6] = [
    b"\xc4",
    b"\xff\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\x80",
];

/// Valid multi-byte characters: U+0100 (the issue's), Latin, CJK, emoji, the last code point.
const MULTI_BYTE: [&str; 6] = ["\u{100}", "é", "中", "😀", "\u{ffff}", "\u{10ffff}"];

/// Control bytes and protocol look-alikes.
const CONTROL: [&[u8]; 7] = [
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n-ERR fake\r\n*1\r\n$4\r\nPING\r\n",
    b"\x1b[31m",
    b"\x7f",
];

/// The seed of this run: `HOTKEY_FUZZ_SEED` or a random one, printed either way, mixed with
/// `salt` so that each test draws its own sequence.
fn rng_for(test: &str, salt: u64) -> (StdRng, u64) {
    let seed = match std::env::var(SEED_VAR) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR}={s} is not an unsigned integer")),
        Err(_) => rand::random(),
    };
    println!("{test}: fuzz seed {seed} (replay with {SEED_VAR}={seed})");
    (StdRng::seed_from_u64(seed ^ salt), seed)
}

/// `word` with each letter's case chosen at random.
fn odd_case(rng: &mut StdRng, word: &str) -> Vec<u8> {
    word.bytes()
        .map(|b| {
            if rng.random_bool(0.5) {
                b.to_ascii_uppercase()
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect()
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    *items.choose(rng).expect("a non-empty list")
}

/// One piece of a hostile argument.
fn piece(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..9) {
        0 => {
            let w = pick(rng, &WORDS);
            odd_case(rng, w)
        }
        1 => pick(rng, &NUMBERS).as_bytes().to_vec(),
        2 => pick(rng, &INVALID_UTF8).to_vec(),
        3 => pick(rng, &MULTI_BYTE).as_bytes().to_vec(),
        4 => pick(rng, &CONTROL).to_vec(),
        5 => {
            let n = rng.random_range(0..16);
            (0..n).map(|_| rng.random::<u8>()).collect()
        }
        6 => {
            let n = rng.random_range(0..16);
            (0..n).map(|_| rng.random_range(0x20..0x7f)).collect()
        }
        // Longer than any quote an error may carry.
        7 => vec![pick(rng, &[b'a', 0xc4, 0x80, 0]); rng.random_range(65..5000)],
        _ => Vec::new(),
    }
}

/// A hostile argument: one to three pieces, now and then 1 MiB long.
fn hostile(rng: &mut StdRng) -> Vec<u8> {
    if rng.random_ratio(1, 60) {
        return vec![pick(rng, &[b'x', 0xff, 0, b'\n']); ONE_MIB];
    }
    let pieces = rng.random_range(1..=3);
    (0..pieces).flat_map(|_| piece(rng)).collect()
}

/// A control byte (or DEL) the server must refuse in a config value.
fn has_control_byte(value: &[u8]) -> bool {
    value.iter().any(|&b| b < 0x20 || b == 0x7f)
}

fn printable(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Shows an argument in a failure message: escaped, and cut.
fn shown(arg: &[u8]) -> String {
    let cut = &arg[..arg.len().min(80)];
    let mut s: String = cut.escape_ascii().to_string();
    if arg.len() > cut.len() {
        s.push_str(&format!("… ({} bytes)", arg.len()));
    }
    s
}

fn shown_all(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| format!("\"{}\"", shown(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a value is not an acceptable reply, if it is not: status texts and nested errors must
/// be short printable ASCII.
fn bad_value(v: &Value) -> Option<String> {
    match v {
        Value::SimpleString(s) if !printable(s) => Some(format!("status text {s:?}")),
        Value::ServerError(e) => {
            let text = format!("{} {}", e.code(), e.details().unwrap_or(""));
            bad_error_text(&text)
        }
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            items.iter().find_map(bad_value)
        }
        Value::Map(pairs) => pairs
            .iter()
            .find_map(|(k, v)| bad_value(k).or_else(|| bad_value(v))),
        _ => None,
    }
}

fn bad_error_text(text: &str) -> Option<String> {
    if !printable(text) {
        Some(format!("error text outside printable ASCII: {text:?}"))
    } else if text.len() > MAX_ERROR_LEN {
        Some(format!(
            "error text of {} bytes (at most {MAX_ERROR_LEN}): {}…",
            text.len(),
            &text[..120]
        ))
    } else {
        None
    }
}

/// Why `result` is not a value or a clean server error, if it is not.
fn bad_reply(result: &Result<Value, RedisError>) -> Option<String> {
    match result {
        Ok(v) => bad_value(v),
        // A server error has a code; anything else (I/O, parse) means no proper answer.
        Err(e) if e.code().is_some() => bad_error_text(&error_text(e)),
        Err(e) => Some(format!("no reply from the server: {e}")),
    }
}

/// Panics unless the server process runs, answers PING on a fresh socket and on `conn`, and
/// its log shows no crash or panic.
fn assert_alive(server: &mut Server, conn: &mut Connection, context: &dyn Fn() -> String) {
    let pong: Result<String, _> = redis::cmd("PING").query(conn);
    assert!(
        server.is_up() && pong.as_deref() == Ok("PONG"),
        "the server stopped answering after {}\n--- log ---\n{}",
        context(),
        server.log_tail()
    );
    assert_clean_log(server, context);
}

fn assert_clean_log(server: &Server, context: &dyn Fn() -> String) {
    let log = fs::read(server.dir.join("redis.log")).unwrap_or_default();
    let log = String::from_utf8_lossy(&log).to_lowercase();
    for sign in ["panic", "crashed by signal", "bug report", "assertion"] {
        assert!(
            !log.contains(sign),
            "the server log shows '{sign}' after {}\n--- log ---\n{}",
            context(),
            server.log_tail()
        );
    }
}

/// `INFO hotkey`'s `internal_errors`: failures the module's guard caught. None should happen.
fn assert_no_internal_errors(conn: &mut Connection, seed: u64) {
    let info = info_hotkey(conn);
    assert_eq!(
        info.get("internal_errors").map(String::as_str),
        Some("0"),
        "INFO hotkey internal_errors (seed {seed}): {info:?}"
    );
}

/// `template` with `arg` at `position` (replacing the argument there, or appended).
fn with_arg(template: &[&str], position: usize, arg: Vec<u8>) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = template.iter().map(|a| a.as_bytes().to_vec()).collect();
    match args.get_mut(position) {
        Some(slot) => *slot = arg,
        None => args.push(arg),
    }
    args
}

/// The argument lists of one round: each command with each position replaced by a hostile
/// argument (and one appended), then a few lists of hostile arguments only.
fn round(rng: &mut StdRng) -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut lists = Vec::new();
    for (name, template) in TEMPLATES {
        for position in 0..=template.len() {
            lists.push((name, with_arg(template, position, hostile(rng))));
        }
        let n = rng.random_range(0..7);
        lists.push((name, (0..n).map(|_| hostile(rng)).collect()));
    }
    lists
}

#[test]
fn hostile_arguments_to_every_command_leave_the_server_answering() {
    let (mut rng, seed) = rng_for("hotkey commands", 1);
    let mut server = Server::start();
    let mut conns = [server.conn(), server.conn_resp3()];
    // Some keys to list, binary ones among them, so TOP and ROUTE have entries to show.
    for _ in 0..50 {
        let key = hostile(&mut rng);
        let _: Value = redis::cmd("SET")
            .arg(&key)
            .arg(1)
            .query(&mut conns[0])
            .expect("SET");
    }

    // Every position once with 1 MiB, then rounds of random hostile bytes, on both protocols.
    let mut lists: Vec<(&str, Vec<Vec<u8>>)> = Vec::new();
    for (name, template) in TEMPLATES {
        for position in 0..=template.len() {
            lists.push((name, with_arg(template, position, vec![0xc4; ONE_MIB])));
        }
    }
    for _ in 0..40 {
        lists.extend(round(&mut rng));
    }

    for (n, batch) in lists.chunks(BATCH).enumerate() {
        let protocol = n % 2;
        for (name, args) in batch {
            let result: Result<Value, RedisError> =
                redis::cmd(name).arg(args).query(&mut conns[protocol]);
            if let Some(problem) = bad_reply(&result) {
                panic!(
                    "{name} {} (RESP{}, seed {seed}): {problem}\n--- log ---\n{}",
                    shown_all(args),
                    protocol + 2,
                    server.log_tail()
                );
            }
        }
        assert_alive(&mut server, &mut conns[protocol], &|| {
            format!("batch {n} of {} (seed {seed})", lists.len().div_ceil(BATCH))
        });
    }
    assert_no_internal_errors(&mut conns[0], seed);
}

/// The issue's table: each of these aborted the server.
#[test]
fn a_non_ascii_option_is_quoted_escaped_in_the_error() {
    let mut server = Server::start();
    let mut conn = server.conn();
    let cases: [(&str, &[&[u8]]); 4] = [
        ("HOTKEY.TOP", &[b"\xc4\x80"]),
        ("HOTKEY.ROUTE", &[b"k", b"\xc4\x80"]),
        ("HOTKEY.UNPIN", &[b"k", b"\xc4\x80"]),
        ("HOTKEY.PIN", &[b"k", b"\xc4\x80"]),
    ];
    for (name, args) in cases {
        let err = expect_error(&mut conn, redis::cmd(name).arg(args));
        assert!(
            err.contains("\\xc4\\x80") && printable(&err),
            "{name}: the unknown option is shown as \\xc4\\x80: {err:?}"
        );
        assert_alive(&mut server, &mut conn, &|| format!("{name} with U+0100"));
    }
    let err = expect_error(
        &mut conn,
        redis::cmd("HOTKEY.TOP").arg(vec![0xc4u8; ONE_MIB]),
    );
    assert!(
        bad_error_text(&err).is_none(),
        "a 1 MiB option is quoted cut: {} bytes",
        err.len()
    );
}

#[test]
fn config_set_refuses_control_bytes_and_config_get_stays_printable() {
    let (mut rng, seed) = rng_for("config set", 2);
    let mut server = Server::start();
    let mut conns = [server.conn(), server.conn_resp3()];
    let configs: Vec<(String, String)> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hotkey.*")
        .query(&mut conns[0])
        .expect("CONFIG GET hotkey.*");
    assert!(configs.len() >= 10, "CONFIG GET hotkey.*: {configs:?}");

    // The issue's two, then random values for every config.
    for (name, value) in [
        ("hotkey.hot-share", &b"0.5\x00"[..]),
        ("hotkey.channel", b"a\x00b"),
    ] {
        let err = expect_error(
            &mut conns[0],
            redis::cmd("CONFIG").arg("SET").arg(name).arg(value),
        );
        assert!(err.contains(name), "CONFIG SET {name}: {err:?}");
    }
    for (i, (name, original)) in configs.iter().enumerate() {
        let protocol = i % 2;
        let conn = &mut conns[protocol];
        let mut values: Vec<Vec<u8>> = (0..60).map(|_| hostile(&mut rng)).collect();
        values.push(vec![b'1'; ONE_MIB]);
        // A valid value with a control byte after it.
        values.push([original.as_bytes(), pick(&mut rng, &CONTROL)].concat());
        for value in &values {
            let result: Result<Value, RedisError> = redis::cmd("CONFIG")
                .arg("SET")
                .arg(name)
                .arg(value)
                .query(conn);
            let context = || {
                format!(
                    "CONFIG SET {name} \"{}\" (RESP{}, seed {seed})",
                    shown(value),
                    protocol + 2
                )
            };
            if let Some(problem) = bad_reply(&result) {
                panic!("{}: {problem}", context());
            }
            if has_control_byte(value) {
                match &result {
                    Err(e) => assert!(
                        error_text(e).contains(name.as_str()),
                        "{}: the error names the config: {}",
                        context(),
                        error_text(e)
                    ),
                    Ok(v) => panic!("{}: accepted ({v:?})", context()),
                }
            }
        }
        let now: Result<Vec<(String, Vec<u8>)>, _> =
            redis::cmd("CONFIG").arg("GET").arg("hotkey.*").query(conn);
        match now {
            Ok(pairs) => {
                for (n, v) in pairs {
                    assert!(
                        v.iter().all(|b| (0x20..=0x7e).contains(b)),
                        "CONFIG GET {n} after CONFIG SET {name} (seed {seed}): \"{}\"",
                        shown(&v)
                    );
                }
            }
            Err(e) => panic!("CONFIG GET hotkey.* after CONFIG SET {name} (seed {seed}): {e}"),
        }
        assert_alive(&mut server, &mut conns[protocol], &|| {
            format!("CONFIG SET {name} (seed {seed})")
        });
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(original)
            .query(&mut conns[protocol])
            .unwrap_or_else(|e| panic!("CONFIG SET {name} back to {original:?}: {e}"));
    }
    assert_no_internal_errors(&mut conns[0], seed);
}

/// The module's own config names (without `hotkey.`), for `MODULE LOAD` pairs.
const CONFIG_NAMES: [&str; 17] = [
    "enabled",
    "capacity",
    "half-life-ms",
    "max-key-bytes",
    "sample-quiet-ops",
    "sample-max",
    "tick-ms",
    "hot-threshold",
    "hot-share",
    "cold-fraction",
    "cooldown-ms",
    "max-hot",
    "cache-ttl-ms",
    "heartbeat-ms",
    "channel",
    "max-replica-lag-ms",
    "max-replica-lag-bytes",
];

/// `MODULE LOAD` arguments: pairs of a config name or hostile bytes and a hostile value, now
/// and then an odd count. True when they are certain to be wrong: an odd count, a name that
/// is no config, or a control byte in a value.
fn module_args(rng: &mut StdRng) -> (Vec<Vec<u8>>, bool) {
    let pairs = rng.random_range(1..=3);
    let mut args = Vec::new();
    let mut wrong = false;
    for _ in 0..pairs {
        let name = if rng.random_bool(0.6) {
            pick(rng, &CONFIG_NAMES).as_bytes().to_vec()
        } else {
            hostile(rng)
        };
        wrong |= !CONFIG_NAMES.iter().any(|c| c.as_bytes() == name);
        let value = hostile(rng);
        wrong |= has_control_byte(&value);
        args.push(name);
        args.push(value);
    }
    if rng.random_bool(0.2) {
        args.pop();
        wrong = true;
    }
    (args, wrong)
}

#[test]
fn module_load_refuses_hostile_arguments_and_a_good_load_follows() {
    let (mut rng, seed) = rng_for("module load", 3);
    let mut server = Server::builder().without_module().start();
    let mut conn = server.conn();
    let path = module_path().display().to_string();
    let load = |conn: &mut Connection, args: &[Vec<u8>]| -> Result<Value, RedisError> {
        redis::cmd("MODULE")
            .arg("LOAD")
            .arg(&path)
            .arg(args)
            .query(conn)
    };

    // The issue's two, then bad names whose log line must name them.
    let fixed: [&[&[u8]]; 4] = [
        &[b"bad\x00name", b"1"],
        &[b"channel", b"a\x00b"],
        &[b"no-such-config", b"1"],
        &[b"capacity", b"many"],
    ];
    for args in fixed {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
        let result = load(&mut conn, &args);
        assert!(
            result.as_ref().is_err_and(|e| e.code().is_some()),
            "MODULE LOAD {}: {result:?}",
            shown_all(&args)
        );
        assert_alive(&mut server, &mut conn, &|| {
            format!("MODULE LOAD {}", shown_all(&args))
        });
    }
    let log = fs::read(server.dir.join("redis.log")).unwrap_or_default();
    let log = String::from_utf8_lossy(&log);
    for named in ["no-such-config", "capacity"] {
        assert!(
            log.contains(named),
            "the log names the bad argument {named}:\n{}",
            server.log_tail()
        );
    }

    for n in 0..12 {
        for _ in 0..10 {
            let (args, wrong) = module_args(&mut rng);
            let result = load(&mut conn, &args);
            let context = || format!("MODULE LOAD {} (seed {seed})", shown_all(&args));
            if let Some(problem) = bad_reply(&result) {
                panic!(
                    "{}: {problem}\n--- log ---\n{}",
                    context(),
                    server.log_tail()
                );
            }
            match result {
                Ok(_) if wrong => panic!("{}: loaded", context()),
                // Valid by chance: unload, for the next attempt.
                Ok(_) => {
                    let () = redis::cmd("MODULE")
                        .arg("UNLOAD")
                        .arg("hotkey")
                        .query(&mut conn)
                        .unwrap_or_else(|e| panic!("{}, then MODULE UNLOAD: {e}", context()));
                }
                Err(_) => {}
            }
        }
        assert_alive(&mut server, &mut conn, &|| {
            format!("MODULE LOAD batch {n} (seed {seed})")
        });
    }

    let () = redis::cmd("MODULE")
        .arg("LOAD")
        .arg(&path)
        .arg(&["sample-max", "1"])
        .query(&mut conn)
        .unwrap_or_else(|e| {
            panic!(
                "a good MODULE LOAD after bad ones: {e}\n{}",
                server.log_tail()
            )
        });
    let top: Result<Value, _> = redis::cmd("HOTKEY.TOP").query(&mut conn);
    assert!(top.is_ok(), "HOTKEY.TOP after the good load: {top:?}");
    assert_no_internal_errors(&mut conn, seed);
}
