//! The module configs (`hotkey.<name>`): their values, ranges, and the check of `loadmodule`
//! arguments, which the server does not validate for modules.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use redis_module::configuration::ConfigurationContext;

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
pub static HALF_LIFE_MS: AtomicI64 = AtomicI64::new(1000);
pub static MAX_KEY_BYTES: AtomicI64 = AtomicI64::new(1024);
pub static SAMPLE_QUIET_OPS: AtomicI64 = AtomicI64::new(10_000);
pub static SAMPLE_MAX: AtomicI64 = AtomicI64::new(64);

pub const ENABLED_NAME: &str = "enabled";
pub const ENABLED_DEFAULT: bool = true;

pub const NUMERIC: [Numeric; 5] = [
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
        default: 1000,
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
];

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
        let name = String::from_utf8_lossy(pair[0]);
        let value = String::from_utf8_lossy(pair[1]);
        if name == ENABLED_NAME {
            if value != "yes" && value != "no" {
                return Err(format!(
                    "argument '{ENABLED_NAME}' must be yes or no, got '{value}'"
                ));
            }
            continue;
        }
        let Some(cfg) = NUMERIC.iter().find(|c| c.name == name) else {
            return Err(format!("unknown module argument '{name}'"));
        };
        match value.parse::<i64>() {
            Ok(v) if (cfg.min..=cfg.max).contains(&v) => {}
            _ => {
                return Err(format!(
                    "argument '{name}' must be an integer from {} to {}, got '{value}'",
                    cfg.min, cfg.max
                ));
            }
        }
    }
    Ok(())
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
