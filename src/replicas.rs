//! The replicas hot reads may go to, and which of them are fit to take them.
//!
//! Everything comes from the text of `INFO replication`, run on the master on every tick. The
//! master prints each replica's announced address (`replica-announce-ip` and
//! `replica-announce-port` when set), so the addresses here are the ones clients can reach even
//! behind NAT or in containers. `lag` is whole seconds since the replica's last `REPLCONF ACK`,
//! which replicas send once a second, so lag bounds are only meaningful to about one second.
//!
//! The text is the server's, not ours: parsing never panics, and a line it cannot read is
//! skipped rather than failing the whole reply.

use hotkey_protocol::Replica;

/// One replica as INFO replication shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Its announced address; may be IPv6.
    pub host: String,
    /// Its announced port.
    pub port: u16,
    /// `state=online`: only then does it stream the master's writes; in any other state it is
    /// still loading or waiting for a snapshot and its data may be missing.
    pub online: bool,
    /// The replication offset it last acknowledged, to measure how far behind it is in bytes.
    pub offset: u64,
    /// `lag` in milliseconds, so it compares with millisecond configs (1 s resolution).
    pub lag_ms: u64,
}

/// What INFO replication says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    /// `role:slave` (or `role:replica`): this node takes no writes, so it must not hand out
    /// replicas of its own; it follows its master instead.
    pub is_replica: bool,
    /// On a replica, the master it follows.
    pub master_host: Option<String>,
    /// On a replica, the master's port.
    pub master_port: Option<u16>,
    /// The master's offset, against which each replica's offset shows its byte lag.
    pub master_repl_offset: u64,
    /// In the order INFO lists them, so the healthy list is stable between ticks.
    pub replicas: Vec<ReplicaInfo>,
}

impl Replication {
    /// Reads INFO replication's text. Unknown fields are ignored and unreadable lines skipped,
    /// so a server that adds fields or a malformed line never costs us the other replicas.
    pub fn parse(text: &str) -> Replication {
        let mut out = Replication::default();
        for line in text.lines() {
            let Some((key, value)) = line.trim().split_once(':') else {
                continue;
            };
            match key {
                "role" => out.is_replica = matches!(value, "slave" | "replica"),
                "master_host" => out.master_host = Some(value.to_owned()),
                "master_port" => out.master_port = value.parse().ok(),
                "master_repl_offset" => out.master_repl_offset = value.parse().unwrap_or(0),
                _ if is_replica_key(key) => out.replicas.extend(parse_replica(value)),
                _ => {}
            }
        }
        out
    }
}

/// `slaveN` or `replicaN`; not `slave_repl_offset`, `replica_announced` and the like.
fn is_replica_key(key: &str) -> bool {
    let n = key
        .strip_prefix("slave")
        .or_else(|| key.strip_prefix("replica"));
    n.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `ip=…,port=…,state=…,offset=…,lag=…`. Items split on the first '=' only and the line on ','
/// only, because an IPv6 `ip` holds ':'. None when a field is missing or unreadable: a replica
/// we cannot judge must not take reads.
fn parse_replica(value: &str) -> Option<ReplicaInfo> {
    let (mut ip, mut port, mut state, mut offset, mut lag) = (None, None, None, None, None);
    for item in value.split(',') {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        match k.trim() {
            "ip" => ip = Some(v.trim()),
            "port" => port = Some(v.trim()),
            "state" => state = Some(v.trim()),
            "offset" => offset = Some(v.trim()),
            "lag" => lag = Some(v.trim()),
            _ => {}
        }
    }
    let host = ip.filter(|ip| !ip.is_empty())?.to_owned();
    let port = port?.parse::<u16>().ok().filter(|&p| p != 0)?;
    // The server computes lag from wall-clock time; a clock step back may make it negative.
    let lag = lag?.parse::<i64>().ok()?.max(0).unsigned_abs();
    Some(ReplicaInfo {
        host,
        port,
        online: state? == "online",
        offset: offset?.parse().ok()?,
        lag_ms: lag.saturating_mul(1000),
    })
}

/// The bounds a replica must meet to take hot reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// Longest time since its last acknowledgement; a replica that stopped acknowledging may
    /// be cut off, and reads from it would be arbitrarily stale.
    pub max_lag_ms: u64,
    /// Most bytes it may trail the master by; 0 for no bound, since bytes mean little to a
    /// user who only cares about time.
    pub max_lag_bytes: u64,
}

/// The replicas and which of them are healthy; hands healthy ones out round-robin.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSet {
    all: Vec<ReplicaInfo>,
    healthy: Vec<ReplicaInfo>,
    /// Counts handed-out replicas; kept across updates so the rotation carries on.
    cursor: usize,
    is_replica: bool,
    master: Option<(String, u16)>,
}

impl ReplicaSet {
    /// Replaces what is known with `info`, judged by `rules`. Returns true when the list of
    /// healthy replicas (host, port, in order) changed, so the caller announces only real
    /// changes: lag moves every second and would otherwise flood clients with announcements.
    pub fn update(&mut self, info: &Replication, rules: HealthRules) -> bool {
        let healthy: Vec<ReplicaInfo> = info
            .replicas
            .iter()
            .filter(|r| {
                r.online
                    && r.lag_ms <= rules.max_lag_ms
                    && (rules.max_lag_bytes == 0
                        || info.master_repl_offset.saturating_sub(r.offset) <= rules.max_lag_bytes)
            })
            .cloned()
            .collect();
        let address = |r: &ReplicaInfo| (r.host.clone(), r.port);
        let changed = !self
            .healthy
            .iter()
            .map(address)
            .eq(healthy.iter().map(address));
        self.all = info.replicas.clone();
        self.healthy = healthy;
        self.is_replica = info.is_replica;
        self.master = match (&info.master_host, info.master_port) {
            (Some(host), Some(port)) if info.is_replica => Some((host.clone(), port)),
            _ => None,
        };
        changed
    }

    /// The healthy replicas now, as the wire format shows them, for the `replicas` event.
    pub fn healthy(&self) -> Vec<Replica> {
        self.healthy.iter().map(to_wire).collect()
    }

    /// How many are healthy, for INFO and to decide whether reads can leave the master at all.
    pub fn healthy_count(&self) -> usize {
        self.healthy.len()
    }

    /// The next healthy replica, round-robin, or None when there is none. A counter modulo the
    /// healthy count, so a replica leaving or joining does not send everyone back to the first
    /// one and overload it.
    pub fn next_healthy(&mut self) -> Option<Replica> {
        let n = self.healthy.len();
        if n == 0 {
            return None;
        }
        let pick = self.healthy.get(self.cursor % n).map(to_wire);
        self.cursor = self.cursor.wrapping_add(1);
        pick
    }

    /// Every replica INFO listed, healthy or not, so INFO and debugging can show why one is
    /// left out.
    pub fn all(&self) -> &[ReplicaInfo] {
        &self.all
    }

    /// This node is a replica: its master's address, from INFO, so hot writes can be sent there.
    pub fn master_address(&self) -> Option<(String, u16)> {
        self.master.clone()
    }

    /// This node is a replica, so it must not route reads to replicas of its own.
    pub fn is_replica(&self) -> bool {
        self.is_replica
    }
}

fn to_wire(r: &ReplicaInfo) -> Replica {
    Replica::new(r.host.clone(), r.port, r.lag_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
        slave0:ip=127.0.0.1,port=7380,state=online,offset=12345,lag=0\r\n\
        slave1:ip=10.0.0.5,port=7381,state=wait_bgsave,offset=0,lag=3\r\n\
        master_failover_state:no-failover\r\nmaster_replid:8f00\r\nmaster_repl_offset:12400\r\n";

    const RULES: HealthRules = rules(1000, 0);

    const fn rules(max_lag_ms: u64, max_lag_bytes: u64) -> HealthRules {
        HealthRules {
            max_lag_ms,
            max_lag_bytes,
        }
    }

    fn info(host: &str, port: u16, online: bool, offset: u64, lag_ms: u64) -> ReplicaInfo {
        ReplicaInfo {
            host: host.into(),
            port,
            online,
            offset,
            lag_ms,
        }
    }

    fn two_online() -> Replication {
        Replication {
            replicas: vec![info("a", 1, true, 0, 0), info("b", 2, true, 0, 0)],
            ..Replication::default()
        }
    }

    fn ports(set: &mut ReplicaSet, n: usize) -> Vec<u16> {
        (0..n)
            .filter_map(|_| set.next_healthy())
            .map(|r| r.port)
            .collect()
    }

    #[test]
    fn parses_a_master() {
        let r = Replication::parse(MASTER);
        assert!(!r.is_replica);
        assert_eq!(r.master_host, None);
        assert_eq!(r.master_repl_offset, 12400);
        assert_eq!(
            r.replicas,
            vec![
                info("127.0.0.1", 7380, true, 12345, 0),
                info("10.0.0.5", 7381, false, 0, 3000)
            ]
        );
    }

    #[test]
    fn parses_a_replica() {
        let text = "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7379\r\n\
            master_link_status:up\r\nslave_repl_offset:5\r\nslave_read_only:1\r\n\
            replica_announced:1\r\nmaster_repl_offset:5\r\n";
        let r = Replication::parse(text);
        assert!(r.is_replica);
        assert_eq!(r.master_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.master_port, Some(7379));
        assert_eq!(r.master_repl_offset, 5);
        assert!(r.replicas.is_empty());
        let mut set = ReplicaSet::default();
        set.update(&r, RULES);
        assert!(set.is_replica());
        assert_eq!(set.master_address(), Some(("127.0.0.1".to_owned(), 7379)));
        assert!(Replication::parse("role:replica\r\n").is_replica);
    }

    #[test]
    fn ipv6_replica_lines_and_garbage() {
        let text = "role:master\r\ngarbage\r\n:\r\n\
            slave:ip=x,port=1,state=online,offset=0,lag=0\r\n\
            slave0:ip=::1,port=7380,state=online,offset=7,lag=2,extra=a=b\r\n\
            slave1:ip=10.0.0.1,port=70000,state=online,offset=1,lag=0\r\n\
            slave2:ip=10.0.0.2,port=7382,state=online,offset=-1,lag=0\r\n\
            slave3:ip=10.0.0.3,port=7383,state=online,lag=0\r\n\
            slave4:ip=fe80::1%eth0,port=7384,state=online,offset=9,lag=-1\r\n\
            replica5:ip=10.0.0.6,port=7386,state=send_bulk,offset=0,lag=1\r\n\
            master_repl_offset:oops\r\n";
        let r = Replication::parse(text);
        assert_eq!(r.master_repl_offset, 0);
        assert_eq!(
            r.replicas,
            vec![
                info("::1", 7380, true, 7, 2000),
                info("fe80::1%eth0", 7384, true, 9, 0),
                info("10.0.0.6", 7386, false, 0, 1000),
            ]
        );
    }

    #[test]
    fn health_by_state_lag_and_bytes() {
        let mut r = Replication::parse(MASTER);
        r.replicas.push(info("slow", 3, true, 12400, 2000));
        r.replicas.push(info("behind", 4, true, 400, 0));
        let mut set = ReplicaSet::default();
        assert!(set.update(&r, RULES));
        assert_eq!(set.all().len(), 4);
        let hosts = |s: &ReplicaSet| s.healthy().into_iter().map(|r| r.host).collect::<Vec<_>>();
        assert_eq!(hosts(&set), ["127.0.0.1", "behind"]);
        // 12400 - 12345 = 55 bytes behind; "behind" is 12000.
        assert!(set.update(&r, rules(1000, 55)));
        assert_eq!(hosts(&set), ["127.0.0.1"]);
        assert!(set.update(&r, rules(1000, 54)));
        assert_eq!(set.healthy_count(), 0);
        assert!(set.update(&r, rules(2000, 12000)));
        assert_eq!(hosts(&set), ["127.0.0.1", "slow", "behind"]);
    }

    #[test]
    fn update_reports_only_list_changes() {
        let mut set = ReplicaSet::default();
        assert!(!set.update(&Replication::default(), RULES));
        let mut r = two_online();
        assert!(set.update(&r, RULES));
        assert!(!set.update(&r, RULES));
        r.replicas[0].lag_ms = 1000;
        r.replicas[1].offset = 99;
        assert!(!set.update(&r, RULES));
        assert_eq!(set.healthy()[0].lag_ms, 1000);
        r.replicas.swap(0, 1);
        assert!(set.update(&r, RULES));
        r.replicas[0].online = false;
        assert!(set.update(&r, RULES));
        assert_eq!(set.healthy_count(), 1);
    }

    #[test]
    fn round_robin_survives_changes() {
        let mut set = ReplicaSet::default();
        assert_eq!(set.next_healthy(), None);
        let mut r = two_online();
        set.update(&r, RULES);
        assert_eq!(ports(&mut set, 5), [1, 2, 1, 2, 1]);
        r.replicas.push(info("c", 3, true, 0, 0));
        set.update(&r, RULES);
        // Five handed out: the counter carries on at 5 % 3, not back at the first.
        assert_eq!(ports(&mut set, 4), [3, 1, 2, 3]);
        r.replicas.remove(0);
        set.update(&r, RULES);
        assert_eq!(ports(&mut set, 3), [3, 2, 3]);
        r.replicas.iter_mut().for_each(|x| x.online = false);
        set.update(&r, RULES);
        assert_eq!(set.next_healthy(), None);
    }
}
