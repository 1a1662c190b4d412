//! `make install` (issue 12), run into a scratch directory with the debug binaries this test
//! run built (`BUILD=debug`, so no release build is made here).
//!
//! Proves: `make install DESTDIR=… PREFIX=/usr` puts the three programs, the three man pages,
//! the systemd units and `/etc/default/pop3filter` where they belong; every path a unit names
//! (ExecStart, EnvironmentFile, the man pages of Documentation=, the units of Service= and
//! Also=) is one of the installed files (or, for /bin/kill, the system's); the installed
//! programs run; a second install leaves an environment file the operator edited alone;
//! `make uninstall` removes everything but it. Installed somewhere real (PREFIX in a scratch
//! directory, no DESTDIR), the units pass `systemd-analyze verify`, which also checks that
//! ExecStart is executable.

mod common;

use common::scratch;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PROGRAMS: [&str; 3] = ["pop3filter", "spcpctl", "stripmime"];
const UNITS: [&str; 3] = [
    "pop3filter.service",
    "pop3filter.socket",
    "pop3filter-pop3s.socket",
];

/// The directory of the binaries this test run built.
fn built() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_pop3filter"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `make TARGET VARS...` in the source tree, with the debug binaries; must succeed.
fn make(target: &str, vars: &[String]) -> Output {
    let out = Command::new("make")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // The outer `make test`'s jobserver is not ours.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .arg("-s")
        .arg(target)
        .arg("BUILD=debug")
        .arg(format!("BUILT={}", built().display()))
        .args(vars)
        .output()
        .expect("run make");
    assert!(
        out.status.success(),
        "make {target} {vars:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A unit file's `Key=Value` lines (a key given several times keeps every value).
fn unit(path: &Path) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with('[') || line.is_empty() {
            continue;
        }
        let (k, v) = line.split_once('=').unwrap();
        keys.entry(k.to_string()).or_default().push(v.to_string());
    }
    keys
}

/// The file an absolute path of a unit refers to, once installed under `dest`.
fn under(dest: &Path, path: &str) -> PathBuf {
    assert!(path.starts_with('/'), "{path:?} is not absolute");
    dest.join(path.trim_start_matches('/'))
}

#[test]
fn make_install_puts_every_file_where_the_units_expect_it() {
    let dest = scratch("install");
    let vars = [format!("DESTDIR={}", dest.display()), "PREFIX=/usr".into()];
    make("install", &vars);

    let mut expected: Vec<(String, u32)> = PROGRAMS
        .iter()
        .map(|p| (format!("usr/bin/{p}"), 0o755))
        .collect();
    for page in ["man8/pop3filter.8", "man1/spcpctl.1", "man1/stripmime.1"] {
        expected.push((format!("usr/share/man/{page}"), 0o644));
    }
    for u in UNITS {
        expected.push((format!("usr/lib/systemd/system/{u}"), 0o644));
    }
    expected.push(("etc/default/pop3filter".into(), 0o644));
    for (file, mode) in &expected {
        let meta = fs::metadata(dest.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, *mode, "{file}");
    }
    let mut all = Vec::new();
    walk(&dest, &dest, &mut all);
    let mut names: Vec<&String> = expected.iter().map(|(f, _)| f).collect();
    names.sort();
    all.sort();
    assert_eq!(
        all.iter().collect::<Vec<_>>(),
        names,
        "nothing else installed"
    );

    let units = dest.join("usr/lib/systemd/system");
    let service = unit(&units.join("pop3filter.service"));
    let exec = &service["ExecStart"][0];
    assert_eq!(exec, "/usr/bin/pop3filter $POP3FILTER_OPTS");
    for line in service["ExecStart"].iter().chain(&service["ExecReload"]) {
        let program = line.trim_start_matches(['-', '@', ':', '+', '!']);
        let program = program.split_whitespace().next().unwrap();
        let ours = under(&dest, program);
        assert!(
            ours.is_file() || (!program.starts_with("/usr/bin/") && Path::new(program).is_file()),
            "{program} (from {line:?}) is neither installed nor the system's"
        );
    }
    for file in &service["EnvironmentFile"] {
        let file = file.trim_start_matches('-');
        assert_eq!(file, "/etc/default/pop3filter");
        assert!(under(&dest, file).is_file(), "{file}");
    }
    for u in UNITS {
        let keys = unit(&units.join(u));
        for doc in keys["Documentation"]
            .iter()
            .flat_map(|d| d.split_whitespace())
        {
            let page = doc.strip_prefix("man:").expect("man: pages");
            let (name, section) = page.trim_end_matches(')').split_once('(').unwrap();
            let path = format!("/usr/share/man/man{section}/{name}.{section}");
            assert!(under(&dest, &path).is_file(), "{u}: {doc} is not {path}");
        }
        for other in keys.get("Service").into_iter().chain(keys.get("Also")) {
            assert!(units.join(&other[0]).is_file(), "{u} names {}", other[0]);
        }
    }
    let socket = unit(&units.join("pop3filter.socket"));
    assert_eq!(socket["FileDescriptorName"], ["pop3"]);
    let pop3s = unit(&units.join("pop3filter-pop3s.socket"));
    assert_eq!(pop3s["FileDescriptorName"], ["pop3s"]);
    assert_eq!(pop3s["Service"], ["pop3filter.service"]);

    let env = fs::read_to_string(dest.join("etc/default/pop3filter")).unwrap();
    assert!(env.contains("\nPOP3FILTER_OPTS=\""), "{env}");
    assert!(
        !env.contains("/usr/local/bin/"),
        "examples name the installed path:\n{env}"
    );

    let version = Command::new(dest.join("usr/bin/pop3filter"))
        .arg("-v")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("pop3filter {}\n", env!("CARGO_PKG_VERSION"))
    );
    for p in ["spcpctl", "stripmime"] {
        let help = Command::new(dest.join("usr/bin").join(p))
            .arg("-h")
            .output()
            .unwrap();
        assert!(help.status.success(), "{p} -h");
    }

    // The operator's options survive a second install; uninstall leaves them too.
    fs::write(
        dest.join("etc/default/pop3filter"),
        "POP3FILTER_OPTS=\"mine\"\n",
    )
    .unwrap();
    make("install", &vars);
    let kept = fs::read_to_string(dest.join("etc/default/pop3filter")).unwrap();
    assert_eq!(kept, "POP3FILTER_OPTS=\"mine\"\n");
    make("uninstall", &vars);
    let mut left = Vec::new();
    walk(&dest, &dest, &mut left);
    assert_eq!(left, ["etc/default/pop3filter"]);
    fs::remove_dir_all(&dest).unwrap();
}

/// Every file under `dir`, relative to `root`.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).unwrap();
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn installed_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed (Debian package systemd): skipped");
        return;
    }
    let prefix = scratch("prefix");
    make(
        "install",
        &[
            format!("PREFIX={}", prefix.display()),
            format!("SYSCONFDIR={}", prefix.join("etc").display()),
        ],
    );
    let units = prefix.join("lib/systemd/system");
    let out = Command::new("systemd-analyze")
        .current_dir(&units)
        .args(["verify", "--man=no"])
        .args(UNITS)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    let service = unit(&units.join("pop3filter.service"));
    assert_eq!(
        service["ExecStart"],
        [format!(
            "{}/bin/pop3filter $POP3FILTER_OPTS",
            prefix.display()
        )]
    );
    fs::remove_dir_all(&prefix).unwrap();
}
