//! One file per command: parse the arguments into a struct, then run it.

pub mod top;
