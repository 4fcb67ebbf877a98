//! What berth knows of the container it runs in: who runs its entrypoints, and when it
//! started.
//!
//! The features' entrypoints run as the container's own user, the user of its first
//! process (PID 1): root in most images, a user such as `codespace` in some. That user
//! runs berth's daemon; a lifecycle hook run by another user (the remote user) never
//! starts a daemon of its own, so that the daemon's privileges never depend on which
//! started first. When PID 1 started tells a hook whether the daemon it cannot reach
//! already ran in this container's life (it stopped) or has yet to be started by the
//! entrypoint (wait for it).

use std::time::{Duration, SystemTime};

use nix::unistd::Uid;

/// This container's identity: the engine's container id (from the files it mounts, such
/// as `/etc/hostname`, which live in `.../containers/<id>/`), shortened to 12 characters as
/// the Docker CLI shows it, else the host name. A container created from another's
/// snapshot (a prebuild) has another identity; a restart keeps it.
pub fn id() -> Option<String> {
    if let Ok(mounts) = std::fs::read_to_string("/proc/self/mountinfo")
        && let Some(id) = id_in_mountinfo(&mounts)
    {
        return Some(id);
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The first `.../containers/<64 hex>/...` in a mountinfo text, shortened.
fn id_in_mountinfo(mounts: &str) -> Option<String> {
    mounts.lines().find_map(|line| {
        let at = line.find("/containers/")? + "/containers/".len();
        let rest = &line[at..];
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (id.len() == 64 && rest[64..].starts_with('/')).then(|| id[..12].to_string())
    })
}

/// The user of the container's first process, if `/proc` tells.
pub fn user() -> Option<Uid> {
    let status = std::fs::read_to_string("/proc/1/status").ok()?;
    parse_uid(&status)
}

/// The real uid on the `Uid:` line of a `/proc/PID/status` text.
fn parse_uid(status: &str) -> Option<Uid> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .map(Uid::from_raw)
}

/// When the container's first process started, if `/proc` tells.
pub fn started_at() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/1/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|t| *t > 0)? as u64;
    start_time(&stat, &boot, ticks)
}

/// The start time from `/proc/PID/stat` (field 22, clock ticks since boot) and the boot
/// time (`btime` of `/proc/stat`).
fn start_time(stat: &str, proc_stat: &str, ticks_per_second: u64) -> Option<SystemTime> {
    // The command name (field 2) is in parentheses and may hold blanks: count after it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after_name.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(btime)
            + Duration::from_millis(ticks * 1000 / ticks_per_second),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_uid() {
        let status =
            "Name:\tsh\nUmask:\t0022\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_uid(status), Some(Uid::from_raw(1000)));
        assert_eq!(parse_uid("Name: x\n"), None);
    }

    #[test]
    fn start_time_counts_fields_after_the_command_name() {
        let stat = "1 (my (odd) init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 250 123 45";
        let t = start_time(stat, "cpu 1 2\nbtime 1000\n", 100).unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_millis(1_002_500));
    }

    #[test]
    fn the_container_id_comes_from_the_files_the_engine_mounts() {
        let mounts = "1 0 0:1 / / rw - overlay overlay rw\n\
            2 1 8:1 /var/lib/docker/containers/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n";
        assert_eq!(id_in_mountinfo(mounts).as_deref(), Some("0123456789ab"));
        assert_eq!(id_in_mountinfo("1 0 0:1 / / rw - ext4 x rw\n"), None);
        assert!(id().is_some());
    }

    #[test]
    fn this_machine_has_a_first_process() {
        assert!(user().is_some());
        assert!(started_at().is_some_and(|t| t <= SystemTime::now()));
    }
}
