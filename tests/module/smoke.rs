//! The filter sees every command before the server checks it: odd arities, unknown commands,
//! huge and empty keys must never take the server down.

use hotkey_testkit::{Server, info_hotkey, top_all};

/// A small deterministic generator (xorshift64*), so a failure replays the same sequence.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Commands that are malformed, unusual or hostile to a key extractor. None of them blocks.
fn odd_commands() -> Vec<Vec<Vec<u8>>> {
    let text: &[&[&str]] = &[
        &["GET"],
        &["GET", "a", "b"],
        &["MGET"],
        &["MSET", "a"],
        &["MSET", "a", "1", "b"],
        &["SET", "k"],
        &["SET", "k", "v", "EX", "-1"],
        &["DEL"],
        &["ZADD", "z"],
        &["ZADD", "z", "1"],
        &["ZADD", "z", "NX", "XX", "1", "m"],
        &["ZUNIONSTORE", "d", "-1", "a"],
        &["ZUNIONSTORE", "d", "99999999999", "a"],
        &["ZUNIONSTORE", "d", "3", "a"],
        &["ZUNION", "0"],
        &["ZUNION", "2147483647", "a"],
        &["ZINTER", "-2147483648", "a"],
        &["SINTERCARD", "0"],
        &["SINTERCARD", "5", "a"],
        &["LMPOP", "2", "a"],
        &["LMPOP", "99", "a", "LEFT"],
        &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
        &["NO-SUCH-COMMAND"],
        &["NO-SUCH-COMMAND", "k", "v"],
        &[""],
        &["OBJECT"],
        &["OBJECT", "ENCODING", "k"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "NO-SUCH-SUBCOMMAND", "k"],
        &["OBJECT", "HELP"],
        &["MEMORY", "USAGE"],
        &["MEMORY", "USAGE", "k", "SAMPLES", "0"],
        &["XREAD", "STREAMS", "s", "0"],
        &["XREAD", "STREAMS", "s"],
        &["XREAD", "STREAMS"],
        &["XREAD", "COUNT", "x", "STREAMS", "a", "b", "c"],
        &["XREAD", "STREAMS", "s1", "s2", "s3", "0", "0", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g"],
        &["XADD", "s", "*"],
        &["SORT", "k"],
        &["SORT", "k", "BY", "w_*", "GET", "#", "STORE", "dst"],
        &["SORT", "k", "STORE"],
        &["SORT"],
        &["SORT_RO", "k", "GET"],
        &["MIGRATE"],
        &["MIGRATE", "127.0.0.1"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "abc"],
        &[
            "MIGRATE",
            "127.0.0.1",
            "1",
            "",
            "0",
            "abc",
            "KEYS",
            "a",
            "b",
        ],
        &["MIGRATE", "127.0.0.1", "1", "", "0", "abc", "KEYS"],
        &[
            "MIGRATE",
            "127.0.0.1",
            "1",
            "",
            "0",
            "abc",
            "AUTH2",
            "u",
            "p",
            "KEYS",
            "a",
        ],
        &["EVAL"],
        &["EVAL", "return 1"],
        &["EVAL", "return 1", "-1"],
        &["EVAL", "return 1", "5", "a"],
        &["EVAL", "return 1", "abc"],
        &["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"],
        &["EVAL", "return redis.call('GET')", "0"],
        &["EVAL", "return redis.call('MGET')", "0"],
        &["EVAL", "return redis.call('NO-SUCH-COMMAND', 'k')", "0"],
        &[
            "EVALSHA",
            "0000000000000000000000000000000000000000",
            "1",
            "k",
        ],
        &["FCALL", "nofunc", "1", "k"],
        &["FCALL", "nofunc", "-1"],
        &["EXEC"],
        &["DISCARD"],
        &["WATCH"],
        &["UNWATCH"],
        &["COMMAND", "GETKEYS"],
        &["COMMAND", "GETKEYS", "GET"],
        &["COMMAND", "GETKEYS", "SORT", "k", "STORE"],
        &["COMMAND", "INFO", "no-such"],
        &["CONFIG"],
        &["CONFIG", "GET"],
        &["CLIENT", "NO-SUCH"],
        &["XINFO", "STREAM"],
        &["GEORADIUS", "g", "0", "0", "1", "km", "STORE"],
        &[
            "GEORADIUS",
            "g",
            "0",
            "0",
            "1",
            "km",
            "STORE",
            "d",
            "STOREDIST",
            "e",
        ],
        &["HOTKEY.TOP", "COUNT"],
        &["HOTKEY.TOP", "COUNT", "999999999999999999999"],
        &["HOTKEY.TOP", "DB", "2147483648"],
        &["hotkey.top", "count", "1"],
        &["SELECT", "99"],
        &["SELECT", "-1"],
        &["PING", "a", "b", "c"],
    ];
    let mut commands: Vec<Vec<Vec<u8>>> = text
        .iter()
        .map(|c| c.iter().map(|a| a.as_bytes().to_vec()).collect())
        .collect();
    // Binary junk as command names and keys.
    commands.push(vec![b"\x00\xff\r\n".to_vec(), b"k".to_vec()]);
    commands.push(vec![b"GET".to_vec(), b"\x00\xff\r\n".to_vec()]);
    // Many keys in one command.
    let mut mget = vec![b"MGET".to_vec()];
    mget.extend((0..1000).map(|i| format!("many:{i}").into_bytes()));
    commands.push(mget);
    let mut get = vec![b"GET".to_vec()];
    get.extend((0..1000).map(|i| format!("many:{i}").into_bytes()));
    commands.push(get);
    // Empty key names.
    commands.push(vec![b"SET".to_vec(), Vec::new(), b"v".to_vec()]);
    commands.push(vec![b"GET".to_vec(), Vec::new()]);
    commands.push(vec![b"MGET".to_vec(), Vec::new(), Vec::new()]);
    commands
}

fn run(conn: &mut redis::Connection, args: &[Vec<u8>]) {
    // `Cmd::new()` + the name as the first argument keeps binary command names byte-exact.
    let mut cmd = redis::Cmd::new();
    for a in args {
        cmd.arg(a);
    }
    run_cmd(conn, &cmd);
}

#[test]
fn odd_commands_leave_the_server_up() {
    let mut server = Server::start();
    let mut conn = server.conn();
    let commands = odd_commands();
    // Every command once, in order, then a few thousand drawn at random.
    for args in &commands {
        run(&mut conn, args);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        run(&mut conn, &commands[rng.below(commands.len())]);
    }
    // A 2 MB key name, longer than max-key-bytes: counted as too long, never tracked.
    let huge = vec![b'h'; 2 * 1024 * 1024];
    for cmd in ["SET", "GET", "DEL"] {
        let mut c = redis::cmd(cmd);
        c.arg(&huge);
        if cmd == "SET" {
            c.arg("v");
        }
        run_cmd(&mut conn, &c);
    }
    let mut c = redis::cmd("MGET");
    c.arg(&huge).arg(&huge).arg("small");
    run_cmd(&mut conn, &c);

    assert!(server.is_up(), "the server died:\n{}", server.log_tail());
    let mut conn = server.conn();
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
    let entries = top_all(&mut conn);
    assert!(
        !entries.is_empty(),
        "TOP still answers with the keys it saw"
    );
    assert!(
        entries.iter().all(|e| e.key.len() <= 1024),
        "a key over max-key-bytes is tracked"
    );
    let info = info_hotkey(&mut conn);
    let too_long: f64 = info["keys_too_long"].parse().unwrap_or(0.0);
    assert!(too_long >= 5.0, "the 2 MB key counts as too long: {info:?}");
}

fn run_cmd(conn: &mut redis::Connection, cmd: &redis::Cmd) {
    if let Err(e) = cmd.query::<redis::Value>(conn) {
        assert!(
            !(e.is_io_error() || e.is_connection_dropped()),
            "the server dropped the connection: {e}"
        );
    }
}
