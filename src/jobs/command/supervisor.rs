//! The supervisor: the first process of every `command` job, `patron __supervise PARENT
//! PROGRAM ARGS…`, so that the job's whole process group ends when its daemon dies.
//!
//! `PR_SET_PDEATHSIG` reaches only the daemon's direct child, and a program's own children
//! would outlive it. So the daemon starts this supervisor as the leader of a new process
//! group, with SIGHUP as its parent-death signal; the supervisor starts the program in the
//! same group and waits. When the daemon dies it sends the whole group SIGTERM, and SIGKILL
//! after a grace period. Otherwise it only passes the program's exit on: the same code, or
//! death by the same signal. Signals the daemon sends the group (SIGTERM on cancel or
//! timeout) reach the program directly; the supervisor waits for it to act on them.
//!
//! Runs before anything else in `main` (no runtime, no threads), so plain blocking calls are
//! fine here.

use std::{
    ffi::OsString,
    os::unix::process::ExitStatusExt as _,
    process::{Child, ExitStatus},
    time::{Duration, Instant},
};

/// The hidden first argument that makes `patron` a supervisor.
pub const ARG: &str = "__supervise";

/// After the daemon died, how long the group gets between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// Exit code when the program cannot be started (as shells do).
const CANNOT_START: i32 = 127;

/// Runs the supervisor on the arguments after [`ARG`]; returns the exit code (or does not
/// return, when it ends by the program's signal).
pub fn main(mut args: impl Iterator<Item = OsString>) -> i32 {
    let parent: Option<i32> = args
        .next()
        .and_then(|p| p.to_str().and_then(|p| p.parse().ok()));
    let (Some(parent), Some(program)) = (parent, args.next()) else {
        eprintln!("usage: patron {ARG} PARENT_PID PROGRAM [ARGS…]");
        return 2;
    };
    let waited = waited_signals();
    // SAFETY: sigprocmask on a set built above; this process has one thread.
    unsafe {
        libc::sigprocmask(libc::SIG_BLOCK, &waited, std::ptr::null_mut());
    }
    // The daemon may have died before the death signal was armed (then it would never come).
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != parent {
        return CANNOT_START;
    }
    // std resets the signal mask and dispositions in the child, so the program starts with
    // the usual ones.
    let mut child = match std::process::Command::new(&program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            eprintln!("cannot start `{}`: {e}", program.to_string_lossy());
            return CANNOT_START;
        }
    };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            exit_like(status);
        }
        // SIGHUP (the death signal) or SIGCHLD cut the wait short; the parent check below
        // also catches a death whose signal was lost. SIGTERM and SIGINT were sent to the
        // whole group, so the program has them too: wait for it to act on them.
        let _ = wait_signal(&waited, Duration::from_secs(1));
        // SAFETY: getppid has no preconditions.
        if unsafe { libc::getppid() } != parent {
            end_group(&mut child);
        }
    }
}

fn waited_signals() -> libc::sigset_t {
    // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset, which initialises it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Waits up to `timeout` for one of the blocked signals in `set`; returns it.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
    let s = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (s > 0).then_some(s)
}

/// The daemon is gone: SIGTERM to the group, SIGKILL after the grace period (which ends this
/// process too).
fn end_group(child: &mut Child) -> ! {
    // SAFETY: kill(2) with pid 0 addresses this process's own group; our own SIGTERM is
    // blocked, SIGKILL ends us with the rest.
    unsafe {
        libc::kill(0, libc::SIGTERM);
    }
    let until = Instant::now() + TERM_GRACE;
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    loop {
        // SAFETY: as above.
        unsafe {
            libc::kill(0, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ends this process the way the program ended: with its exit code, or by its signal.
fn exit_like(status: ExitStatus) -> ! {
    if let Some(code) = status.code() {
        std::process::exit(code);
    }
    let signal = status.signal().unwrap_or(libc::SIGKILL);
    // SAFETY: restoring the default action and unblocking the signal in this single-threaded
    // process, then raising it, ends the process by that signal.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal);
}
