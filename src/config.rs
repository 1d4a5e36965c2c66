//! The module configs (`hotkey.<name>`): their values, ranges, and the check of `loadmodule`
//! arguments, which the server does not validate for modules.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use redis_module::configuration::{ConfigurationContext, ConfigurationValue};
use redis_module::{RedisError, RedisString};

use crate::hot_set::Rules;
use crate::replicas::HealthRules;
use crate::sampler::SamplerConfig;
use crate::state::{self, Settings};

/// A numeric config: its name (without `hotkey.`), default and inclusive range.
pub struct Numeric {
    pub name: &'static str,
    pub value: &'static AtomicI64,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

pub static ENABLED: AtomicBool = AtomicBool::new(true);
pub static CAPACITY: AtomicI64 = AtomicI64::new(4096);
pub static HALF_LIFE_MS: AtomicI64 = AtomicI64::new(250);
pub static MAX_KEY_BYTES: AtomicI64 = AtomicI64::new(1024);
pub static SAMPLE_QUIET_OPS: AtomicI64 = AtomicI64::new(10_000);
pub static SAMPLE_MAX: AtomicI64 = AtomicI64::new(64);
pub static TICK_MS: AtomicI64 = AtomicI64::new(100);
pub static HOT_THRESHOLD: AtomicI64 = AtomicI64::new(1000);
pub static COOLDOWN_MS: AtomicI64 = AtomicI64::new(2000);
pub static MAX_HOT: AtomicI64 = AtomicI64::new(64);
pub static HEARTBEAT_MS: AtomicI64 = AtomicI64::new(1000);
pub static CACHE_TTL_MS: AtomicI64 = AtomicI64::new(100);
pub static MAX_REPLICA_LAG_MS: AtomicI64 = AtomicI64::new(2000);
pub static MAX_REPLICA_LAG_BYTES: AtomicI64 = AtomicI64::new(16 << 20);

pub static HOT_SHARE: Fraction = Fraction::new("hot-share", 0.01, true);
pub static COLD_FRACTION: Fraction = Fraction::new("cold-fraction", 0.5, false);
pub static CHANNEL: Channel = Channel(Mutex::new(String::new()));

pub const HOT_SHARE_DEFAULT: &str = "0.01";
pub const COLD_FRACTION_DEFAULT: &str = "0.5";
pub const CHANNEL_NAME: &str = "channel";

pub const ENABLED_NAME: &str = "enabled";
pub const ENABLED_DEFAULT: bool = true;

pub const NUMERIC: [Numeric; 13] = [
    Numeric {
        name: "capacity",
        value: &CAPACITY,
        default: 4096,
        min: 16,
        max: 1 << 20,
    },
    Numeric {
        name: "half-life-ms",
        value: &HALF_LIFE_MS,
        default: 250,
        min: 10,
        max: 86_400_000,
    },
    Numeric {
        name: "max-key-bytes",
        value: &MAX_KEY_BYTES,
        default: 1024,
        min: 1,
        max: 1 << 20,
    },
    Numeric {
        name: "sample-quiet-ops",
        value: &SAMPLE_QUIET_OPS,
        default: 10_000,
        min: 0,
        max: 100_000_000,
    },
    Numeric {
        name: "sample-max",
        value: &SAMPLE_MAX,
        default: 64,
        min: 1,
        max: 65_536,
    },
    Numeric {
        name: "tick-ms",
        value: &TICK_MS,
        default: 100,
        min: 10,
        max: 10_000,
    },
    Numeric {
        name: "hot-threshold",
        value: &HOT_THRESHOLD,
        default: 1000,
        min: 0,
        max: 1_000_000_000,
    },
    Numeric {
        name: "cooldown-ms",
        value: &COOLDOWN_MS,
        default: 2000,
        min: 0,
        max: 3_600_000,
    },
    Numeric {
        name: "max-hot",
        value: &MAX_HOT,
        default: 64,
        min: 1,
        max: 100_000,
    },
    Numeric {
        name: "heartbeat-ms",
        value: &HEARTBEAT_MS,
        default: 1000,
        min: 100,
        max: 60_000,
    },
    Numeric {
        name: "cache-ttl-ms",
        value: &CACHE_TTL_MS,
        default: 100,
        min: 0,
        max: 3_600_000,
    },
    Numeric {
        name: "max-replica-lag-ms",
        value: &MAX_REPLICA_LAG_MS,
        default: 2000,
        min: 0,
        max: 3_600_000,
    },
    Numeric {
        name: "max-replica-lag-bytes",
        value: &MAX_REPLICA_LAG_BYTES,
        default: 16 << 20,
        min: 0,
        max: 1 << 40,
    },
];

/// A fraction config (`hot-share`, `cold-fraction`): a number in [0, 1] (or (0, 1] when
/// zero would be meaningless), stored as f64 bits so the tick reads it without a lock.
pub struct Fraction {
    name: &'static str,
    bits: AtomicU64,
    zero_ok: bool,
}

impl Fraction {
    pub const fn new(name: &'static str, default: f64, zero_ok: bool) -> Fraction {
        Fraction {
            name,
            bits: AtomicU64::new(default.to_bits()),
            zero_ok,
        }
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// The value of `text`, or an error naming the config and its range.
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let range = if self.zero_ok {
            "from 0 to 1"
        } else {
            "above 0 and at most 1"
        };
        match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v <= 1.0 && (v > 0.0 || (self.zero_ok && v == 0.0)) => Ok(v),
            _ => Err(format!(
                "'{}' must be a number {range}, got '{text}'",
                self.name
            )),
        }
    }
}

impl ConfigurationValue<RedisString> for Fraction {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        RedisString::create(None, self.get().to_string())
    }

    fn set(&self, _: &ConfigurationContext, value: RedisString) -> Result<(), RedisError> {
        let v = self
            .parse(value.try_as_str()?)
            .map_err(RedisError::String)?;
        self.bits.store(v.to_bits(), Ordering::Relaxed);
        Ok(())
    }
}

/// The `channel` config: a non-empty pub/sub channel name.
pub struct Channel(Mutex<String>);

impl Channel {
    pub fn get(&self) -> String {
        let name = self.0.lock().map(|c| c.clone()).unwrap_or_default();
        if name.is_empty() {
            hotkey_protocol::DEFAULT_CHANNEL.to_owned()
        } else {
            name
        }
    }

    fn check(text: &[u8]) -> Result<(), String> {
        if text.is_empty() || text.iter().any(|b| b.is_ascii_whitespace()) {
            return Err("'channel' must be a non-empty name without spaces".into());
        }
        Ok(())
    }
}

impl ConfigurationValue<RedisString> for Channel {
    fn get(&self, _: &ConfigurationContext) -> RedisString {
        RedisString::create(None, Channel::get(self))
    }

    fn set(&self, _: &ConfigurationContext, value: RedisString) -> Result<(), RedisError> {
        Channel::check(value.as_slice()).map_err(RedisError::String)?;
        let text = value.try_as_str()?.to_owned();
        if let Ok(mut c) = self.0.lock() {
            *c = text;
        }
        Ok(())
    }
}

/// The settings the configs hold now.
pub fn settings() -> Settings {
    let get = |v: &AtomicI64| v.load(Ordering::Relaxed).max(0) as u64;
    Settings {
        enabled: ENABLED.load(Ordering::Relaxed),
        capacity: get(&CAPACITY) as usize,
        half_life_ms: get(&HALF_LIFE_MS),
        max_key_bytes: get(&MAX_KEY_BYTES) as usize,
        sampler: SamplerConfig {
            quiet_ops: get(&SAMPLE_QUIET_OPS),
            max: get(&SAMPLE_MAX),
        },
        tick_ms: get(&TICK_MS),
        heartbeat_ms: get(&HEARTBEAT_MS),
        rules: Rules {
            threshold: get(&HOT_THRESHOLD) as f64,
            share: HOT_SHARE.get(),
            cold_fraction: COLD_FRACTION.get(),
            cooldown_ms: get(&COOLDOWN_MS),
            max_hot: get(&MAX_HOT) as usize,
            cache_ttl_ms: get(&CACHE_TTL_MS),
        },
        health: HealthRules {
            max_lag_ms: get(&MAX_REPLICA_LAG_MS),
            max_lag_bytes: get(&MAX_REPLICA_LAG_BYTES),
        },
    }
}

/// Called by the server after a config changed (CONFIG SET, redis.conf, load arguments).
pub fn on_changed<T>(_: &ConfigurationContext, _: &str, _: &'static T) {
    state::with(|s| s.apply(settings()));
}

/// Checks `loadmodule` / `MODULE LOAD` arguments: `name value` pairs of known configs with
/// valid values. The server passes them unchecked, and the config registration would ignore
/// an unknown name or an out-of-range number.
pub fn check_module_args(args: &[&[u8]]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments must be config name / value pairs".into());
    }
    for pair in args.chunks_exact(2) {
        check_arg(&String::from_utf8_lossy(pair[0]), pair[1])?;
    }
    Ok(())
}

fn check_arg(name: &str, raw: &[u8]) -> Result<(), String> {
    let value = String::from_utf8_lossy(raw);
    if name == ENABLED_NAME {
        if value != "yes" && value != "no" {
            return Err(format!(
                "argument '{ENABLED_NAME}' must be yes or no, got '{value}'"
            ));
        }
        return Ok(());
    }
    if name == CHANNEL_NAME {
        return Channel::check(raw);
    }
    if let Some(f) = [&HOT_SHARE, &COLD_FRACTION]
        .into_iter()
        .find(|f| f.name == name)
    {
        return f.parse(&value).map(|_| ());
    }
    let Some(cfg) = NUMERIC.iter().find(|c| c.name == name) else {
        return Err(format!("unknown module argument '{name}'"));
    };
    match value.parse::<i64>() {
        Ok(v) if (cfg.min..=cfg.max).contains(&v) => Ok(()),
        _ => Err(format!(
            "argument '{name}' must be an integer from {} to {}, got '{value}'",
            cfg.min, cfg.max
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_arguments_pass() {
        assert_eq!(check_module_args(&[]), Ok(()));
        assert_eq!(
            check_module_args(&[b"capacity", b"2048", b"enabled", b"no"]),
            Ok(())
        );
    }

    #[test]
    fn bad_arguments_name_the_problem() {
        let err = |args: &[&[u8]]| check_module_args(args).unwrap_err();
        assert!(err(&[b"capacity"]).contains("pairs"));
        assert!(err(&[b"bogus", b"1"]).contains("unknown module argument 'bogus'"));
        assert!(err(&[b"capacity", b"abc"]).contains("from 16 to 1048576, got 'abc'"));
        assert!(err(&[b"capacity", b"0"]).contains("got '0'"));
        assert!(err(&[b"enabled", b"maybe"]).contains("yes or no"));
        assert_eq!(
            err(&[b"hot-share", b"1.5"]),
            "'hot-share' must be a number from 0 to 1, got '1.5'"
        );
        assert_eq!(
            err(&[b"cold-fraction", b"0"]),
            "'cold-fraction' must be a number above 0 and at most 1, got '0'"
        );
        assert!(err(&[b"cold-fraction", b"NaN"]).contains("got 'NaN'"));
        assert!(err(&[b"channel", b""]).contains("non-empty"));
        assert_eq!(
            check_module_args(&[
                b"hot-share",
                b"0",
                b"cold-fraction",
                b"1",
                b"channel",
                b"hk"
            ]),
            Ok(())
        );
    }

    #[test]
    fn fraction_defaults_parse() {
        assert_eq!(HOT_SHARE.parse(HOT_SHARE_DEFAULT), Ok(HOT_SHARE.get()));
        assert_eq!(
            COLD_FRACTION.parse(COLD_FRACTION_DEFAULT),
            Ok(COLD_FRACTION.get())
        );
    }

    #[test]
    fn defaults_match_the_statics() {
        for cfg in &NUMERIC {
            assert_eq!(
                cfg.value.load(Ordering::Relaxed),
                cfg.default,
                "{}",
                cfg.name
            );
            assert!((cfg.min..=cfg.max).contains(&cfg.default));
        }
    }
}
