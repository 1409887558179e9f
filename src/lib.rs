//! repl-repair: repairs MySQL/MariaDB replicas stopped on 1062/1032 by fixing the rows the
//! failing transaction needs, instead of skipping it.
//!
//! The pipeline, one module per stage: [`watch`] (poll, via [`status`]) → [`locate`] →
//! [`binlog`] (decode) → [`plan`] (with [`schema`], [`sql`]) → [`apply`] → [`record`];
//! [`repair`] runs one incident through it. [`cli`] parses the flags, [`config`] validates
//! them (with [`option_file`]) into the configuration; [`clock`] formats every timestamp.

pub mod apply;
pub mod binlog;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod docs;
pub mod dump;
pub mod event;
pub mod grants;
pub mod limits;
pub mod locate;
pub mod metrics;
pub mod option_file;
pub mod plan;
pub mod policy;
pub mod primary;
pub mod record;
pub mod repair;
pub mod replica;
pub mod schema;
pub mod sql;
pub mod statement;
pub mod status;
pub mod watch;
