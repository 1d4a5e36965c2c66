//! `hotkey-proxy` run as a user runs it, in front of real servers, with real clients.

mod acl;
mod cluster;
mod common;
mod differential;
mod faults;
mod limits;
mod login;
mod raw;
mod routing;
mod sentinel;
mod state;
mod upstream_faults;
