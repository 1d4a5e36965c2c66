//! Parsing of RESP replies from the `redis` crate's `Value`: a RESP3 map, or under RESP2 the
//! flat list of field–value pairs the server sends instead. [`Fields`] is the one accessor of
//! map replies, the module's and the server's (`CLUSTER SHARDS`) alike.

use redis::Value;

use crate::cluster::SlotRange;
use crate::{
    Address, Advice, ClusterNode, HotKey, ProtocolError, ReadsTo, Replica, Role, Route, Routes,
    TopEntry, field,
};

/// The fields of one map reply, by name. Every accessor's error names the field.
pub struct Fields<'a>(Vec<(&'a [u8], &'a Value)>);

impl<'a> Fields<'a> {
    /// The fields of `value`; an error (naming `what`) when it is not a map or a flat list of
    /// pairs.
    pub fn of(value: &'a Value, what: &str) -> Result<Fields<'a>, ProtocolError> {
        let pairs: Vec<(&Value, &Value)> = match value {
            Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
            Value::Array(a) if a.len() % 2 == 0 => {
                a.chunks_exact(2).map(|p| (&p[0], &p[1])).collect()
            }
            _ => return Err(ProtocolError::new(format!("{what}: not a map"))),
        };
        let mut fields: Vec<(&[u8], &Value)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let name =
                bytes(k).ok_or_else(|| ProtocolError::new(format!("{what}: bad field name")))?;
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(ProtocolError::new(format!(
                    "{what}: field '{}' twice",
                    String::from_utf8_lossy(name)
                )));
            }
            fields.push((name, v));
        }
        Ok(Fields(fields))
    }

    /// The field names, in the order sent.
    pub fn names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.0.iter().map(|(n, _)| *n)
    }

    pub fn get(&self, name: &str) -> Result<&'a Value, ProtocolError> {
        self.optional(name)
            .ok_or_else(|| ProtocolError::new(format!("missing field '{name}'")))
    }

    /// A field that older versions of the module do not send.
    pub fn optional(&self, name: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| *v)
    }

    pub fn bytes(&self, name: &str) -> Result<&'a [u8], ProtocolError> {
        bytes(self.get(name)?).ok_or_else(|| bad(name))
    }

    pub fn string(&self, name: &str) -> Result<String, ProtocolError> {
        String::from_utf8(self.bytes(name)?.to_vec()).map_err(|_| bad(name))
    }

    pub fn int(&self, name: &str) -> Result<i64, ProtocolError> {
        int(self.get(name)?).ok_or_else(|| bad(name))
    }

    /// An integer that must fit `T` (a port, a count).
    pub fn unsigned<T: TryFrom<i64>>(&self, name: &str) -> Result<T, ProtocolError> {
        T::try_from(self.int(name)?).map_err(|_| bad(name))
    }

    /// 0 or 1.
    pub fn flag(&self, name: &str) -> Result<bool, ProtocolError> {
        match self.int(name)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(bad(name)),
        }
    }

    /// A RESP3 double, an integer, or (RESP2) a string holding one.
    pub fn double(&self, name: &str) -> Result<f64, ProtocolError> {
        match self.get(name)? {
            Value::Double(d) => Ok(*d),
            Value::Int(i) => Ok(*i as f64),
            v => bytes(v)
                .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
                .ok_or_else(|| bad(name)),
        }
    }

    pub fn list(&self, name: &str) -> Result<&'a [Value], ProtocolError> {
        match self.get(name)? {
            Value::Array(a) | Value::Set(a) => Ok(a),
            _ => Err(bad(name)),
        }
    }
}

/// An integer, a boolean, or a string holding an integer: one element of a positional reply
/// (`CLUSTER SLOTS`, `CLUSTER SHARDS`' slot bounds).
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::Boolean(b) => Some(i64::from(*b)),
        v => std::str::from_utf8(bytes(v)?).ok()?.parse().ok(),
    }
}

/// A string, lossy for bytes that are not UTF-8: names and addresses, never keys.
pub fn text(v: &Value) -> Option<String> {
    bytes(v).map(|b| String::from_utf8_lossy(b).into_owned())
}

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

fn bad(name: &str) -> ProtocolError {
    ProtocolError::new(format!("bad value of field '{name}'"))
}

impl Route {
    /// Parses a `HOTKEY.ROUTE` reply.
    pub fn from_redis(value: &Value) -> Result<Route, ProtocolError> {
        let f = Fields::of(value, "HOTKEY.ROUTE reply")?;
        let role = Role::parse(f.bytes(field::ROLE)?).ok_or_else(|| bad(field::ROLE))?;
        Ok(Route {
            role,
            host: f.string(field::HOST)?,
            port: f.unsigned(field::PORT)?,
            hot: f.flag(field::HOT)?,
            cache_ttl_ms: f.unsigned(field::CACHE_TTL_MS)?,
        })
    }
}

impl Routes {
    /// Parses a `HOTKEY.ROUTES` reply.
    pub fn from_redis(value: &Value) -> Result<Routes, ProtocolError> {
        let f = Fields::of(value, "HOTKEY.ROUTES reply")?;
        let master = Fields::of(f.get(field::MASTER)?, "master")?;
        let replicas = f
            .list(field::REPLICAS)?
            .iter()
            .map(|r| {
                let r = Fields::of(r, "replica")?;
                Ok(Replica {
                    host: r.string(field::HOST)?,
                    port: r.unsigned(field::PORT)?,
                    lag_ms: r.unsigned(field::LAG_MS)?,
                })
            })
            .collect::<Result<_, ProtocolError>>()?;
        let keys = f
            .list(field::KEYS)?
            .iter()
            .map(HotKey::from_redis)
            .collect::<Result<_, _>>()?;
        let role = match f.optional(field::ROLE) {
            None => Role::Master,
            Some(_) => Role::parse(f.bytes(field::ROLE)?).ok_or_else(|| bad(field::ROLE))?,
        };
        let sharded = f.optional(field::SHARDED).is_some() && f.flag(field::SHARDED)?;
        let cluster = match f.optional(field::NODE_ID) {
            None => None,
            Some(_) => Some(ClusterNode {
                node_id: f.string(field::NODE_ID)?,
                slots: f
                    .list(field::SLOTS)?
                    .iter()
                    .map(slot_range)
                    .collect::<Result<_, _>>()?,
            }),
        };
        Ok(Routes {
            seq: f.unsigned(field::SEQ)?,
            run_id: f.string(field::RUN_ID)?,
            channel: f.string(field::CHANNEL)?,
            sharded,
            role,
            cluster,
            master: Address {
                host: master.string(field::HOST)?,
                port: master.unsigned(field::PORT)?,
            },
            replicas,
            keys,
        })
    }
}

/// One `[start, end]` pair of `slots`.
fn slot_range(value: &Value) -> Result<SlotRange, ProtocolError> {
    let bound = |v: &Value| match v {
        Value::Int(i) => u16::try_from(*i)
            .ok()
            .filter(|&s| s < crate::cluster::SLOTS),
        _ => None,
    };
    match value {
        Value::Array(pair) if pair.len() == 2 => match (bound(&pair[0]), bound(&pair[1])) {
            (Some(start), Some(end)) if start <= end => Ok(SlotRange { start, end }),
            _ => Err(bad(field::SLOTS)),
        },
        _ => Err(bad(field::SLOTS)),
    }
}

impl HotKey {
    /// Parses one entry of `HOTKEY.ROUTES`'s `keys`.
    pub fn from_redis(value: &Value) -> Result<HotKey, ProtocolError> {
        let f = Fields::of(value, "hot key")?;
        Ok(HotKey {
            db: f.unsigned(field::DB)?,
            key: f.bytes(field::KEY)?.to_vec(),
            reads_per_sec: f.double(field::READS_PER_SEC)?,
            writes_per_sec: f.double(field::WRITES_PER_SEC)?,
            advice: Advice {
                read_hot: f.flag(field::READ_HOT)?,
                write_hot: f.flag(field::WRITE_HOT)?,
                pinned: f.flag(field::PINNED)?,
                reads_to: ReadsTo::parse(f.bytes(field::READS_TO)?)
                    .ok_or_else(|| bad(field::READS_TO))?,
                cache_ttl_ms: f.unsigned(field::CACHE_TTL_MS)?,
            },
        })
    }
}

impl TopEntry {
    /// Parses one entry of a `HOTKEY.TOP` reply.
    pub fn from_redis(value: &Value) -> Result<TopEntry, ProtocolError> {
        let f = Fields::of(value, "HOTKEY.TOP entry")?;
        Ok(TopEntry {
            key: f.bytes(field::KEY)?.to_vec(),
            db: f.unsigned(field::DB)?,
            reads_per_sec: f.double(field::READS_PER_SEC)?,
            writes_per_sec: f.double(field::WRITES_PER_SEC)?,
            error: f.double(field::ERROR)?,
            hot: f.flag(field::HOT)?,
            window_secs: match f.optional(field::WINDOW) {
                Some(_) => Some(f.unsigned(field::WINDOW)?),
                None => None,
            },
        })
    }

    /// Parses a whole `HOTKEY.TOP` reply; an entry that does not parse makes it an error.
    pub fn list_from_redis(value: &Value) -> Result<Vec<TopEntry>, ProtocolError> {
        match value {
            Value::Array(entries) => entries.iter().map(TopEntry::from_redis).collect(),
            _ => Err(ProtocolError::new("HOTKEY.TOP reply: not an array")),
        }
    }
}

impl crate::command_table::CommandReply {
    /// The `COMMAND` reply as the table reads it, from either protocol: RESP3 maps become
    /// flat field–value arrays and sets become arrays (RESP2's shapes).
    pub fn from_redis(value: &Value) -> crate::command_table::CommandReply {
        use crate::command_table::CommandReply;
        match value {
            Value::Int(i) => CommandReply::Int(*i),
            Value::Boolean(b) => CommandReply::Int(i64::from(*b)),
            Value::BulkString(b) => CommandReply::Str(b.clone()),
            Value::SimpleString(s) => CommandReply::Str(s.as_bytes().to_vec()),
            Value::VerbatimString { text, .. } => CommandReply::Str(text.as_bytes().to_vec()),
            Value::Array(items) | Value::Set(items) => {
                CommandReply::Array(items.iter().map(CommandReply::from_redis).collect())
            }
            Value::Map(pairs) => CommandReply::Array(
                pairs
                    .iter()
                    .flat_map(|(k, v)| [CommandReply::from_redis(k), CommandReply::from_redis(v)])
                    .collect(),
            ),
            _ => CommandReply::Nil,
        }
    }
}
