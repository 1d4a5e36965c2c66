//! Events on the pub/sub channel: hot, cold, update, heartbeat, seq, binary keys, PIN/UNPIN/REPORT.
