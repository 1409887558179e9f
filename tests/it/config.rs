//! The validation step as a user meets it: the binary, no server needed.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// `-p` with no value and no controlling terminal (cron, systemd): exit 2 with advice,
/// never a hang on a read that cannot end and never an empty password.
#[test]
fn password_prompt_without_a_terminal_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rr-cfg-prompt-{}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repl-repair"));
    cmd.args([
        "-p",
        "-S",
        "/nonexistent/rr.sock",
        "--once",
        "--journal-dir",
    ])
    .arg(dir.join("j"))
    .arg("--lock-dir")
    .arg(dir.join("l"))
    .stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe; it detaches the child from this terminal.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run repl-repair");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("asks for the password on a terminal, and there is none"),
        "{stderr}"
    );
    assert!(stderr.contains("--defaults-file"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
