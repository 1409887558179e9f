//! The man page and shell completions, generated from the clap definition in
//! [`crate::cli::Args`] so they never drift from the flags. `scripts/package` calls the
//! hidden `repl-repair man` / `repl-repair completions SHELL` of the binary it packages:
//! build.rs would need the CLI definition in a module it can include, and cli.rs
//! depends on the rest of the crate.

use crate::cli::Args;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Sections clap does not know about: where the package puts things, exit codes.
const EXTRA: &str = r#".SH "EXIT STATUS"
With \fB\-\-once\fR and \fBcheck\fR: \fB0\fR healthy, repaired or ready;
\fB1\fR something needs a human (a repair refused or failed, circuit open,
another agent holds the lock; for \fBcheck\fR: some repairs would be refused);
\fB2\fR the agent cannot do its job (configuration, unreachable instance,
not a replica, missing grant, relay log not readable, unusable directory).
.SH FILES
.TP
.I /etc/repl-repair/my.cnf
Credentials ([client] user, password, socket), read with \fB\-\-defaults\-file\fR.
.TP
.I /etc/default/repl-repair
Further flags for the systemd unit (\fBREPL_REPAIR_ARGS\fR).
.TP
.I /var/lib/repl-repair
Undo journals, audit trail, dead letters (\fB\-\-journal\-dir\fR); kept when the package is removed.
.TP
.I /run/repl-repair
Lock files, one per instance (\fB\-\-lock\-dir\fR).
.TP
.I /var/log/repl-repair
Logs (\fB\-l\fR); SIGHUP reopens them.
.SH "SEE ALSO"
.BR mariadb (1),
.BR systemctl (1),
.IR /usr/share/doc/repl-repair/README.md
"#;

/// Writes the man page (roff) to `out`.
pub fn man(out: &mut impl Write) -> std::io::Result<()> {
    let cmd = Args::command();
    clap_mangen::Man::new(cmd).render(out)?;
    out.write_all(EXTRA.as_bytes())
}

/// Writes every page into `dir`: `repl-repair.1` (with the sections above) and one per
/// subcommand (`repl-repair-check.1`, …), which the main page refers to.
pub fn man_pages(dir: &Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Args::command(), dir)?;
    let main = dir.join("repl-repair.1");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&main)?
        .write_all(EXTRA.as_bytes())
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut impl Write) {
    let mut cmd = Args::command();
    clap_complete::generate(shell, &mut cmd, "repl-repair", out);
}
