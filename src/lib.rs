//! repl-repair: repairs MySQL/MariaDB replicas stopped on 1062/1032 by fixing the rows the
//! failing transaction needs, instead of skipping it.
//!
//! The pipeline, one module per stage: [`watch`] → [`locate`] → [`binlog`] (decode) →
//! [`plan`] → [`apply`] → [`record`].

pub mod binlog;
pub mod plan;
pub mod schema;
pub mod sql;
pub mod status;
