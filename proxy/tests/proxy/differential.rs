//! The same commands sent to a server directly and through the proxy (to a twin server) give
//! byte-identical replies, with RESP2 and RESP3, while keys go hot (served from the cache)
//! in the middle of the run.

use hotkey_testkit::Server;

use crate::common::{Proxy, master, pin};
use crate::raw::Raw;

/// Words of one command; `{}`-free, binary bytes as escapes in the literal.
type Command = &'static [&'static [u8]];

/// Every data type, reads and writes, errors; the keys `hot:*` are pinned halfway.
const DATA: &[Command] = &[
    &[b"SET", b"hot:s", b"v0"],
    &[b"SET", b"s:bin\x00\xff", b"\r\n\x00"],
    &[b"GET", b"s:bin\x00\xff"],
    &[b"APPEND", b"hot:s", b"+a"],
    &[b"GETRANGE", b"hot:s", b"0", b"-2"],
    &[b"STRLEN", b"hot:s"],
    &[b"INCR", b"n"],
    &[b"INCRBYFLOAT", b"f", b"1.5"],
    &[b"MSET", b"m1", b"a", b"m2", b"b"],
    &[b"MGET", b"m1", b"m2", b"missing"],
    &[b"GET", b"missing"],
    &[b"SETNX", b"m1", b"z"],
    &[b"GETDEL", b"m2"],
    &[b"EXPIRE", b"m1", b"10000"],
    &[b"TTL", b"m1"],
    &[b"RPUSH", b"hot:l", b"a", b"b", b"c"],
    &[b"LRANGE", b"hot:l", b"0", b"-1"],
    &[b"LPOP", b"hot:l", b"2"],
    &[b"LINDEX", b"hot:l", b"0"],
    &[b"HSET", b"hot:h", b"f1", b"1", b"f2", b"2"],
    &[b"HGETALL", b"hot:h"],
    &[b"HMGET", b"hot:h", b"f1", b"nope"],
    &[b"HINCRBYFLOAT", b"hot:h", b"f1", b"0.25"],
    &[b"SADD", b"hot:set", b"x", b"y"],
    &[b"SISMEMBER", b"hot:set", b"x"],
    &[b"SMISMEMBER", b"hot:set", b"x", b"q"],
    &[b"SCARD", b"hot:set"],
    &[b"ZADD", b"hot:z", b"1", b"a", b"2.5", b"b"],
    &[b"ZRANGE", b"hot:z", b"0", b"-1", b"WITHSCORES"],
    &[b"ZSCORE", b"hot:z", b"b"],
    &[b"ZSCORE", b"hot:z", b"none"],
    &[b"ZRANK", b"hot:z", b"b"],
    &[b"ZINCRBY", b"hot:z", b"1", b"a"],
    &[b"XADD", b"st", b"1-1", b"f", b"v"],
    &[b"XADD", b"st", b"2-1", b"g", b"w"],
    &[b"XRANGE", b"st", b"-", b"+"],
    &[b"XLEN", b"st"],
    &[b"XREAD", b"COUNT", b"1", b"STREAMS", b"st", b"0"],
    &[b"XGROUP", b"CREATE", b"st", b"g1", b"0"],
    &[
        b"XREADGROUP",
        b"GROUP",
        b"g1",
        b"c1",
        b"STREAMS",
        b"st",
        b">",
    ],
    &[b"XACK", b"st", b"g1", b"1-1"],
    &[b"SETBIT", b"bits", b"7", b"1"],
    &[b"BITCOUNT", b"bits"],
    &[b"PFADD", b"hll", b"a", b"b"],
    &[b"PFCOUNT", b"hll"],
    &[b"GEOADD", b"geo", b"13.361389", b"38.115556", b"Palermo"],
    &[b"GEOPOS", b"geo", b"Palermo", b"Nowhere"],
    &[
        b"EVAL",
        b"return {1, 'two', {3}, redis.call('GET', KEYS[1])}",
        b"1",
        b"hot:s",
    ],
    &[b"EVAL", b"return redis.call('INCR', KEYS[1])", b"1", b"n"],
    &[b"EVAL", b"return {err='boom'}", b"0"],
    &[
        b"EVAL_RO",
        b"return redis.call('GET', KEYS[1])",
        b"1",
        b"hot:s",
    ],
    &[b"LPUSH", b"hot:s", b"x"],
    &[b"NOSUCHCOMMAND", b"x"],
    &[b"GET"],
    &[b"PING"],
    &[b"ECHO", b"e\x00"],
    &[b"EXISTS", b"hot:s", b"missing"],
    &[b"TYPE", b"hot:z"],
    &[b"BLPOP", b"hot:l", b"1"],
    &[b"BLPOP", b"empty", b"0.01"],
    &[b"WAIT", b"0", b"0"],
];

/// After the pin: hot reads (from the cache, a second read from the same entry) between
/// writes through the proxy.
const HOT: &[Command] = &[
    &[b"GET", b"hot:s"],
    &[b"GET", b"hot:s"],
    &[b"SET", b"hot:s", b"v1"],
    &[b"GET", b"hot:s"],
    &[b"GET", b"hot:s"],
    &[b"HGETALL", b"hot:h"],
    &[b"HGETALL", b"hot:h"],
    &[b"HSET", b"hot:h", b"f3", b"3"],
    &[b"HGETALL", b"hot:h"],
    &[b"ZRANGE", b"hot:z", b"0", b"-1", b"WITHSCORES"],
    &[b"ZADD", b"hot:z", b"9", b"c"],
    &[b"ZRANGE", b"hot:z", b"0", b"-1", b"WITHSCORES"],
    &[b"ZSCORE", b"hot:z", b"c"],
    &[b"SMISMEMBER", b"hot:set", b"x", b"q"],
    &[b"SREM", b"hot:set", b"x"],
    &[b"SMISMEMBER", b"hot:set", b"x", b"q"],
    &[b"LRANGE", b"hot:l", b"0", b"-1"],
    &[b"RPUSH", b"hot:l", b"d"],
    &[b"LRANGE", b"hot:l", b"0", b"-1"],
    &[
        b"EVAL",
        b"return redis.call('SET', KEYS[1], 'by-script')",
        b"1",
        b"hot:s",
    ],
    &[b"GET", b"hot:s"],
    &[b"DEL", b"hot:s"],
    &[b"GET", b"hot:s"],
    &[b"GET", b"hot:s"],
    &[b"MGET", b"hot:s", b"hot:l"],
    &[b"MULTI"],
    &[b"SET", b"hot:s", b"in-multi"],
    &[b"GET", b"hot:s"],
    &[b"EXEC"],
    &[b"GET", b"hot:s"],
    &[b"SUBSCRIBE", b"ch"],
    &[b"PING"],
    &[b"UNSUBSCRIBE", b"ch"],
    &[b"GET", b"hot:s"],
];

const HOT_KEYS: [&[u8]; 5] = [b"hot:s", b"hot:l", b"hot:h", b"hot:set", b"hot:z"];

/// Runs the corpus on `direct` and through `proxy`, in `protocol` (2 or 3); every reply
/// must be the same bytes.
fn compare(direct: &Server, behind: &Server, proxy: &Proxy, protocol: &[u8]) {
    let mut a = Raw::connect(direct.port);
    let mut b = Raw::connect(proxy.port);
    let hello: &[&[u8]] = &[b"HELLO", protocol];
    let (ha, hb) = (a.call(hello), b.call(hello));
    // HELLO's reply names the connection (`id`): only its shape is compared.
    assert_eq!(
        ha[..1],
        hb[..1],
        "HELLO: {:?} vs {:?}",
        lossy(&ha),
        lossy(&hb)
    );
    let check = |cmd: &[&[u8]], a: &mut Raw, b: &mut Raw| {
        let (ra, rb) = (a.call(cmd), b.call(cmd));
        assert_eq!(
            lossy(&ra),
            lossy(&rb),
            "RESP{}: {:?} differs (direct, then proxy)",
            String::from_utf8_lossy(protocol),
            cmd.iter().map(|w| lossy(w)).collect::<Vec<_>>()
        );
    };
    for cmd in DATA {
        check(cmd, &mut a, &mut b);
    }
    for key in HOT_KEYS {
        pin(direct, key);
        pin(behind, key);
    }
    // The pins reach the proxy by the module's events; then reads are served by its cache.
    hotkey_testkit::wait_until(
        "the proxy hears of the hot keys",
        crate::common::WAIT,
        || {
            let hot = proxy.metric("hotkey_proxy_hot_keys");
            hotkey_testkit::check(hot.unwrap_or(0.0) >= HOT_KEYS.len() as f64, || hot)
        },
    );
    for cmd in HOT {
        check(cmd, &mut a, &mut b);
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn replies_through_the_proxy_are_the_servers_byte_for_byte_with_resp2() {
    let args = [("cache-ttl-ms", "60000")];
    let (direct, behind) = (master(&args), master(&args));
    // One connection writes and reads: without a read-your-writes window its hot reads are
    // cache hits (a write through the proxy drops the cached reply before it is acknowledged).
    let proxy = Proxy::start(&behind, &["--read-your-writes", "0s"]);
    compare(&direct, &behind, &proxy, b"2");
    assert!(
        proxy.metric("hotkey_proxy_cache_hits_total").unwrap_or(0.0) > 0.0,
        "the hot reads were served from the cache:\n{}",
        proxy.metrics()
    );
}

#[test]
fn replies_through_the_proxy_are_the_servers_byte_for_byte_with_resp3() {
    let args = [("cache-ttl-ms", "60000")];
    let (direct, behind) = (master(&args), master(&args));
    // One connection writes and reads: without a read-your-writes window its hot reads are
    // cache hits (a write through the proxy drops the cached reply before it is acknowledged).
    // One thread: the runtime `--threads 1` gets (the RESP2 run has one worker per core).
    let proxy = Proxy::start(&behind, &["--read-your-writes", "0s", "--threads", "1"]);
    compare(&direct, &behind, &proxy, b"3");
    assert!(
        proxy.metric("hotkey_proxy_cache_hits_total").unwrap_or(0.0) > 0.0,
        "the hot reads were served from the cache:\n{}",
        proxy.metrics()
    );
}
