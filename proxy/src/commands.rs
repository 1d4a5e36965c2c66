//! What the proxy does with a command before any routing: the few it answers itself (they
//! change or read the client's own connection state, which on a shared upstream connection
//! would leak into every other client's), the ones that give the client a connection of its
//! own, and the ones it refuses. Everything else is routed by the hot set.

use bytes::Bytes;

/// What to do with one command of a client on the shared connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Routed by the hot set over the shared connections (or a blocking command's own).
    Route,
    /// `QUIT`: `+OK`, then the connection closes.
    Quit,
    /// `RESET`: the client's protocol back to RESP2, its name cleared, `+RESET`.
    Reset,
    /// `HELLO [2|3]` with neither `AUTH` nor `SETNAME`: the server's answer for that protocol,
    /// and the client speaks it from then on.
    Hello { protocol: Option<Bytes> },
    /// `AUTH [user] password`.
    Auth {
        user: Option<Bytes>,
        password: Bytes,
    },
    /// `SELECT db`.
    Select { db: Bytes },
    /// `CLIENT SETNAME name`, kept by the proxy.
    SetName { name: Bytes },
    /// `CLIENT GETNAME`.
    GetName,
    /// From this command on the client holds state on its connection (a transaction,
    /// `WATCH`, pub/sub, its own tracking, `MONITOR`, `HELLO … AUTH|SETNAME`, the other
    /// `CLIENT` subcommands): it gets an upstream connection of its own, this command first.
    Tunnel,
    /// A command that cannot be proxied; the text says why.
    Refuse(&'static str),
}

/// Replication's own handshake: a replica must talk to its master directly.
pub const NO_REPLICATION: &str = "ERR hotkey-proxy: SYNC, PSYNC and REPLCONF cannot be proxied: connect the replica to the master";

/// The commands that give the client a connection of its own (see [`Action::Tunnel`]), by
/// name. So do the `CLIENT` subcommands of [`CLIENT_TUNNELED`].
pub const TUNNELED: [&str; 9] = [
    "multi",
    "watch",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "monitor",
    "readonly",
    "readwrite",
    "asking",
];

/// The `CLIENT` subcommands about the calling connection itself (its id, its replies, its
/// tracking, its eviction), which must reach the server on the client's own connection. The
/// others (`LIST`, `PAUSE`, `SETINFO`, `HELP`, and subcommands the server does not know, such
/// as redis-py 7's `MAINT_NOTIFICATIONS` on Redis 7, which it answers with an error) go over
/// the shared connection, where the server answers them as it would the client.
pub const CLIENT_TUNNELED: [&str; 10] = [
    "id",
    "info",
    "kill",
    "reply",
    "tracking",
    "caching",
    "getredir",
    "trackinginfo",
    "no-evict",
    "no-touch",
];

/// The commands the proxy refuses (see [`NO_REPLICATION`]).
pub const REFUSED: [&str; 3] = ["sync", "psync", "replconf"];

/// What to do with `args` (the command name first; never empty).
pub fn classify(args: &[Bytes]) -> Action {
    let Some(name) = args.first() else {
        return Action::Route;
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    if is("quit") {
        return Action::Quit;
    }
    if is("reset") && args.len() == 1 {
        return Action::Reset;
    }
    if is("hello") {
        return hello(args);
    }
    if is("auth") {
        return match args {
            [_, password] => Action::Auth {
                user: None,
                password: password.clone(),
            },
            [_, user, password] => Action::Auth {
                user: Some(user.clone()),
                password: password.clone(),
            },
            // The server's own arity error.
            _ => Action::Route,
        };
    }
    if is("select") && args.len() == 2 {
        return Action::Select {
            db: args[1].clone(),
        };
    }
    if is("client") {
        return client(args);
    }
    if TUNNELED.iter().any(|t| is(t)) {
        return Action::Tunnel;
    }
    if REFUSED.iter().any(|r| is(r)) {
        return Action::Refuse(NO_REPLICATION);
    }
    Action::Route
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
fn hello(args: &[Bytes]) -> Action {
    match args {
        [_] => Action::Hello { protocol: None },
        [_, protocol] => Action::Hello {
            protocol: Some(protocol.clone()),
        },
        // AUTH or SETNAME (or a syntax error the server will name): its own connection.
        _ => Action::Tunnel,
    }
}

/// `CLIENT <subcommand> …`.
fn client(args: &[Bytes]) -> Action {
    let Some(sub) = args.get(1) else {
        // The server's own arity error.
        return Action::Route;
    };
    let is = |word: &str| sub.eq_ignore_ascii_case(word.as_bytes());
    match args.len() {
        3 if is("setname") => Action::SetName {
            name: args[2].clone(),
        },
        2 if is("getname") => Action::GetName,
        _ if CLIENT_TUNNELED.iter().any(|t| is(t)) => Action::Tunnel,
        // Among them the library's name and version (`SETINFO`, which redis-py and others
        // send on connect): harmless on the shared connection.
        _ => Action::Route,
    }
}

/// Whether `name` is a valid client name, as the server checks it (`CLIENT SETNAME`): no
/// spaces, newlines or other characters outside `!`..`~`.
pub fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// The server's reply to a bad client name.
pub const BAD_CLIENT_NAME: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn connection_state_commands_are_answered_here() {
        assert_eq!(classify(&args(&["QUIT"])), Action::Quit);
        assert_eq!(classify(&args(&["reset"])), Action::Reset);
        assert_eq!(
            classify(&args(&["HELLO"])),
            Action::Hello { protocol: None }
        );
        assert_eq!(
            classify(&args(&["hello", "3"])),
            Action::Hello {
                protocol: Some(Bytes::from_static(b"3"))
            }
        );
        assert_eq!(
            classify(&args(&["AUTH", "pw"])),
            Action::Auth {
                user: None,
                password: Bytes::from_static(b"pw")
            }
        );
        assert_eq!(
            classify(&args(&["auth", "ada", "pw"])),
            Action::Auth {
                user: Some(Bytes::from_static(b"ada")),
                password: Bytes::from_static(b"pw")
            }
        );
        assert_eq!(
            classify(&args(&["SELECT", "0"])),
            Action::Select {
                db: Bytes::from_static(b"0")
            }
        );
        assert_eq!(
            classify(&args(&["client", "SETNAME", "n"])),
            Action::SetName {
                name: Bytes::from_static(b"n")
            }
        );
        assert_eq!(classify(&args(&["CLIENT", "GETNAME"])), Action::GetName);
    }

    #[test]
    fn state_holding_commands_get_a_connection_of_their_own() {
        for words in [
            &["MULTI"][..],
            &["watch", "k"],
            &["SUBSCRIBE", "c"],
            &["psubscribe", "c*"],
            &["SSUBSCRIBE", "c"],
            &["MONITOR"],
            &["CLIENT", "TRACKING", "on"],
            &["CLIENT", "ID"],
            &["CLIENT", "REPLY", "OFF"],
            &["HELLO", "3", "AUTH", "u", "p"],
            &["HELLO", "2", "SETNAME", "n"],
        ] {
            assert_eq!(classify(&args(words)), Action::Tunnel, "{words:?}");
        }
    }

    #[test]
    fn replication_is_refused_and_the_rest_routed() {
        for words in [
            &["SYNC"][..],
            &["psync", "?", "-1"],
            &["REPLCONF", "ack", "1"],
        ] {
            assert_eq!(
                classify(&args(words)),
                Action::Refuse(NO_REPLICATION),
                "{words:?}"
            );
        }
        for words in [
            &["GET", "k"][..],
            &["EXEC"],
            &["CLIENT", "SETINFO", "LIB-NAME", "x"],
            &["CLIENT", "MAINT_NOTIFICATIONS", "ON"],
            &["client", "list"],
            &["AUTH"],
            &["SELECT"],
            &["RESET", "x"],
        ] {
            assert_eq!(classify(&args(words)), Action::Route, "{words:?}");
        }
    }

    #[test]
    fn client_names_follow_the_server_rule() {
        assert!(valid_client_name(b"worker-1"));
        assert!(valid_client_name(b""));
        assert!(!valid_client_name(b"a b"));
        assert!(!valid_client_name(b"a\nb"));
        assert!(!valid_client_name("é".as_bytes()));
    }
}
