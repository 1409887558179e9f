//! repl-repair: repairs MySQL/MariaDB replicas stopped on 1062/1032 by fixing the rows the
//! failing transaction needs, instead of skipping it.
//!
//! The pipeline, one module per stage: [`watch`] (poll, via [`status`]) → [`locate`] →
//! [`binlog`] (decode) → [`plan`] (with [`schema`], [`sql`]) → [`apply`] → [`record`];
//! [`repair`] runs one incident through it, [`cli`] builds the configuration.

pub mod apply;
pub mod binlog;
pub mod cli;
pub mod config;
pub mod dump;
pub mod event;
pub mod limits;
pub mod locate;
pub mod metrics;
pub mod plan;
pub mod record;
pub mod repair;
pub mod schema;
pub mod sql;
pub mod statement;
pub mod status;
pub mod watch;
