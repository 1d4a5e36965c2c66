//! Adaptive sampling: count every command while the node is quiet, a weighted fraction when it
//! is busy, so the filter's cost stays flat under load.
//!
//! The fraction is retuned on every tick from the commands seen since the last one. Between
//! counted commands the sampler skips a geometrically distributed number of commands (the gaps
//! of a Bernoulli process), so a workload that repeats with a fixed period cannot hide a key
//! from it, as it could from "every Nth command". A counted command weighs 1/fraction.

/// Sampling knobs (`hotkey.sample-quiet-ops`, `hotkey.sample-max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplerConfig {
    /// Below this many commands per second every command is counted; 0 = always sample at
    /// `max` (the fraction's floor).
    pub quiet_ops: u64,
    /// At least 1 in `max` commands is counted; 1 counts every command.
    pub max: u64,
}

/// Decides, command by command, whether the filter looks at it.
#[derive(Debug, Clone)]
pub struct Sampler {
    config: SamplerConfig,
    fraction: f64,
    weight: f64,
    /// Commands still to skip before the next counted one.
    skip: u64,
    rng: u64,
}

impl Sampler {
    /// A sampler that counts every command until the first retune.
    pub fn new(config: SamplerConfig, seed: u64) -> Sampler {
        let mut s = Sampler {
            config,
            fraction: 1.0,
            weight: 1.0,
            skip: 0,
            rng: seed | 1,
        };
        s.set_config(config);
        s
    }

    /// Changes the knobs; takes effect now.
    pub fn set_config(&mut self, config: SamplerConfig) {
        self.config = SamplerConfig {
            quiet_ops: config.quiet_ops,
            max: config.max.max(1),
        };
        if self.config.max == 1 {
            self.set_fraction(1.0);
        } else if self.config.quiet_ops == 0 {
            self.set_fraction(1.0 / self.config.max as f64);
        } else {
            let floor = 1.0 / self.config.max as f64;
            self.set_fraction(self.fraction.max(floor));
        }
    }

    /// True when this command is skipped. The filter's cheapest path: one compare, one decrement.
    #[inline]
    pub fn skip(&mut self) -> bool {
        if self.skip > 0 {
            self.skip -= 1;
            return true;
        }
        self.skip = self.next_gap();
        false
    }

    /// What a counted command weighs: 1 / fraction.
    #[inline]
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The fraction of commands counted now.
    pub fn fraction(&self) -> f64 {
        self.fraction
    }

    /// Retunes the fraction from the load of the last tick: `commands_per_sec` seen.
    pub fn retune(&mut self, commands_per_sec: f64) {
        let SamplerConfig { quiet_ops, max } = self.config;
        let floor = 1.0 / max as f64;
        let fraction = if max == 1 {
            1.0
        } else if quiet_ops == 0 {
            floor
        } else if commands_per_sec <= quiet_ops as f64 {
            1.0
        } else {
            (quiet_ops as f64 / commands_per_sec).max(floor)
        };
        self.set_fraction(fraction);
    }

    fn set_fraction(&mut self, fraction: f64) {
        if fraction == self.fraction {
            return;
        }
        self.fraction = fraction;
        self.weight = 1.0 / fraction;
        self.skip = self.next_gap();
    }

    /// Draws how many commands to skip: geometric with success probability `fraction`.
    fn next_gap(&mut self) -> u64 {
        if self.fraction >= 1.0 {
            return 0;
        }
        // xorshift64*: statistically fine for sampling and a handful of instructions.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // A uniform in (0, 1]: never 0, so ln() is finite.
        let u = ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        (u.ln() / (1.0 - self.fraction).ln()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(s: &mut Sampler, n: u64) -> u64 {
        (0..n).filter(|_| !s.skip()).count() as u64
    }

    #[test]
    fn quiet_nodes_count_everything() {
        let mut s = Sampler::new(
            SamplerConfig {
                quiet_ops: 1000,
                max: 64,
            },
            1,
        );
        s.retune(500.0);
        assert_eq!(counted(&mut s, 10_000), 10_000);
        assert_eq!(s.weight(), 1.0);
    }

    #[test]
    fn busy_nodes_count_about_quiet_ops_weighted_back() {
        let mut s = Sampler::new(
            SamplerConfig {
                quiet_ops: 10_000,
                max: 64,
            },
            7,
        );
        s.retune(100_000.0);
        assert_eq!(s.fraction(), 0.1);
        let n = counted(&mut s, 1_000_000);
        assert!((90_000..110_000).contains(&n), "counted {n}");
        assert!((s.weight() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn the_fraction_never_falls_below_one_in_max() {
        let mut s = Sampler::new(
            SamplerConfig {
                quiet_ops: 10,
                max: 16,
            },
            3,
        );
        s.retune(1e9);
        assert_eq!(s.fraction(), 1.0 / 16.0);
        let n = counted(&mut s, 160_000);
        assert!((9_000..11_000).contains(&n), "counted {n}");
    }

    #[test]
    fn max_one_counts_every_command_whatever_the_load() {
        let mut s = Sampler::new(
            SamplerConfig {
                quiet_ops: 10,
                max: 1,
            },
            3,
        );
        s.retune(1e9);
        assert_eq!(counted(&mut s, 1000), 1000);
    }

    #[test]
    fn quiet_ops_zero_always_samples_at_the_floor() {
        let s = Sampler::new(
            SamplerConfig {
                quiet_ops: 0,
                max: 4,
            },
            3,
        );
        assert_eq!(s.fraction(), 0.25);
    }

    #[test]
    fn a_periodic_workload_is_not_aliased() {
        // Keys cycle with period 10; "every 10th command" would only ever see key 0.
        let mut s = Sampler::new(
            SamplerConfig {
                quiet_ops: 1,
                max: 10,
            },
            11,
        );
        s.retune(1e6);
        let mut seen = [0u32; 10];
        for i in 0..100_000 {
            if !s.skip() {
                seen[i % 10] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
    }
}
