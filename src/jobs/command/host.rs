//! This host and its processes, as Linux's `/proc` shows them: who we are (so a daemon knows
//! which recorded processes it can see), whether a recorded process is still the same one,
//! and ending a process group left behind by a dead daemon.
//!
//! Written by hand over `/proc` and `kill(2)`: the process crates (sysinfo, procfs) would add a
//! dependency for the three fields read here, and none of them ends a process group and waits
//! for its last member.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

/// Where process ids mean the same processes: the host name, the kernel's boot id and the PID
/// namespace. Two daemons with the same key see each other's processes; a daemon in another
/// container, on another machine or after a reboot does not, so it never acts on pids
/// recorded elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey(String);

impl HostKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is(&self, stored: Option<&str>) -> bool {
        stored == Some(self.0.as_str())
    }
}

/// This process's host key (read once).
pub fn this_host() -> &'static HostKey {
    static KEY: OnceLock<HostKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let name = gethostname::gethostname().to_string_lossy().into_owned();
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let pid_ns = std::fs::read_link("/proc/self/ns/pid")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        HostKey(format!("{name}/{boot}/{pid_ns}"))
    })
}

/// The fields of `/proc/PID/stat` used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: i32,
    /// Start time in clock ticks after boot: with the pid, it names one process for good.
    start: i64,
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold spaces and
/// parentheses, so the fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state (3), ppid (4), pgrp (5) … starttime (22).
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// When process `pid` started (clock ticks after boot), if it exists.
pub fn start_of(pid: u32) -> Option<i64> {
    stat(i32::try_from(pid).ok()?).map(|s| s.start)
}

/// Whether the process recorded as (`pid`, `start`) on this host still runs: the pid exists,
/// is not a zombie, and started at the recorded time (else the pid was reused).
pub fn still_running(pid: i32, start: i64) -> bool {
    stat(pid).is_some_and(|s| s.start == start && !matches!(s.state, 'Z' | 'X'))
}

/// Whether any live (non-zombie) process is in group `pgid`.
fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .any(|s| s.pgrp == pgid && !matches!(s.state, 'Z' | 'X'))
}

/// A process group an attempt started: its id and its leader's start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    pub pgid: i32,
    pub start: Option<i64>,
}

impl Group {
    /// The group of the process `pid`, which leads it (`process_group(0)`).
    pub fn led_by(pid: u32) -> Option<Self> {
        Some(Self {
            pgid: i32::try_from(pid).ok()?,
            start: start_of(pid),
        })
    }

    /// Whether something of this group may still run. A leader with another start time means
    /// the pid was reused after the group ended: Linux keeps a number in use while any
    /// process has it as its group id, so the number was free, so the group is gone.
    fn may_run(&self) -> bool {
        match (stat(self.pgid), self.start) {
            (Some(leader), Some(start)) if leader.start != start => false,
            _ => group_alive(self.pgid),
        }
    }

    /// Ends the group with SIGKILL and waits up to `patience` for its last member to die.
    /// Returns whether it is gone. Blocking (it polls `/proc`): call from a blocking thread.
    pub fn end(&self, patience: Duration) -> bool {
        if self.pgid <= 1 || !self.may_run() {
            return true;
        }
        // SAFETY: kill(2) has no memory effects; a negative pid addresses the group, and
        // `may_run` checked the number still names the group we recorded.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
        let until = Instant::now() + patience;
        while Instant::now() < until {
            if !group_alive(self.pgid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        !group_alive(self.pgid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = "4242 (sh (odd) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 2600000 300";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                pgrp: 4240,
                start: 987654
            })
        );
        assert_eq!(parse_stat("4242 (truncated"), None);
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_is_running_and_a_changed_start_is_not() {
        let me = std::process::id();
        let start = start_of(me).expect("own stat");
        let pid = i32::try_from(me).expect("pid");
        assert!(still_running(pid, start));
        assert!(!still_running(pid, start + 1));
        assert!(!still_running(i32::MAX, start));
    }

    #[test]
    fn a_group_is_ended_with_everything_in_it() {
        use std::os::unix::process::CommandExt as _;
        // A shell that leaves a grandchild behind in its group.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30"])
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let group = Group::led_by(child.id()).expect("group");
        std::thread::sleep(Duration::from_millis(100));
        assert!(group.may_run());
        assert!(group.end(Duration::from_secs(5)));
        let _ = child.wait();
        assert!(!group_alive(group.pgid));
        // A group recorded with another start time is not touched.
        let reused = Group {
            pgid: i32::try_from(std::process::id()).expect("pid"),
            start: Some(-1),
        };
        assert!(!reused.may_run());
    }

    #[test]
    fn the_host_key_names_boot_and_namespace() {
        let key = this_host();
        assert_eq!(key.as_str().split('/').count(), 3, "{key:?}");
        assert!(key.is(Some(key.as_str())));
        assert!(!key.is(None));
    }
}
