//! `HOTKEY.REPORT key count [key count ...]`: reads of keys (in the caller's database) that a
//! router served off this node — from replicas or its cache — since its last report. They
//! count toward each key's read rate and the node's, so a key whose reads moved away stays
//! hot while the demand lasts. All or nothing: one bad pair rejects the whole report.
//! Replies with the number of keys counted.

use crate::ffi::{Arg, ArgKind, CommandDocs};
use redis_module::Context;

use super::{CommandError, CommandResult, Frame, parse_u64, visible_to, with_state};
use crate::ffi;

/// What `COMMAND DOCS` says. The keys are not declared as keys: one report carries keys of
/// many slots, which a cluster would refuse with `CROSSSLOT`; the module checks each key's
/// read permission itself, and in a cluster counts only keys of the slots the node serves.
pub const DOCS: CommandDocs = CommandDocs {
    summary: "Reports reads of keys that a router served off this node (replicas or its cache), so they stay hot.",
    complexity: "O(N) where N is the number of keys",
    since: "0.1.0",
    arity: -3,
    keyed: false,
    args: &[Arg::required(
        "report",
        ArgKind::Block(&[
            Arg::required("key", ArgKind::String),
            Arg::required("count", ArgKind::Integer),
        ]),
    )
    .multiple()],
};

/// The largest count one pair may carry (about what one process can serve in hours).
pub const MAX_COUNT: u64 = 1_000_000_000_000;

/// Parses the pairs; `max_key_bytes` bounds key names, as for counted keys.
pub fn parse<'a>(
    args: &[&'a [u8]],
    max_key_bytes: usize,
) -> Result<Vec<(&'a [u8], u64)>, CommandError> {
    if args.is_empty() || !args.len().is_multiple_of(2) {
        return Err(CommandError::WrongArity {
            command: "hotkey.report",
        });
    }
    args.chunks_exact(2)
        .map(|pair| {
            let (key, count) = (pair[0], pair[1]);
            if key.len() > max_key_bytes {
                return Err(CommandError::KeyTooLong { max_key_bytes });
            }
            let count = parse_u64(count).filter(|c| (1..=MAX_COUNT).contains(c));
            Ok((key, count.ok_or(CommandError::BadReportCount)?))
        })
        .collect()
}

pub fn run(ctx: &Context, args: &[&[u8]]) -> CommandResult {
    let pairs = parse(args, with_state(|s| s.max_key_bytes())?)?;
    let visible = visible_to(ctx);
    if !pairs.iter().all(|(key, _)| visible(key)) {
        return Err(CommandError::NoPermission.into());
    }
    let db = ffi::selected_db(ctx);
    let counted = with_state(|s| s.report_reads(db, &pairs))?;
    Ok(Frame::count(counted as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_or_a_named_error() {
        let args: Vec<&[u8]> = vec![b"a", b"10", b"\xffb", b"1"];
        assert_eq!(
            parse(&args, 16),
            Ok(vec![(&b"a"[..], 10), (&b"\xffb"[..], 1)])
        );
        let err = |a: &[&[u8]]| parse(a, 4).unwrap_err();
        let arity = CommandError::WrongArity {
            command: "hotkey.report",
        };
        assert_eq!(err(&[]), arity);
        assert_eq!(err(&[b"a"]), arity);
        assert_eq!(err(&[b"a", b"0"]), CommandError::BadReportCount);
        assert_eq!(err(&[b"a", b"1", b"b", b"x"]), CommandError::BadReportCount);
        assert_eq!(err(&[b"a", b"1000000000001"]), CommandError::BadReportCount);
        assert_eq!(
            err(&[b"longer", b"1"]),
            CommandError::KeyTooLong { max_key_bytes: 4 }
        );
    }
}
