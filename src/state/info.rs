//! The `hotkey` section of `INFO`. The server names it after the module and prefixes each
//! field with `hotkey_` (`hotkey_tracked_keys`), as for every module.

use super::State;
use crate::ffi::InfoSink;

impl State {
    /// Writes the section's fields, rates as of `now_ms`.
    pub fn info(&mut self, now_ms: u64, out: &mut InfoSink) {
        self.tracker.read_at(now_ms);
        out.field("enabled", i64::from(self.settings.enabled));
        out.field("role", if self.replica { "replica" } else { "master" });
        out.field("tracked_keys", self.tracker.len());
        out.field("evictions", self.tracker.evictions());
        out.field("capacity", self.tracker.capacity());
        out.field("memory_bytes", self.memory_bytes());
        out.field("commands_seen", self.stats.commands_seen);
        out.field("commands_sampled", self.stats.commands_sampled);
        out.field("keys_counted", self.stats.keys_counted);
        out.field("sample_fraction", format!("{:.6}", self.sampler.fraction()));
        out.field("commands_per_sec", format!("{:.0}", self.commands_per_sec));
        out.field("keys_too_long", self.stats.keys_too_long);
        out.field("unknown_commands", self.stats.unknown_commands);
        out.field("movable_key_lookups", self.stats.movable_key_lookups);
        out.field("command_table_size", self.table.len());
        out.field("db_attribution", self.db_attribution());
        out.field(
            "keys_per_sec",
            format!("{:.0}", self.tracker.total_per_sec()),
        );
        out.field("hot_keys", self.hot_set.len());
        out.field("pinned_keys", self.hot_set.pinned());
        out.field("entry_level", format!("{:.0}", self.hot_set.entry_level()));
        out.field("replicas", self.replicas.all().len());
        out.field("healthy_replicas", self.replicas.healthy_count());
        out.field("reported_reads", self.stats.reported_reads);
        out.field("run_id", self.events.run_id());
        out.field("last_seq", self.events.seq());
    }
}
