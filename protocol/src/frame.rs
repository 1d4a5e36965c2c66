//! The module's replies as values: a [`Frame`] tree that the module's boundary writes out, so
//! that a map's length is always its number of fields (a miscounted map corrupts the client's
//! connection), and a reply is written whole or not at all. Each reply shape has one writer
//! here, beside its parser ([`crate::Route::to_frame`], [`crate::Routes::to_frame`],
//! [`crate::TopEntry::to_frame`]).

use crate::cluster::SlotRange;
use crate::{Advice, ClusterNode, HotKey, Replica, Route, Routes, TopEntry, field};

/// One RESP value of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Int(i64),
    Double(f64),
    /// A bulk string: any bytes.
    Bulk(Vec<u8>),
    /// A simple string; the module's own constants, printable ASCII.
    Status(&'static str),
    Null,
    Array(Vec<Frame>),
    /// A map under RESP3; the flat list of field–value pairs under RESP2.
    Map(Vec<(&'static str, Frame)>),
}

impl Frame {
    /// A bulk string of text.
    pub fn text(s: &str) -> Frame {
        Frame::Bulk(s.as_bytes().to_vec())
    }

    /// 1 or 0, as the module's flags are sent.
    pub fn flag(b: bool) -> Frame {
        Frame::Int(i64::from(b))
    }

    /// A count or other unsigned number; saturates at `i64::MAX`.
    pub fn count(n: u64) -> Frame {
        Frame::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// The value a client reads, in the `redis` crate's terms: `resp3` gives maps and doubles,
    /// otherwise flat pairs and doubles as bulk strings, as the server sends them.
    #[cfg(feature = "redis")]
    pub fn to_redis(&self, resp3: bool) -> redis::Value {
        use redis::Value;
        match self {
            Frame::Int(i) => Value::Int(*i),
            Frame::Double(d) if resp3 => Value::Double(*d),
            Frame::Double(d) => Value::BulkString(d.to_string().into_bytes()),
            Frame::Bulk(b) => Value::BulkString(b.clone()),
            Frame::Status(s) => Value::SimpleString((*s).to_owned()),
            Frame::Null => Value::Nil,
            Frame::Array(items) => Value::Array(items.iter().map(|f| f.to_redis(resp3)).collect()),
            Frame::Map(fields) if resp3 => Value::Map(
                fields
                    .iter()
                    .map(|(k, v)| (Value::BulkString(k.as_bytes().to_vec()), v.to_redis(resp3)))
                    .collect(),
            ),
            Frame::Map(fields) => Value::Array(
                fields
                    .iter()
                    .flat_map(|(k, v)| {
                        [Value::BulkString(k.as_bytes().to_vec()), v.to_redis(resp3)]
                    })
                    .collect(),
            ),
        }
    }
}

impl Route {
    /// The `HOTKEY.ROUTE` reply.
    pub fn to_frame(&self) -> Frame {
        Frame::Map(vec![
            (field::ROLE, Frame::text(self.role.as_str())),
            (field::HOST, Frame::text(&self.host)),
            (field::PORT, Frame::Int(i64::from(self.port))),
            (field::HOT, Frame::flag(self.hot)),
            (field::CACHE_TTL_MS, Frame::count(self.cache_ttl_ms)),
        ])
    }
}

impl Routes {
    /// The `HOTKEY.ROUTES` reply.
    pub fn to_frame(&self) -> Frame {
        let mut fields = vec![
            (field::SEQ, Frame::count(self.seq)),
            (field::RUN_ID, Frame::text(&self.run_id)),
            (field::CHANNEL, Frame::text(&self.channel)),
            (field::SHARDED, Frame::flag(self.sharded)),
            (field::ROLE, Frame::text(self.role.as_str())),
            (
                field::MASTER,
                Frame::Map(vec![
                    (field::HOST, Frame::text(&self.master.host)),
                    (field::PORT, Frame::Int(i64::from(self.master.port))),
                ]),
            ),
            (
                field::REPLICAS,
                Frame::Array(self.replicas.iter().map(Replica::to_frame).collect()),
            ),
            (
                field::KEYS,
                Frame::Array(self.keys.iter().map(HotKey::to_frame).collect()),
            ),
        ];
        if let Some(ClusterNode { node_id, slots }) = &self.cluster {
            fields.push((field::NODE_ID, Frame::text(node_id)));
            fields.push((
                field::SLOTS,
                Frame::Array(slots.iter().map(|r| r.to_frame()).collect()),
            ));
        }
        Frame::Map(fields)
    }
}

impl Replica {
    fn to_frame(&self) -> Frame {
        Frame::Map(vec![
            (field::HOST, Frame::text(&self.host)),
            (field::PORT, Frame::Int(i64::from(self.port))),
            (field::LAG_MS, Frame::count(self.lag_ms)),
        ])
    }
}

impl HotKey {
    fn to_frame(&self) -> Frame {
        let Advice {
            read_hot,
            write_hot,
            pinned,
            reads_to,
            cache_ttl_ms,
        } = self.advice;
        Frame::Map(vec![
            (field::DB, Frame::Int(i64::from(self.db))),
            (field::KEY, Frame::Bulk(self.key.clone())),
            (field::READS_PER_SEC, Frame::Double(self.reads_per_sec)),
            (field::WRITES_PER_SEC, Frame::Double(self.writes_per_sec)),
            (field::READ_HOT, Frame::flag(read_hot)),
            (field::WRITE_HOT, Frame::flag(write_hot)),
            (field::PINNED, Frame::flag(pinned)),
            (field::READS_TO, Frame::text(reads_to.as_str())),
            (field::CACHE_TTL_MS, Frame::count(cache_ttl_ms)),
        ])
    }
}

impl SlotRange {
    fn to_frame(self) -> Frame {
        Frame::Array(vec![
            Frame::Int(i64::from(self.start)),
            Frame::Int(i64::from(self.end)),
        ])
    }
}

impl TopEntry {
    /// One entry of the `HOTKEY.TOP` reply.
    pub fn to_frame(&self) -> Frame {
        let mut fields = vec![
            (field::KEY, Frame::Bulk(self.key.clone())),
            (field::DB, Frame::Int(i64::from(self.db))),
            (field::READS_PER_SEC, Frame::Double(self.reads_per_sec)),
            (field::WRITES_PER_SEC, Frame::Double(self.writes_per_sec)),
            (field::ERROR, Frame::Double(self.error)),
            (field::HOT, Frame::flag(self.hot)),
        ];
        if let Some(window) = self.window_secs {
            fields.push((field::WINDOW, Frame::count(window)));
        }
        Frame::Map(fields)
    }
}
