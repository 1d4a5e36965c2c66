//! Property tests of the argument parsers of the `HOTKEY.*` commands and of the `loadmodule`
//! argument check: on any bytes they return a value or an error, never panic (a panic on the
//! server's thread would take the server down), every error text is short printable ASCII (an
//! error is sent as a simple error, which cannot carry CR, LF or other bytes), and valid
//! arguments, in any order and letter case, parse to what they say.

use hotkey::commands::pin::Pin;
use hotkey::commands::report;
use hotkey::commands::route::{Op, Route};
use hotkey::commands::top::Top;
use hotkey::commands::unpin::Unpin;
use hotkey::config::check_module_args;
use hotkey::tracker::{Order, Window};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// The longest error text a parser may produce: the longest fixed text plus a quote of at
/// most 64 bytes of user input, each byte shown as at most four characters (`\xNN`).
const MAX_ERROR_LEN: usize = 100 + 64 * 4;

/// The option names of all the commands, and words near them.
const WORDS: [&str; 10] = [
    "COUNT", "BY", "DB", "READ", "WRITE", "TTL", "total", "reads", "writes", "LIMIT",
];

/// Numbers at and past the edges of every numeric argument.
const NUMBERS: [&str; 20] = [
    "0",
    "1",
    "-1",
    "15",
    "16",
    "315360000",
    "315360001",
    "1000000000000",
    "1000000000001",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "1e309",
    "nan",
    "inf",
    "+1",
    " 1",
    "1.5",
    "0x10",
];

/// Byte strings a client may send that plain text does not cover.
const HOSTILE: [&[u8]; 14] = [
    b"",
    b"\xc4\x80",
    "é".as_bytes(),
    "😀".as_bytes(),
    b"\xc4",
    b"\xff\xfe",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\x00",
    b"a\x00b",
    b"\r\n",
    b"\r\n-ERR fake\r\n*1\r\n$4\r\nPING\r\n",
    b"\x1b[31m",
    b"\x7f",
];

/// `word` with each letter's case chosen at random.
fn odd_case(word: &'static str) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<bool>(), word.len()).prop_map(move |upper| {
        word.bytes()
            .zip(upper)
            .map(|(b, u)| {
                if u {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                }
            })
            .collect()
    })
}

/// One argument: an option name, an edge number, a hostile string, a non-ASCII option, random
/// bytes, or a long run of one byte.
fn argument() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(&WORDS[..]).prop_flat_map(odd_case),
        2 => select(&NUMBERS[..]).prop_map(|n| n.as_bytes().to_vec()),
        2 => select(&HOSTILE[..]).prop_map(<[u8]>::to_vec),
        1 => (select(&WORDS[..]), select(&HOSTILE[..]))
            .prop_map(|(w, h)| [w.as_bytes(), h].concat()),
        2 => vec(any::<u8>(), 0..24),
        1 => (any::<u8>(), 60usize..70_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn arguments() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(argument(), 0..8)
}

fn slices(args: &[Vec<u8>]) -> Vec<&[u8]> {
    args.iter().map(Vec::as_slice).collect()
}

/// Fails the case unless `result` is a value or a short printable-ASCII error.
fn check_error<T, E: std::fmt::Display>(
    parser: &str,
    result: Result<T, E>,
) -> Result<(), TestCaseError> {
    if let Err(e) = result.map_err(|e| e.to_string()) {
        prop_assert!(
            e.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{parser}: error text with a byte outside printable ASCII: {e:?}"
        );
        prop_assert!(
            e.len() <= MAX_ERROR_LEN,
            "{parser}: error of {} bytes (at most {MAX_ERROR_LEN}): {:?}…",
            e.len(),
            e.chars().take(120).collect::<String>()
        );
        prop_assert!(!e.is_empty(), "{parser}: an empty error text");
    }
    Ok(())
}

/// The options of a command as `[name, value]` groups, shuffled, each name in odd case.
fn options(groups: Vec<Vec<Vec<u8>>>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    Just(groups)
        .prop_shuffle()
        .prop_map(|g| g.into_iter().flatten().collect())
}

fn option(name: &'static str, value: String) -> impl Strategy<Value = Vec<Vec<u8>>> {
    odd_case(name).prop_map(move |n| vec![n, value.clone().into_bytes()])
}

fn order_word(order: &Order) -> &'static str {
    match order {
        Order::Total => "total",
        Order::Reads => "reads",
        Order::Writes => "writes",
    }
}

/// A valid `HOTKEY.TOP`: its arguments and what they mean.
fn valid_top() -> impl Strategy<Value = (Vec<Vec<u8>>, u32, Top)> {
    let order = select(vec![Order::Total, Order::Reads, Order::Writes]);
    (
        1u32..=64,
        proptest::option::of(1usize..=usize::MAX),
        proptest::option::of(order),
        proptest::option::of(select(vec![1u64, 10, 60])),
    )
        .prop_flat_map(|(databases, count, order, window)| {
            (
                Just(databases),
                Just(count),
                Just(order),
                Just(window),
                proptest::option::of(0..databases),
            )
        })
        .prop_flat_map(|(databases, count, order, window, db)| {
            let mut groups = Vec::new();
            if let Some(c) = count {
                groups.push(option("COUNT", c.to_string()).boxed());
            }
            if let Some(o) = &order {
                groups.push(option("BY", order_word(o).to_string()).boxed());
            }
            if let Some(d) = db {
                groups.push(option("DB", d.to_string()).boxed());
            }
            if let Some(w) = window {
                groups.push(option("WINDOW", w.to_string()).boxed());
            }
            let top = Top {
                count: count.unwrap_or(10),
                order: order.unwrap_or(Order::Total),
                db,
                window: Window::from_seconds(window.unwrap_or(60)).expect("a window"),
            };
            (groups.prop_flat_map(options), Just(databases), Just(top))
        })
}

/// A key: any bytes, often an option name or a hostile string.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..32), argument()]
}

/// `cases` cases, and no regression file written into the source tree: a failure prints its
/// minimal input, which is what to turn into a unit test.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn no_parser_panics_and_every_error_is_short_printable_ascii(
        args in arguments(),
        databases in 1u32..=64,
        max_key_bytes in 1usize..=2048,
    ) {
        let args = slices(&args);
        check_error("HOTKEY.TOP", Top::parse(&args, databases))?;
        check_error("HOTKEY.ROUTE", Route::parse(&args, databases))?;
        check_error("HOTKEY.PIN", Pin::parse(&args, databases))?;
        check_error("HOTKEY.UNPIN", Unpin::parse(&args, databases))?;
        check_error("HOTKEY.REPORT", report::parse(&args, max_key_bytes))?;
        check_error("loadmodule", check_module_args(&args))?;
    }

    #[test]
    fn module_arguments_in_pairs_of_any_bytes_never_panic(
        pairs in vec((argument(), argument()), 0..6),
    ) {
        let args: Vec<Vec<u8>> = pairs.into_iter().flat_map(|(n, v)| [n, v]).collect();
        check_error("loadmodule", check_module_args(&slices(&args)))?;
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn valid_top_arguments_parse_to_their_values((args, databases, top) in valid_top()) {
        prop_assert_eq!(Top::parse(&slices(&args), databases), Ok(top));
    }

    #[test]
    fn valid_route_arguments_parse_to_their_values(
        key in key(),
        op in proptest::option::of(select(vec![Op::Read, Op::Write])),
        db in proptest::option::of(0u32..16),
        db_first in any::<bool>(),
        word_case in odd_case("write"),
    ) {
        let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some(op) = op {
            let word = if op == Op::Read { b"read".to_vec() } else { word_case };
            groups.push(vec![word]);
        }
        if let Some(d) = db {
            groups.push(vec![b"db".to_vec(), d.to_string().into_bytes()]);
        }
        if db_first {
            groups.reverse();
        }
        let args: Vec<Vec<u8>> = std::iter::once(key.clone())
            .chain(groups.into_iter().flatten())
            .collect();
        let expected = Route { key, op: op.unwrap_or(Op::Read), db };
        prop_assert_eq!(Route::parse(&slices(&args), 16), Ok(expected));
    }

    #[test]
    fn valid_pin_and_unpin_arguments_parse_to_their_values(
        key in key(),
        ttl in proptest::option::of(1u64..=315_360_000),
        db in proptest::option::of(0u32..16),
        ttl_name in odd_case("TTL"),
        db_name in odd_case("DB"),
        db_first in any::<bool>(),
    ) {
        let mut groups: Vec<Vec<Vec<u8>>> = Vec::new();
        if let Some(t) = ttl {
            groups.push(vec![ttl_name, t.to_string().into_bytes()]);
        }
        if let Some(d) = db {
            groups.push(vec![db_name.clone(), d.to_string().into_bytes()]);
        }
        if db_first {
            groups.reverse();
        }
        let args: Vec<Vec<u8>> = std::iter::once(key.clone())
            .chain(groups.into_iter().flatten())
            .collect();
        let expected = Pin { key: key.clone(), ttl_secs: ttl, db };
        prop_assert_eq!(Pin::parse(&slices(&args), 16), Ok(expected));

        let mut args = vec![key.clone()];
        if let Some(d) = db {
            args.extend([db_name, d.to_string().into_bytes()]);
        }
        prop_assert_eq!(Unpin::parse(&slices(&args), 16), Ok(Unpin { key, db }));
    }

    #[test]
    fn valid_reports_parse_to_their_pairs(
        pairs in vec((vec(any::<u8>(), 0..=64), 1u64..=1_000_000_000_000), 1..10),
    ) {
        let counts: Vec<Vec<u8>> = pairs.iter().map(|(_, c)| c.to_string().into_bytes()).collect();
        let args: Vec<&[u8]> = pairs
            .iter()
            .zip(&counts)
            .flat_map(|((k, _), c)| [k.as_slice(), c.as_slice()])
            .collect();
        let expected: Vec<(&[u8], u64)> = pairs.iter().map(|(k, c)| (k.as_slice(), *c)).collect();
        prop_assert_eq!(report::parse(&args, 64), Ok(expected));
    }

    #[test]
    fn documented_module_arguments_are_accepted(
        pairs in vec(valid_module_argument(), 0..8),
    ) {
        let args: Vec<Vec<u8>> = pairs
            .into_iter()
            .flat_map(|(n, v)| [n.as_bytes().to_vec(), v.into_bytes()])
            .collect();
        prop_assert_eq!(check_module_args(&slices(&args)), Ok(()));
    }
}

/// A `name value` pair the book's Configuration table allows.
fn valid_module_argument() -> impl Strategy<Value = (&'static str, String)> {
    let int = |name: &'static str, min: i64, max: i64| {
        (min..=max).prop_map(move |v| (name, v.to_string()))
    };
    prop_oneof![
        select(vec!["yes", "no"]).prop_map(|v| ("enabled", v.to_string())),
        int("capacity", 16, 1_048_576),
        int("half-life-ms", 10, 86_400_000),
        int("max-key-bytes", 1, 1_048_576),
        int("sample-quiet-ops", 0, 100_000_000),
        int("sample-max", 1, 65_536),
        int("tick-ms", 10, 10_000),
        int("hot-threshold", 0, 1_000_000_000),
        int("cooldown-ms", 0, 3_600_000),
        int("max-hot", 1, 100_000),
        int("cache-ttl-ms", 0, 3_600_000),
        int("heartbeat-ms", 100, 60_000),
        int("max-replica-lag-ms", 0, 3_600_000),
        int("max-replica-lag-bytes", 0, 1 << 40),
        (0.0f64..=1.0).prop_map(|v| ("hot-share", v.to_string())),
        (0.001f64..=1.0).prop_map(|v| ("cold-fraction", v.to_string())),
        "[a-z_:.-]{1,20}".prop_map(|v| ("channel", v)),
    ]
}
