//! The integration tests, one binary with a module per theme (ripgrep's layout): live
//! repairs on real MariaDB labs (`live`, `trust`, `converge`, `statement`, `ops`, `check`,
//! `seek`, `remote`), the decoder against real binlog files (`shared_corpus`, `decoder_fixtures`,
//! `status_fixtures`, `decode_threads`), configuration, and the Debian package. Shared helpers (the lab,
//! the agent's output) live in `support`.

#[path = "../support/mod.rs"]
mod support;

mod check;
mod config;
mod converge;
mod decode_threads;
mod decoder_fixtures;
mod live;
mod ops;
mod package;
mod remote;
mod seek;
mod shared_corpus;
mod statement;
mod status_fixtures;
mod trust;
