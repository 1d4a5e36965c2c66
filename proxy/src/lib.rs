//! # hotkey-proxy
//!
//! A Redis proxy any client can talk to (Java, Go, Node, PHP, redis-cli): writes and cold
//! reads go to the master; reads of the keys the hotkey module calls hot go to a healthy
//! replica or to the proxy's cache, which the server's client tracking invalidates and which
//! the proxy's own writes invalidate before they are acknowledged. The upstream side (hot set,
//! routing rule, replica rotation, subscription, resync, reports) is `hotkey-router`'s.

