//! A workspace built to freeze or crash discovery (issue 22: nothing a workspace sends can
//! freeze or crash the daemon): `berth pull` with `discover`, the real binary under a
//! memory and a CPU bound of its own, finishes normally and says plainly what it skipped.

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use support::*;

/// The address space berth may take: `berth pull` needs well under 256 MiB here; before
/// issue 22 it aborted on this workspace under 4 GiB (and under this bound).
const MEMORY_BYTES: libc::rlim_t = 1 << 30;

/// The CPU time berth may take. A bound, not a measure: berth takes a fraction of a second,
/// and a regression that went quadratic or looped would be killed here (SIGXCPU) rather
/// than hold the suite.
const CPU_SECONDS: libc::rlim_t = 60;

/// Sets a resource limit of the calling process.
fn limit(resource: libc::__rlimit_resource_t, value: libc::rlim_t) -> std::io::Result<()> {
    let bound = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(resource, &bound) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Opens the other end of a FIFO in a thread, so that a reader that blocks on it is let go
/// (it then reads an empty file, and the test fails on what berth says, not by waiting);
/// the returned function lets the thread go when no reader came.
fn writer_for(fifo: &Path) -> impl FnOnce() {
    let path = fifo.to_path_buf();
    let writer = std::thread::spawn(move || {
        // Blocks until someone opens the FIFO to read it, then closes it at once.
        let _ = OpenOptions::new().write(true).open(&path);
    });
    let fifo = fifo.to_path_buf();
    move || {
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        writer.join().unwrap();
    }
}

#[test]
fn pull_with_discover_survives_a_hostile_workspace_and_says_what_it_skipped() {
    let dir = scratch();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir(&workspace).unwrap();
    // The image that made `berth pull` abort: `${A:-` nested 60,000 deep (360 KB).
    let deep = format!("{}x{}", "${A:-".repeat(60_000), "}".repeat(60_000));
    std::fs::write(
        workspace.join("compose.yaml"),
        format!("services:\n  app:\n    image: '{deep}'\n"),
    )
    .unwrap();
    // A Dockerfile no one ever writes to.
    let fifo = workspace.join("Dockerfile");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let release_writer = writer_for(&fifo);

    let mut cmd = berth(dir.path());
    cmd.env("BERTH_DISCOVER", "true")
        .env("BERTH_WORKSPACE", &workspace)
        .arg("pull");
    // SAFETY: between fork and exec, the closure only calls setrlimit, which is
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            limit(libc::RLIMIT_AS, MEMORY_BYTES)?;
            limit(libc::RLIMIT_CPU, CPU_SECONDS)
        });
    }
    let out = run(&mut cmd);
    release_writer();

    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let quoted = "${A:-".repeat(20);
    let expected = [
        "berth: Dockerfile: is a FIFO, not a regular file; skipped".to_string(),
        format!(
            "berth: compose.yaml:3: service \"app\": image \"{quoted}…\" skipped: its ${{...}} \
             nest deeper than 32 levels, more than berth resolves; write it with fewer nested \
             defaults"
        ),
        "berth: no images to pull (name some, or set the images option / BERTH_IMAGES)".to_string(),
    ];
    assert_eq!(stderr.lines().collect::<Vec<_>>(), expected, "{said}");
}
