//! Forward exponential decay (Cormode et al., "Forward Decay", ICDE 2009).
//!
//! Instead of shrinking every count as time passes, each new access is weighted by
//! `s = 2^((now - base) / half_life)`, which grows with time. A stored count divided by
//! the current `s` is the exponentially decayed count. `record` then costs one multiply
//! by a cached `s` (no `exp` on the hot path), and only the timer touches every count:
//! when `s` grows past 2^32 it renormalises, dividing all counts by a power of two.

use std::f64::consts::LN_2;

/// Renormalise once the scale exceeds 2^32: far from the f64 range even with weights of
/// 2^40, and rare (every 32 half-lives).
const RENORMALISE_EXPONENT: f64 = 32.0;

/// Past this many half-lives the clock's age no longer changes a rate read through
/// [`Decay::averaged`] (2^-64 is below f64 precision next to 1).
const AGE_SETTLED_EXPONENT: f64 = 64.0;

/// The clock of the decay: the scale applied to new accesses, and the half-life.
#[derive(Debug, Clone)]
pub(crate) struct Decay {
    half_life_ms: u64,
    /// The last time seen by `advance`.
    last_ms: u64,
    /// log2 of `scale`, in [0, 32) after every `advance`.
    exponent: f64,
    /// `2^exponent`: the scale of the clock's time.
    scale: f64,
    /// The scale counts are read by: `scale`, or the scale of a later moment given to
    /// [`Decay::read_at`] (a reading between two calls of `advance`).
    read_scale: f64,
    /// How far ahead of the clock new accesses are stamped (see [`Decay::advance`]).
    lead_ms: u64,
    /// `scale` at `lead_ms` ahead, cached for `record`.
    record_scale: f64,
    /// Whether rates are averaged over the clock's age (see [`Decay::averaged`]).
    averaged: bool,
    /// Half-lives since the clock started (or was reset), capped at [`AGE_SETTLED_EXPONENT`].
    age: f64,
    /// What `per_sec` divides by: 1, or for an averaged clock the share of a steady rate's
    /// decayed count that the clock's age has let build up, as of the reading's moment.
    read_norm: f64,
}

impl Decay {
    /// A clock whose base is `now_ms`. A zero half-life is taken as 1 ms.
    pub(crate) fn new(half_life_ms: u64, now_ms: u64) -> Decay {
        Decay {
            half_life_ms: half_life_ms.max(1),
            last_ms: now_ms,
            exponent: 0.0,
            scale: 1.0,
            read_scale: 1.0,
            lead_ms: 0,
            record_scale: 1.0,
            averaged: false,
            age: 0.0,
            read_norm: 1.0,
        }
    }

    /// A clock whose rates are averaged over its age: read `age` after the clock started, a
    /// count reads as `count × λ / (1 − 2^(−age / half-life))` rather than `count × λ`.
    ///
    /// A decayed count starts from zero, so a plain rate reads low until several half-lives
    /// have passed: a steady stream shows 63 % of its rate one time constant after the start,
    /// 95 % after three. That is no matter for the detector (a 250 ms half-life), but a window
    /// of a minute would read low for minutes after a restart or `clear`. Dividing by the
    /// weight the elapsed time can hold makes the rate the exponentially weighted mean over the
    /// time there is (exact for a steady stream from the first tick) and changes nothing once
    /// the clock is a few half-lives old.
    pub(crate) fn averaged(half_life_ms: u64, now_ms: u64) -> Decay {
        Decay {
            averaged: true,
            ..Decay::new(half_life_ms, now_ms)
        }
    }

    /// `read_norm` for a reading `ahead_ms` after the clock's time.
    fn norm(&self, ahead_ms: u64) -> f64 {
        if !self.averaged {
            return 1.0;
        }
        let age = self.age + ahead_ms as f64 / self.half_life_ms as f64;
        if age <= 0.0 {
            // Nothing can have been counted yet; any positive divisor reads 0 as 0.
            return 1.0;
        }
        1.0 - (-age.min(AGE_SETTLED_EXPONENT)).exp2()
    }

    /// The weight of one access made now, relative to the base.
    #[inline]
    pub(crate) fn record_scale(&self) -> f64 {
        self.record_scale
    }

    fn set_scale(&mut self) {
        self.scale = self.exponent.exp2();
        self.read_scale = self.scale;
        self.read_norm = self.norm(0);
        self.record_scale = (self.exponent + self.lead_ms as f64 / self.half_life_ms as f64).exp2();
    }

    /// The half-life in milliseconds.
    pub(crate) fn half_life_ms(&self) -> u64 {
        self.half_life_ms
    }

    /// Converts a stored count to a rate in events per second: the decayed count now times
    /// the decay constant λ = ln 2 / half-life, since a steady rate r makes the decayed
    /// count tend to r / λ.
    #[inline]
    pub(crate) fn per_sec(&self, count: f64) -> f64 {
        count / self.read_scale * (LN_2 * 1000.0 / self.half_life_ms as f64) / self.read_norm
    }

    /// Reads counts as of `now_ms` until the next `advance`: they have decayed since the
    /// clock last moved. Without this a rate read between two calls is high — the accesses
    /// since the last call add to a count that has not decayed — by up to 32 % at the end of
    /// a 100 ms period with a 250 ms half-life (16 % on average). With it, within 1 %.
    pub(crate) fn read_at(&mut self, now_ms: u64) {
        let since = now_ms.saturating_sub(self.last_ms);
        self.read_scale = (self.exponent + since as f64 / self.half_life_ms as f64).exp2();
        self.read_norm = self.norm(since);
    }

    /// The stored count whose rate is `per_sec`, as of the clock's time: the inverse of
    /// [`Decay::per_sec`].
    pub(crate) fn count_of(&self, per_sec: f64) -> f64 {
        per_sec * self.scale * self.half_life_ms as f64 / (LN_2 * 1000.0) * self.norm(0)
    }

    /// Moves the clock to `now_ms`. A clock that goes backwards is taken as standing still
    /// (and counted from its new reading), so rates neither jump nor turn NaN.
    ///
    /// Accesses recorded until the next call are stamped `lead_ms` ahead of `now_ms`. The
    /// clock only moves here, so without a lead every access made between two calls counts as
    /// made at the first, and a rate read at the second is low: by 13 % for a steady load
    /// when calls come every 0.4 half-lives. With half the period as lead (the accesses' mean
    /// time) the reading is within 0.3 % of the truth.
    ///
    /// Returns the factor by which the caller must multiply every stored count when the
    /// base moves (renormalisation). It is a power of two, so the multiplication is exact
    /// and keeps the order of counts.
    pub(crate) fn advance(&mut self, now_ms: u64, lead_ms: u64) -> Option<f64> {
        self.lead_ms = lead_ms;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = now_ms;
        if elapsed > 0 {
            let half_lives = elapsed as f64 / self.half_life_ms as f64;
            self.exponent += half_lives;
            self.age = (self.age + half_lives).min(AGE_SETTLED_EXPONENT);
        }
        let factor = if self.exponent >= RENORMALISE_EXPONENT {
            let whole = self.exponent.floor();
            self.exponent -= whole;
            // Past 2^-1074 this is 0: everything has decayed away, which is the truth.
            Some((-whole).exp2())
        } else {
            None
        };
        self.set_scale();
        factor
    }

    /// Changes the half-life. Returns the factor by which the caller must multiply every
    /// stored count so that each rate is unchanged at this instant: counts are brought to
    /// the current time (divided by `s`) and rescaled by new / old half-life, because a
    /// rate is count × λ and λ changes.
    pub(crate) fn set_half_life_ms(&mut self, half_life_ms: u64) -> f64 {
        let half_life_ms = half_life_ms.max(1);
        let factor = half_life_ms as f64 / self.half_life_ms as f64 / self.scale;
        self.half_life_ms = half_life_ms;
        self.exponent = 0.0;
        self.set_scale();
        factor
    }

    /// Forgets the accumulated scale and the age (for an emptied summary).
    pub(crate) fn reset(&mut self) {
        self.exponent = 0.0;
        self.age = 0.0;
        self.set_scale();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    #[test]
    fn a_lead_stamps_new_accesses_ahead_and_reads_at_the_clock() {
        let mut d = Decay::new(1000, 0);
        d.advance(0, 500);
        assert!(close(d.record_scale(), 2f64.sqrt()));
        // A count made now reads at the clock: the lead shows as a slightly higher rate.
        assert!(close(d.per_sec(d.record_scale()), 2f64.sqrt() * LN_2));
    }

    #[test]
    fn count_of_inverts_per_sec() {
        let mut d = Decay::new(250, 0);
        d.advance(1234, 0);
        assert!(close(d.per_sec(d.count_of(1000.0)), 1000.0));
    }

    #[test]
    fn scale_doubles_every_half_life() {
        let mut d = Decay::new(1000, 5_000);
        assert_eq!(d.record_scale(), 1.0);
        assert_eq!(d.advance(6_000, 0), None);
        assert!(close(d.record_scale(), 2.0));
        assert_eq!(d.advance(7_500, 0), None);
        assert!(close(d.record_scale(), 2f64.powf(2.5)));
    }

    #[test]
    fn rate_of_a_count_halves_per_half_life() {
        let mut d = Decay::new(2000, 0);
        let count = 100.0 * d.record_scale();
        let r0 = d.per_sec(count);
        assert!(close(r0, 100.0 * LN_2 / 2.0));
        d.advance(2000, 0);
        assert!(close(d.per_sec(count), r0 / 2.0));
    }

    #[test]
    fn renormalises_by_a_power_of_two_and_keeps_rates() {
        let mut d = Decay::new(10, 0);
        let mut count = 3.0;
        let before = d.per_sec(count);
        // 33.5 half-lives.
        let factor = d.advance(335, 0).expect("renormalised");
        assert_eq!(factor, 2f64.powi(-33));
        count *= factor;
        assert!(close(d.record_scale(), 2f64.sqrt()));
        assert!(close(d.per_sec(count), before * 2f64.powf(-33.5)));
    }

    #[test]
    fn backwards_time_stands_still() {
        let mut d = Decay::new(1000, 10_000);
        d.advance(11_000, 0);
        let s = d.record_scale();
        assert_eq!(d.advance(0, 0), None);
        assert_eq!(d.record_scale(), s);
        d.advance(1_000, 0); // one half-life after the backwards jump
        assert!(close(d.record_scale(), 2.0 * s));
    }

    #[test]
    fn huge_jumps_decay_to_zero_without_nan() {
        let mut d = Decay::new(1, 0);
        let factor = d.advance(u64::MAX, 0).expect("renormalised");
        assert_eq!(factor, 0.0);
        assert!(d.record_scale().is_finite() && d.record_scale() >= 1.0);
        assert!(d.per_sec(1.0).is_finite());
        d.advance(0, 0);
        d.advance(u64::MAX, 0);
        assert!(d.record_scale().is_finite());
    }

    #[test]
    fn zero_half_life_is_one_millisecond() {
        let mut d = Decay::new(0, 0);
        assert_eq!(d.half_life_ms(), 1);
        assert_eq!(d.set_half_life_ms(0), 1.0);
    }

    #[test]
    fn changing_half_life_keeps_rates() {
        let mut d = Decay::new(1000, 0);
        d.advance(1500, 0);
        let count = 42.0;
        let before = d.per_sec(count);
        let factor = d.set_half_life_ms(250);
        assert_eq!(d.record_scale(), 1.0);
        assert!(close(d.per_sec(count * factor), before));
    }
}
