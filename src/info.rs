//! The `hotkey` section of `INFO`. The server names it after the module and prefixes each
//! field with `hotkey_` (`hotkey_tracked_keys`), as for every module.

use redis_module::{InfoContext, RedisResult};

use crate::state;

/// Adds the `hotkey` section.
pub fn add_section(ctx: &InfoContext) -> RedisResult<()> {
    let Some(fields) = state::with(|s| {
        s.tracker.read_at(crate::now_ms());
        vec![
            ("enabled", i64::from(s.settings.enabled).to_string()),
            (
                "role",
                if s.replica { "replica" } else { "master" }.to_string(),
            ),
            ("tracked_keys", s.tracker.len().to_string()),
            ("evictions", s.tracker.evictions().to_string()),
            ("capacity", s.tracker.capacity().to_string()),
            ("memory_bytes", s.memory_bytes().to_string()),
            ("commands_seen", s.stats.commands_seen.to_string()),
            ("commands_sampled", s.stats.commands_sampled.to_string()),
            ("keys_counted", s.stats.keys_counted.to_string()),
            ("sample_fraction", format!("{:.6}", s.sampler.fraction())),
            ("commands_per_sec", format!("{:.0}", s.commands_per_sec)),
            ("keys_too_long", s.stats.keys_too_long.to_string()),
            ("unknown_commands", s.stats.unknown_commands.to_string()),
            (
                "movable_key_lookups",
                s.stats.movable_key_lookups.to_string(),
            ),
            ("command_table_size", s.table.len().to_string()),
            ("db_attribution", s.db_attribution().to_string()),
            ("keys_per_sec", format!("{:.0}", s.tracker.total_per_sec())),
            ("hot_keys", s.hot_set.len().to_string()),
            ("pinned_keys", s.hot_set.pinned().to_string()),
            ("entry_level", format!("{:.0}", s.hot_set.entry_level())),
            ("replicas", s.replicas.all().len().to_string()),
            ("healthy_replicas", s.replicas.healthy_count().to_string()),
            ("reported_reads", s.stats.reported_reads.to_string()),
            ("run_id", s.events.run_id().to_string()),
            ("last_seq", s.events.seq().to_string()),
        ]
    }) else {
        return Ok(());
    };
    // An empty section name: the server names the section after the module, `# hotkey`.
    let mut section = ctx.builder().add_section("");
    for (name, value) in fields {
        section = section.field(name, value)?;
    }
    section.build_section()?.build_info()?;
    Ok(())
}
