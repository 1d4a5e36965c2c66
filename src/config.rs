//! The module configs (`hotkey.<name>`): one spec per config — name, default, range — that the
//! registration, the `loadmodule` check, the settings and the tests all read.

use std::sync::Mutex;

use crate::ffi::{ConfigSpec, ConfigValue, Flag, Integer, Text};
use crate::hot_set::Rules;
use crate::replicas::HealthRules;
use crate::sampler::SamplerConfig;
use crate::state::Settings;
use crate::text::{is_legal, quote};

pub static ENABLED: Flag = Flag::new(true);
pub static CAPACITY: Integer = Integer::new(4096, 16, 1 << 20);
pub static HALF_LIFE_MS: Integer = Integer::new(250, 10, 86_400_000);
pub static MAX_KEY_BYTES: Integer = Integer::new(1024, 1, 1 << 20);
pub static SAMPLE_QUIET_OPS: Integer = Integer::new(10_000, 0, 100_000_000);
pub static SAMPLE_MAX: Integer = Integer::new(64, 1, 65_536);
pub static TICK_MS: Integer = Integer::new(100, 10, 10_000);
pub static HOT_THRESHOLD: Integer = Integer::new(1000, 0, 1_000_000_000);
pub static COOLDOWN_MS: Integer = Integer::new(1000, 0, 3_600_000);
pub static MAX_HOT: Integer = Integer::new(64, 1, 100_000);
pub static HEARTBEAT_MS: Integer = Integer::new(1000, 100, 60_000);
pub static CACHE_TTL_MS: Integer = Integer::new(100, 0, 3_600_000);
pub static MAX_REPLICA_LAG_MS: Integer = Integer::new(2000, 0, 3_600_000);
pub static MAX_REPLICA_LAG_BYTES: Integer = Integer::new(16 << 20, 0, 1 << 40);
pub static HOT_SHARE: Fraction = Fraction::new("hot-share", "0.01", true);
pub static COLD_FRACTION: Fraction = Fraction::new("cold-fraction", "0.5", false);
pub static CHANNEL: Channel = Channel(Mutex::new(String::new()));

/// Every config, in the order `CONFIG GET hotkey.*` lists them.
pub static CONFIGS: [ConfigSpec; 17] = [
    integer("capacity", &CAPACITY),
    integer("half-life-ms", &HALF_LIFE_MS),
    integer("max-key-bytes", &MAX_KEY_BYTES),
    integer("sample-quiet-ops", &SAMPLE_QUIET_OPS),
    integer("sample-max", &SAMPLE_MAX),
    integer("tick-ms", &TICK_MS),
    integer("hot-threshold", &HOT_THRESHOLD),
    integer("cooldown-ms", &COOLDOWN_MS),
    integer("max-hot", &MAX_HOT),
    integer("heartbeat-ms", &HEARTBEAT_MS),
    integer("cache-ttl-ms", &CACHE_TTL_MS),
    integer("max-replica-lag-ms", &MAX_REPLICA_LAG_MS),
    integer("max-replica-lag-bytes", &MAX_REPLICA_LAG_BYTES),
    ConfigSpec {
        name: "hot-share",
        value: ConfigValue::Text(&HOT_SHARE),
    },
    ConfigSpec {
        name: "cold-fraction",
        value: ConfigValue::Text(&COLD_FRACTION),
    },
    ConfigSpec {
        name: CHANNEL_NAME,
        value: ConfigValue::Text(&CHANNEL),
    },
    ConfigSpec {
        name: "enabled",
        value: ConfigValue::Bool(&ENABLED),
    },
];

const CHANNEL_NAME: &str = "channel";

const fn integer(name: &'static str, config: &'static Integer) -> ConfigSpec {
    ConfigSpec {
        name,
        value: ConfigValue::Integer(config),
    }
}

/// The bits of a NaN that `Fraction::parse` never yields: no value set yet.
const UNSET: u64 = u64::MAX;

/// A fraction config (`hot-share`, `cold-fraction`): a number in [0, 1] (or (0, 1] when
/// zero would be meaningless), stored as f64 bits so the tick reads it without a lock.
pub struct Fraction {
    name: &'static str,
    default: &'static str,
    bits: std::sync::atomic::AtomicU64,
    zero_ok: bool,
}

impl Fraction {
    /// `default` must parse (a unit test checks every default).
    pub const fn new(name: &'static str, default: &'static str, zero_ok: bool) -> Fraction {
        Fraction {
            name,
            default,
            bits: std::sync::atomic::AtomicU64::new(UNSET),
            zero_ok,
        }
    }

    /// The value; the default until the server has set one.
    pub fn value(&self) -> f64 {
        match self.bits.load(std::sync::atomic::Ordering::Relaxed) {
            UNSET => self.parse(self.default.as_bytes()).unwrap_or(0.0),
            bits => f64::from_bits(bits),
        }
    }

    /// The value of `text`, or an error naming the config and its range.
    pub fn parse(&self, text: &[u8]) -> Result<f64, String> {
        let range = if self.zero_ok {
            "from 0 to 1"
        } else {
            "above 0 and at most 1"
        };
        let v = std::str::from_utf8(text)
            .ok()
            .filter(|_| is_legal(text))
            .and_then(|t| t.trim().parse::<f64>().ok());
        match v {
            Some(v) if v.is_finite() && v <= 1.0 && (v > 0.0 || (self.zero_ok && v == 0.0)) => {
                Ok(v)
            }
            _ => Err(format!(
                "'{}' must be a number {range}, got '{}'",
                self.name,
                quote(text)
            )),
        }
    }
}

impl Text for Fraction {
    fn default_text(&self) -> &'static str {
        self.default
    }

    fn get(&self) -> String {
        self.value().to_string()
    }

    fn check(&self, value: &[u8]) -> Result<(), String> {
        self.parse(value).map(|_| ())
    }

    fn set(&self, value: &[u8]) -> Result<(), String> {
        let v = self.parse(value)?;
        self.bits
            .store(v.to_bits(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// The `channel` config: a non-empty pub/sub channel name of printable ASCII without spaces.
pub struct Channel(Mutex<String>);

impl Channel {
    /// The channel name now.
    pub fn name(&self) -> String {
        let name = self.0.lock().map(|c| c.clone()).unwrap_or_default();
        if name.is_empty() {
            hotkey_protocol::DEFAULT_CHANNEL.to_owned()
        } else {
            name
        }
    }

    /// Frees the name (at unload: the allocator's memory goes back to the server).
    pub fn clear(&self) {
        if let Ok(mut c) = self.0.lock() {
            *c = String::new();
        }
    }
}

impl Text for Channel {
    fn default_text(&self) -> &'static str {
        hotkey_protocol::DEFAULT_CHANNEL
    }

    fn get(&self) -> String {
        self.name()
    }

    fn check(&self, value: &[u8]) -> Result<(), String> {
        // Braces would make a hash tag of their own, where in a cluster the module puts one
        // that lands in the shard's slots.
        let bad = |b: &u8| !b.is_ascii_graphic() || *b == b'{' || *b == b'}';
        if value.is_empty() || value.iter().any(bad) {
            return Err(format!(
                "'{CHANNEL_NAME}' must be a non-empty name of printable ASCII without spaces or braces, got '{}'",
                quote(value)
            ));
        }
        Ok(())
    }

    fn set(&self, value: &[u8]) -> Result<(), String> {
        self.check(value)?;
        let text = String::from_utf8_lossy(value).into_owned();
        if let Ok(mut c) = self.0.lock() {
            *c = text;
        }
        Ok(())
    }
}

/// The settings the configs hold now.
pub fn settings() -> Settings {
    Settings {
        enabled: ENABLED.get(),
        capacity: CAPACITY.get_u64() as usize,
        half_life_ms: HALF_LIFE_MS.get_u64(),
        max_key_bytes: MAX_KEY_BYTES.get_u64() as usize,
        sampler: SamplerConfig {
            quiet_ops: SAMPLE_QUIET_OPS.get_u64(),
            max: SAMPLE_MAX.get_u64(),
        },
        tick_ms: TICK_MS.get_u64(),
        heartbeat_ms: HEARTBEAT_MS.get_u64(),
        rules: Rules {
            threshold: HOT_THRESHOLD.get_u64() as f64,
            share: HOT_SHARE.value(),
            cold_fraction: COLD_FRACTION.value(),
            cooldown_ms: COOLDOWN_MS.get_u64(),
            max_hot: MAX_HOT.get_u64() as usize,
            cache_ttl_ms: CACHE_TTL_MS.get_u64(),
        },
        health: HealthRules {
            max_lag_ms: MAX_REPLICA_LAG_MS.get_u64(),
            max_lag_bytes: MAX_REPLICA_LAG_BYTES.get_u64(),
        },
    }
}

/// Checks `loadmodule` / `MODULE LOAD` arguments: `name value` pairs of known configs with
/// valid values. The server passes them unchecked; a bad one fails the load, and the log line
/// says which.
pub fn check_module_args(args: &[&[u8]]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments must be config name / value pairs".into());
    }
    for pair in args.chunks_exact(2) {
        check_arg(pair[0], pair[1])?;
    }
    Ok(())
}

fn check_arg(name: &[u8], value: &[u8]) -> Result<(), String> {
    let Some(spec) = CONFIGS.iter().find(|c| c.name.as_bytes() == name) else {
        return Err(format!("unknown module argument '{}'", quote(name)));
    };
    let name = spec.name;
    match spec.value {
        ConfigValue::Bool(_) if value == b"yes" || value == b"no" => Ok(()),
        ConfigValue::Bool(_) => Err(format!(
            "argument '{name}' must be yes or no, got '{}'",
            quote(value)
        )),
        ConfigValue::Text(config) => config.check(value),
        ConfigValue::Integer(config) => {
            let v = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<i64>().ok());
            match v {
                Some(v) if (config.min..=config.max).contains(&v) => Ok(()),
                _ => Err(format!(
                    "argument '{name}' must be an integer from {} to {}, got '{}'",
                    config.min,
                    config.max,
                    quote(value)
                )),
            }
        }
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
        assert_eq!(
            err(&[b"bad\0name", b"1"]),
            "unknown module argument 'bad\\x00name'"
        );
        assert!(err(&[b"capacity", b"abc"]).contains("from 16 to 1048576, got 'abc'"));
        assert!(err(&[b"capacity", b"0"]).contains("got '0'"));
        assert!(err(&[b"enabled", b"maybe"]).contains("yes or no"));
        assert_eq!(
            err(&[b"hot-share", b"1.5"]),
            "'hot-share' must be a number from 0 to 1, got '1.5'"
        );
        assert_eq!(
            err(&[b"hot-share", b"0.5\0"]),
            "'hot-share' must be a number from 0 to 1, got '0.5\\x00'"
        );
        assert_eq!(
            err(&[b"cold-fraction", b"0"]),
            "'cold-fraction' must be a number above 0 and at most 1, got '0'"
        );
        assert!(err(&[b"cold-fraction", b"NaN"]).contains("got 'NaN'"));
        assert!(err(&[b"channel", b""]).contains("non-empty"));
        assert!(err(&[b"channel", b"a\0b"]).contains("got 'a\\x00b'"));
        assert!(err(&[b"channel", b"a\r\nb"]).contains("'channel'"));
        assert!(err(&[b"channel", b"hk{1}"]).contains("braces"));
        assert!(err(&[b"channel", "\u{100}".as_bytes()]).contains("\\xc4\\x80"));
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
    fn every_default_is_valid_and_names_are_unique() {
        for spec in &CONFIGS {
            assert_eq!(
                CONFIGS.iter().filter(|c| c.name == spec.name).count(),
                1,
                "{}",
                spec.name
            );
            match spec.value {
                ConfigValue::Integer(c) => {
                    assert!((c.min..=c.max).contains(&c.default), "{}", spec.name);
                    assert_eq!(c.get(), c.default, "{}", spec.name);
                }
                ConfigValue::Bool(c) => assert_eq!(c.get(), c.default),
                ConfigValue::Text(c) => {
                    assert_eq!(
                        c.check(c.default_text().as_bytes()),
                        Ok(()),
                        "{}",
                        spec.name
                    );
                    assert_eq!(
                        c.get().as_bytes(),
                        c.default_text().as_bytes(),
                        "{}",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn a_fraction_of_zero_is_kept() {
        let f = Fraction::new("f", "0.5", true);
        assert_eq!(f.value(), 0.5);
        assert_eq!(f.set(b"0"), Ok(()));
        assert_eq!(f.value(), 0.0);
        assert_eq!(f.set(b"0.25"), Ok(()));
        assert_eq!(f.value(), 0.25);
    }
}
