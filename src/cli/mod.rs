//! Commands of the `mailroom` binary beyond serving, as library code the tests can reach.

pub mod users;
