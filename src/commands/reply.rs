//! Writes replies field by field, so their shape is the documented one under RESP3 (maps)
//! and RESP2 (the server sends a map as a flat list of field–value pairs).

use redis_module::{Context, raw};

/// The reply being written to the caller of the current command.
pub struct Reply<'a>(pub &'a Context);

impl Reply<'_> {
    pub fn map(&self, fields: usize) {
        raw::reply_with_map(self.0.ctx, fields as i64);
    }

    pub fn array(&self, len: usize) {
        raw::reply_with_array(self.0.ctx, len as i64);
    }

    pub fn bytes(&self, b: &[u8]) {
        raw::reply_with_string_buffer(self.0.ctx, b.as_ptr().cast(), b.len());
    }

    pub fn int(&self, i: i64) {
        raw::reply_with_long_long(self.0.ctx, i);
    }

    pub fn double(&self, d: f64) {
        raw::reply_with_double(self.0.ctx, d);
    }

    /// A map field's name; its value follows.
    pub fn field(&self, name: &str) -> &Self {
        self.bytes(name.as_bytes());
        self
    }
}
