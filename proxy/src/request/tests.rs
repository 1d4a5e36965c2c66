use bytes::BytesMut;
use proptest::prelude::*;

use super::{Limits, ProtocolError, Request, parse};

/// Every request in `input`, parsed with the default limits; panics on an error.
fn all(input: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut buf = BytesMut::from(input);
    let mut requests = Vec::new();
    loop {
        match parse(&mut buf, &Limits::default()) {
            Ok(Some(request)) => requests.push(args(&request)),
            Ok(None) => break,
            Err(e) => panic!("{e} for {}", shown(input)),
        }
    }
    assert!(buf.is_empty(), "left over: {}", shown(&buf));
    requests
}

fn args(request: &Request) -> Vec<Vec<u8>> {
    request.args.iter().map(|a| a.to_vec()).collect()
}

fn error(input: &[u8]) -> ProtocolError {
    error_with(input, &Limits::default())
}

fn error_with(input: &[u8], limits: &Limits) -> ProtocolError {
    let mut buf = BytesMut::from(input);
    loop {
        match parse(&mut buf, limits) {
            Err(e) => return e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error for {}", shown(input)),
        }
    }
}

fn incomplete(input: &[u8]) {
    let mut buf = BytesMut::from(input);
    assert_eq!(
        parse(&mut buf, &Limits::default()),
        Ok(None),
        "{}",
        shown(input)
    );
    assert_eq!(&buf[..], input, "a partial request must stay in the buffer");
}

/// The start of `bytes`, for a failure message that stays readable.
fn shown(bytes: &[u8]) -> String {
    let start = &bytes[..bytes.len().min(60)];
    format!(
        "{:?} ({} bytes)",
        String::from_utf8_lossy(start),
        bytes.len()
    )
}

fn texts(requests: &[&[&str]]) -> Vec<Vec<Vec<u8>>> {
    requests
        .iter()
        .map(|r| r.iter().map(|a| a.as_bytes().to_vec()).collect())
        .collect()
}

#[test]
fn an_array_of_bulk_strings_is_one_request_whose_raw_is_its_bytes() {
    let input = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    let mut buf = BytesMut::from(&input[..]);
    let request = parse(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(args(&request), texts(&[&["GET", "k"]])[0]);
    assert_eq!(&request.raw[..], input);
    assert!(buf.is_empty());
}

#[test]
fn the_arguments_are_slices_of_the_raw_request() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$5\r\nvalue\r\n"[..]);
    let request = parse(&mut buf, &Limits::default()).unwrap().unwrap();
    let raw = request.raw.as_ptr_range();
    for arg in &request.args {
        assert!(raw.contains(&arg.as_ptr()), "{arg:?} is a copy");
    }
}

#[test]
fn binary_payloads_may_hold_line_ends_and_nul_bytes() {
    let input = b"*3\r\n$3\r\nSET\r\n$4\r\n\r\n\0\n\r\n$2\r\n*1\r\n";
    assert_eq!(
        all(input),
        vec![vec![b"SET".to_vec(), b"\r\n\0\n".to_vec(), b"*1".to_vec()]]
    );
}

#[test]
fn an_empty_bulk_string_is_an_empty_argument() {
    assert_eq!(
        all(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"),
        texts(&[&["ECHO", ""]])
    );
}

#[test]
fn a_pipeline_fed_byte_by_byte_gives_each_request_once_whole() {
    let input: &[u8] = b"*1\r\n$4\r\nPING\r\nGET \"a b\"\r\n\r\n*0\r\n*-1\r\n\
        *3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\nv\r\nv\r\nECHO 'x'\n";
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    for &byte in input {
        buf.extend_from_slice(&[byte]);
        while let Some(request) = parse(&mut buf, &Limits::default()).unwrap() {
            seen.push(args(&request));
        }
    }
    assert_eq!(
        seen,
        texts(&[
            &["PING"],
            &["GET", "a b"],
            &["SET", "k", "v\r\nv"],
            &["ECHO", "x"]
        ])
    );
    assert!(buf.is_empty());
}

#[test]
fn partial_requests_return_none_and_keep_their_bytes() {
    for input in [
        &b"*"[..],
        b"*2",
        b"*2\r",
        b"*2\r\n",
        b"*2\r\n$3",
        b"*2\r\n$3\r",
        b"*2\r\n$3\r\nGET",
        b"*2\r\n$3\r\nGET\r",
        b"*2\r\n$3\r\nGET\r\n$1\r\nk",
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\r",
        b"GET k",
        b"GET k\r",
        b"GET \"unclosed",
    ] {
        incomplete(input);
    }
}

#[test]
fn empty_inline_lines_and_empty_arrays_are_skipped() {
    assert_eq!(
        all(b"\r\n\n  \t\r\n*0\r\n*-1\r\n*-5\r\nPING\r\n"),
        texts(&[&["PING"]])
    );
    assert!(all(b"\r\n*0\r\n").is_empty());
}

#[test]
fn an_inline_request_is_reencoded_as_an_array() {
    let mut buf = BytesMut::from(&b"SET k  \"a b\"\r\n"[..]);
    let request = parse(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(
        &request.raw[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na b\r\n"
    );
    assert_eq!(args(&request), texts(&[&["SET", "k", "a b"]])[0]);
    let raw = request.raw.as_ptr_range();
    assert!(request.args.iter().all(|a| raw.contains(&a.as_ptr())));
}

#[test]
fn an_inline_line_may_end_with_a_bare_newline() {
    assert_eq!(all(b"PING\nECHO x\n"), texts(&[&["PING"], &["ECHO", "x"]]));
}

#[test]
fn inline_quotes_follow_sdssplitargs() {
    let cases: &[(&[u8], &[&[u8]])] = &[
        (
            b"ECHO \"a\\x41\\n\\r\\t\\b\\a\\\\\\\"\"",
            &[b"ECHO", b"aA\n\r\t\x08\x07\\\""],
        ),
        (b"ECHO \"\\xzz\"", &[b"ECHO", b"xzz"]),
        (b"ECHO \"\\q\"", &[b"ECHO", b"q"]),
        (b"ECHO 'it\\'s' '\\n'", &[b"ECHO", b"it's", b"\\n"]),
        (b"ECHO a\"b c\" d", &[b"ECHO", b"ab c", b"d"]),
        (b"ECHO \"\" ''", &[b"ECHO", b"", b""]),
        (b"ECHO \"x\"\t'y'", &[b"ECHO", b"x", b"y"]),
        (b"ECHO a\x0bb", &[b"ECHO", b"a\x0bb"]),
        (b"\x0b ECHO\r\rx", &[b"ECHO", b"x"]),
        (b"ECHO \xff\xfe", &[b"ECHO", b"\xff\xfe"]),
    ];
    for (line, expected) in cases {
        let mut input = line.to_vec();
        input.extend_from_slice(b"\r\n");
        let expected: Vec<Vec<u8>> = expected.iter().map(|a| a.to_vec()).collect();
        assert_eq!(
            all(&input),
            vec![expected],
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
}

#[test]
fn unbalanced_or_glued_quotes_are_a_protocol_error() {
    for line in [
        &b"GET \"a\r\n"[..],
        b"GET 'a\r\n",
        b"GET \"a\"b\r\n",
        b"GET 'a'b\r\n",
        b"GET a\"b\"c\r\n",
        b"GET \"a\\\"\r\n",
        b"GET \"a\\\r\n",
    ] {
        let e = error(line);
        assert_eq!(e, ProtocolError::UnbalancedQuotes, "{line:?}");
        assert_eq!(
            e.to_string(),
            "ERR Protocol error: unbalanced quotes in request"
        );
    }
}

#[test]
fn a_nul_byte_in_an_inline_line_hides_its_end_as_in_redis() {
    incomplete(b"ECHO a\0b\r\n");
}

#[test]
fn an_inline_request_without_a_newline_within_the_limit_is_too_big() {
    let limits = Limits::default();
    incomplete(&vec![b'x'; limits.max_inline_len]);
    let e = error(&vec![b'x'; limits.max_inline_len + 1]);
    assert_eq!(e.to_string(), "ERR Protocol error: too big inline request");
}

#[test]
fn a_long_inline_line_that_is_already_whole_is_accepted() {
    let mut input = b"ECHO ".to_vec();
    input.extend(vec![b'x'; 100_000]);
    input.extend_from_slice(b"\r\n");
    assert_eq!(all(&input)[0][1].len(), 100_000);
}

#[test]
fn bad_multibulk_lengths_are_refused() {
    for input in [
        &b"*\r\n"[..],
        b"*x\r\n",
        b"*1x\r\n",
        b"*+1\r\n",
        b"*01\r\n",
        b"*-0\r\n",
        b"* 1\r\n",
        b"*2147483648\r\n",
        b"*99999999999999999999\r\n",
    ] {
        let e = error(input);
        assert_eq!(e, ProtocolError::InvalidMultibulkLength, "{input:?}");
        assert_eq!(
            e.to_string(),
            "ERR Protocol error: invalid multibulk length"
        );
    }
}

#[test]
fn the_largest_multibulk_length_redis_takes_is_accepted() {
    incomplete(b"*2147483647\r\n");
}

#[test]
fn bad_bulk_lengths_are_refused() {
    for input in [
        &b"*1\r\n$\r\n"[..],
        b"*1\r\n$-1\r\n",
        b"*1\r\n$+4\r\nPING\r\n",
        b"*1\r\n$04\r\nPING\r\n",
        b"*1\r\n$4x\r\nPING\r\n",
        b"*1\r\n$536870913\r\n",
    ] {
        let e = error(input);
        assert_eq!(e, ProtocolError::InvalidBulkLength, "{input:?}");
        assert_eq!(e.to_string(), "ERR Protocol error: invalid bulk length");
    }
}

#[test]
fn a_bulk_length_over_the_limit_is_refused_before_its_payload_arrives() {
    let limits = Limits {
        max_bulk_len: 10,
        ..Limits::default()
    };
    assert_eq!(
        error_with(b"*1\r\n$11\r\n", &limits),
        ProtocolError::InvalidBulkLength
    );
    let mut buf = BytesMut::from(&b"*1\r\n$10\r\n"[..]);
    assert_eq!(parse(&mut buf, &limits), Ok(None));
    incomplete(b"*1\r\n$536870912\r\n");
}

#[test]
fn a_multibulk_length_over_the_limit_is_refused() {
    let limits = Limits {
        max_multibulk_len: 2,
        ..Limits::default()
    };
    assert_eq!(
        error_with(b"*3\r\n", &limits),
        ProtocolError::InvalidMultibulkLength
    );
    let mut buf = BytesMut::from(&b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"[..]);
    assert!(parse(&mut buf, &limits).unwrap().is_some());
}

#[test]
fn an_argument_that_is_not_a_bulk_string_names_the_byte_found() {
    let e = error(b"*2\r\n$3\r\nGET\r\n+x\r\n");
    assert_eq!(e, ProtocolError::ExpectedBulk(b'+'));
    assert_eq!(e.to_string(), "ERR Protocol error: expected '$', got '+'");
    assert_eq!(
        &e.to_reply()[..],
        b"-ERR Protocol error: expected '$', got '+'\r\n"
    );
    let e = error(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n");
    assert_eq!(e.to_string(), "ERR Protocol error: expected '$', got 'f'");
}

#[test]
fn the_reply_of_a_bad_byte_keeps_the_byte_but_not_a_line_end() {
    assert_eq!(
        &error(b"*1\r\n\xff\r\n").to_reply()[..],
        b"-ERR Protocol error: expected '$', got '\xff'\r\n"
    );
    let e = error(b"*1\r\n\n\r\n");
    assert_eq!(
        &e.to_reply()[..],
        b"-ERR Protocol error: expected '$', got ' '\r\n"
    );
}

#[test]
fn header_lines_without_an_end_within_the_limit_are_too_big() {
    let limit = Limits::default().max_inline_len;
    // The limit counts the `*` too, as Redis's does.
    let mut count = b"*".to_vec();
    count.extend(vec![b'1'; limit - 1]);
    incomplete(&count);
    count.push(b'1');
    assert_eq!(
        error(&count).to_string(),
        "ERR Protocol error: too big mbulk count string"
    );
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(vec![b'1'; limit - 1]);
    incomplete(&bulk);
    bulk.push(b'1');
    assert_eq!(
        error(&bulk).to_string(),
        "ERR Protocol error: too big bulk count string"
    );
}

#[test]
fn the_bytes_after_a_line_end_or_a_payload_are_skipped_unchecked_as_in_redis() {
    assert_eq!(all(b"*1\rx$4\r\nPING\r\n"), texts(&[&["PING"]]));
    assert_eq!(all(b"*1\r\n$4\r\nPINGxy"), texts(&[&["PING"]]));
}

#[test]
fn the_reply_of_each_error_is_its_text_as_a_frame() {
    assert_eq!(
        &ProtocolError::InvalidBulkLength.to_reply()[..],
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
}

/// A request in either form, with the arguments it must parse to.
fn request() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    let array =
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..5).prop_map(|args| {
            let mut raw = format!("*{}\r\n", args.len()).into_bytes();
            for arg in &args {
                raw.extend(format!("${}\r\n", arg.len()).into_bytes());
                raw.extend(arg);
                raw.extend(b"\r\n");
            }
            (raw, args)
        });
    let inline = prop::collection::vec("[a-zA-Z0-9]{1,8}", 1..5).prop_map(|words| {
        let raw = format!("{}\r\n", words.join(" ")).into_bytes();
        (raw, words.into_iter().map(String::into_bytes).collect())
    });
    prop_oneof![array, inline]
}

proptest! {
    #[test]
    fn any_pipeline_split_anywhere_parses_to_its_requests(
        requests in prop::collection::vec(request(), 1..6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let input: Vec<u8> = requests.iter().flat_map(|(raw, _)| raw.clone()).collect();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut buf = BytesMut::new();
        let mut seen = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&input[from..cut]);
            from = cut;
            while let Some(request) = parse(&mut buf, &Limits::default()).unwrap() {
                seen.push(args(&request));
            }
        }
        let expected: Vec<Vec<Vec<u8>>> = requests.into_iter().map(|(_, args)| args).collect();
        prop_assert_eq!(seen, expected);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut buf = BytesMut::from(&input[..]);
        while let Ok(Some(_)) = parse(&mut buf, &Limits::default()) {}
    }
}
