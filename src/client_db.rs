//! Which database each client has selected, as seen by the command filter.
//!
//! A command filter is not told the client's database, only (on Redis ≥ 7.2 and Valkey) its
//! id. So the module keeps the answer itself: connections are added when they connect (a
//! server event, outside the filter, which is where the map may grow), `SELECT` and `RESET`
//! seen by the filter update them, and they are removed on disconnect. Commands from clients
//! that never connected — the script engine's client running `redis.call`, a module's
//! `RM_Call` — run in the database of the script's caller, which is remembered when the filter
//! sees the `EVAL`/`FCALL` that started it.

use rustc_hash::FxHashMap;

/// Client id → selected database, for every connected client.
#[derive(Debug, Default)]
pub struct ClientDbs {
    connected: FxHashMap<u64, u32>,
    /// The database of the script (or other internal client) running now.
    internal_db: u32,
}

impl ClientDbs {
    /// A client connected (database 0). May allocate; never called from the filter.
    pub fn connect(&mut self, id: u64) {
        self.connected.insert(id, 0);
    }

    /// A client connected before the module loaded, already in `db`.
    pub fn connect_in(&mut self, id: u64, db: u32) {
        self.connected.insert(id, db);
    }

    /// A client disconnected.
    pub fn disconnect(&mut self, id: u64) {
        self.connected.remove(&id);
    }

    /// The client ran `SELECT db` (the caller checked that `db` is a valid index).
    pub fn select(&mut self, id: u64, db: u32) {
        match self.connected.get_mut(&id) {
            Some(d) => *d = db,
            None => self.internal_db = db,
        }
    }

    /// The client ran `EVAL`/`FCALL`/...: its script's commands run in its database.
    pub fn script_started(&mut self, id: u64) {
        if let Some(&db) = self.connected.get(&id) {
            self.internal_db = db;
        }
    }

    /// The database the client's next command runs in.
    pub fn db_of(&self, id: u64) -> u32 {
        self.connected.get(&id).copied().unwrap_or(self.internal_db)
    }

    /// Number of connected clients known.
    pub fn len(&self) -> usize {
        self.connected.len()
    }

    /// Whether no client is known.
    pub fn is_empty(&self) -> bool {
        self.connected.is_empty()
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.connected.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connected_clients_keep_their_own_db() {
        let mut dbs = ClientDbs::default();
        dbs.connect(1);
        dbs.connect(2);
        dbs.select(2, 3);
        assert_eq!(dbs.db_of(1), 0);
        assert_eq!(dbs.db_of(2), 3);
        dbs.disconnect(2);
        assert_eq!(dbs.len(), 1);
    }

    #[test]
    fn script_commands_run_in_the_callers_db() {
        let mut dbs = ClientDbs::default();
        dbs.connect(1);
        dbs.select(1, 5);
        dbs.script_started(1);
        // The script engine's client (id 99) never connected.
        assert_eq!(dbs.db_of(99), 5);
        // SELECT inside the script moves the script, not the caller.
        dbs.select(99, 2);
        assert_eq!(dbs.db_of(99), 2);
        assert_eq!(dbs.db_of(1), 5);
        dbs.connect(3);
        dbs.script_started(3);
        assert_eq!(dbs.db_of(99), 0);
    }

    #[test]
    fn clients_known_at_load_keep_their_db() {
        let mut dbs = ClientDbs::default();
        dbs.connect_in(7, 4);
        assert_eq!(dbs.db_of(7), 4);
        assert!(dbs.memory_bytes() > 0);
    }
}
