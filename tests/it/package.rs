//! The Debian package: `scripts/package` builds it (release build included), dpkg
//! installs it into a fresh root (`dpkg --root`, maintainer scripts run with DPKG_ROOT),
//! and the test checks what landed there: binary, unit (`systemd-analyze verify`),
//! conffiles and their modes, directories owned by the root's mysql user, the man page
//! (`man -l`), the completions (bash asked for real completions), then removal and purge
//! leaving the journals in place. Slow (a release build): its own test file.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    out
}

/// The fresh root's mysql user: not the host's, so ownership proves the postinst used
/// the root's own /etc/passwd.
const MYSQL_UID: u32 = 4242;
const MYSQL_GID: u32 = 4243;

fn dpkg(root: &Path) -> Command {
    let mut c = Command::new("dpkg");
    c.arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--log=/dev/null"]);
    c
}

fn mode(p: &Path) -> (u32, u32, u32) {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (md.permissions().mode() & 0o7777, md.uid(), md.gid())
}

#[test]
fn package_builds_installs_into_a_fresh_root_and_removal_keeps_the_journals() {
    let started = Instant::now();
    let out = run(Command::new(repo().join("scripts/package")).current_dir(repo()));
    let build = started.elapsed();
    let deb = repo().join(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim(),
    );
    assert!(
        deb.starts_with(repo().join("target/debian")) && deb.is_file(),
        "{}",
        deb.display()
    );
    let size = std::fs::metadata(&deb).unwrap().len();
    eprintln!(
        "package {}: {size} bytes, scripts/package took {:.1}s",
        deb.display(),
        build.as_secs_f64()
    );
    // A stripped binary: the release profile once shipped 50 MB of debug info.
    let bin_size = std::fs::metadata(repo().join("target/release/repl-repair"))
        .unwrap()
        .len();
    assert!(bin_size < 15_000_000, "release binary is {bin_size} bytes");
    assert!(size < 8_000_000, "package is {size} bytes");

    // A fresh root: an empty dpkg database and a mysql user of its own.
    let root = repo().join("target/package-test/root");
    let _ = std::fs::remove_dir_all(&root);
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        format!("mysql:x:{MYSQL_UID}:{MYSQL_GID}:MySQL Server:/nonexistent:/bin/false\n"),
    )
    .unwrap();
    // libc6/libgcc-s1 are not in this empty database: apt-get resolves them on a real
    // machine; here the dependencies are forced, nothing else is.
    run(dpkg(&root)
        .arg("--force-depends")
        .arg("--install")
        .arg(&deb));

    let p = |rel: &str| root.join(rel);
    for (rel, want) in [
        ("usr/bin/repl-repair", 0o755),
        ("usr/lib/systemd/system/repl-repair.service", 0o644),
        ("usr/lib/tmpfiles.d/repl-repair.conf", 0o644),
        ("etc/default/repl-repair", 0o644),
        ("etc/logrotate.d/repl-repair", 0o644),
        ("usr/share/man/man1/repl-repair.1.gz", 0o644),
        ("usr/share/man/man1/repl-repair-check.1.gz", 0o644),
        ("usr/share/man/man1/repl-repair-decode.1.gz", 0o644),
        ("usr/share/bash-completion/completions/repl-repair", 0o644),
        ("usr/share/zsh/vendor-completions/_repl-repair", 0o644),
        (
            "usr/share/fish/vendor_completions.d/repl-repair.fish",
            0o644,
        ),
        ("usr/share/doc/repl-repair/examples/repl-repair.cron", 0o644),
        (
            "usr/share/doc/repl-repair/examples/repl-repair.rules.yml",
            0o644,
        ),
        ("usr/share/doc/repl-repair/README.md", 0o644),
        ("usr/share/doc/repl-repair/copyright", 0o644),
    ] {
        assert_eq!(mode(&p(rel)).0, want, "{rel}");
    }
    // Credentials: 0600, the mysql user's; the agent's directories are its own.
    assert_eq!(
        mode(&p("etc/repl-repair/my.cnf")),
        (0o600, MYSQL_UID, MYSQL_GID)
    );
    assert_eq!(
        mode(&p("var/lib/repl-repair")),
        (0o700, MYSQL_UID, MYSQL_GID)
    );
    assert_eq!(
        mode(&p("var/log/repl-repair")),
        (0o750, MYSQL_UID, MYSQL_GID)
    );
    assert_eq!(mode(&p("run/repl-repair")), (0o700, MYSQL_UID, MYSQL_GID));
    let conffiles = run(Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .args(["-W", "-f=${Conffiles}", "repl-repair"]));
    let conffiles = String::from_utf8_lossy(&conffiles.stdout);
    for c in [
        "/etc/repl-repair/my.cnf",
        "/etc/default/repl-repair",
        "/etc/logrotate.d/repl-repair",
    ] {
        assert!(conffiles.contains(c), "{c} not a conffile: {conffiles}");
    }

    // The installed binary runs and is the stripped release build.
    let v = run(Command::new(p("usr/bin/repl-repair")).arg("--version"));
    assert!(
        String::from_utf8_lossy(&v.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        text(&v)
    );
    let f = run(Command::new("file").arg(p("usr/bin/repl-repair")));
    assert!(
        String::from_utf8_lossy(&f.stdout).contains("stripped")
            && !String::from_utf8_lossy(&f.stdout).contains("not stripped"),
        "{}",
        text(&f)
    );

    // The unit: runs as mysql with its three directories, and systemd accepts it. The
    // verify root holds the unit, its binary and the host's targets (this container
    // runs no systemd; `verify` works offline).
    let unit = std::fs::read_to_string(p("usr/lib/systemd/system/repl-repair.service")).unwrap();
    for line in [
        "User=mysql",
        "StateDirectory=repl-repair",
        "RuntimeDirectory=repl-repair",
        "LogsDirectory=repl-repair",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "--journal-dir /var/lib/repl-repair --lock-dir /run/repl-repair",
    ] {
        assert!(unit.contains(line), "unit lacks {line:?}:\n{unit}");
    }
    let vroot = repo().join("target/package-test/verify-root");
    let _ = std::fs::remove_dir_all(&vroot);
    let units = vroot.join("usr/lib/systemd/system");
    for d in [&units, &vroot.join("usr/bin"), &vroot.join("bin")] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(
        p("usr/lib/systemd/system/repl-repair.service"),
        units.join("repl-repair.service"),
    )
    .unwrap();
    std::fs::copy(p("usr/bin/repl-repair"), vroot.join("usr/bin/repl-repair")).unwrap();
    std::fs::copy("/bin/kill", vroot.join("bin/kill")).expect("/bin/kill (procps)");
    for e in std::fs::read_dir("/usr/lib/systemd/system")
        .expect("host systemd units (apt-get install systemd)")
        .flatten()
    {
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".target") && e.path().is_file() {
            std::fs::copy(e.path(), units.join(&name)).unwrap();
        }
    }
    let verify = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(format!("--root={}", vroot.display()))
        .arg("/usr/lib/systemd/system/repl-repair.service"));
    assert!(
        verify.stderr.is_empty() && verify.stdout.is_empty(),
        "systemd-analyze verify complained: {}",
        text(&verify)
    );

    // The man page, rendered by man-db.
    let man = run(Command::new("man")
        .arg("-l")
        .arg(p("usr/share/man/man1/repl-repair.1.gz"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200"));
    let man = String::from_utf8_lossy(&man.stdout);
    for want in [
        "repl-repair",
        "--journal-dir",
        "check",
        "EXIT STATUS",
        "/etc/repl-repair/my.cnf",
    ] {
        assert!(man.contains(want), "man page lacks {want:?}:\n{man}");
    }

    let check_page = run(Command::new("man")
        .arg("-l")
        .arg(p("usr/share/man/man1/repl-repair-check.1.gz"))
        .env("MANPAGER", "cat"));
    assert!(
        String::from_utf8_lossy(&check_page.stdout).contains("changing nothing"),
        "{}",
        text(&check_page)
    );

    // bash completes flags and subcommands with the installed script.
    let complete = |words: &str| {
        let script = format!(
            r#"source "$1"
fn=$(complete -p repl-repair | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
"$fn" repl-repair "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
        );
        let out = run(Command::new("bash")
            .args(["--noprofile", "--norc", "-c", &script, "bash"])
            .arg(p("usr/share/bash-completion/completions/repl-repair")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let flags = complete("repl-repair --journal");
    assert!(flags.lines().any(|l| l == "--journal-dir"), "{flags}");
    let subs = complete("repl-repair ch");
    assert!(subs.lines().any(|l| l == "check"), "{subs}");
    let zsh = std::fs::read_to_string(p("usr/share/zsh/vendor-completions/_repl-repair")).unwrap();
    assert!(
        zsh.starts_with("#compdef repl-repair") && zsh.contains("--journal-dir"),
        "zsh"
    );
    let fish =
        std::fs::read_to_string(p("usr/share/fish/vendor_completions.d/repl-repair.fish")).unwrap();
    assert!(
        fish.contains("complete -c repl-repair") && fish.contains("journal-dir"),
        "fish"
    );
    let logrotate = std::fs::read_to_string(p("etc/logrotate.d/repl-repair")).unwrap();
    assert!(
        logrotate.contains("/var/log/repl-repair/*.log") && logrotate.contains("HUP"),
        "{logrotate}"
    );

    // Removal keeps the journals (data) and the conffiles; purge drops the conffiles and
    // logs, still not the journals.
    let journal = p("var/lib/repl-repair/3306/20250101T000000Z-1062.undo.sql");
    std::fs::create_dir_all(journal.parent().unwrap()).unwrap();
    std::fs::write(
        &journal,
        "INSERT INTO lab.t VALUES (1);\n-- outcome: committed\n",
    )
    .unwrap();
    run(dpkg(&root).args(["--remove", "repl-repair"]));
    assert!(!p("usr/bin/repl-repair").exists());
    assert!(!p("usr/share/man/man1/repl-repair.1.gz").exists());
    assert!(journal.is_file(), "remove deleted a journal");
    assert!(
        p("etc/repl-repair/my.cnf").is_file(),
        "remove deleted a conffile"
    );
    let purge = run(dpkg(&root).args(["--purge", "repl-repair"]));
    assert!(journal.is_file(), "purge deleted a journal");
    assert!(
        !p("etc/repl-repair").exists(),
        "purge left /etc/repl-repair"
    );
    assert!(!p("var/log/repl-repair").exists(), "purge left the logs");
    assert!(
        String::from_utf8_lossy(&purge.stderr).contains("/var/lib/repl-repair"),
        "purge does not say the journals were kept: {}",
        text(&purge)
    );
    let _ = std::fs::remove_dir_all(repo().join("target/package-test"));
    eprintln!("package test total {:.1}s", started.elapsed().as_secs_f64());
}
