//! `hotkey-proxy` run as a user runs it, in front of real servers, with real clients.

mod common;
mod differential;
mod faults;
mod login;
mod raw;
mod routing;
mod state;
