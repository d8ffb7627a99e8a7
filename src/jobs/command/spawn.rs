//! Starting a job's processes so that they die with the daemon.
//!
//! Linux's `PR_SET_PDEATHSIG` signals a child when the *thread* that forked it exits, not the
//! process. Tokio forks on whichever thread polls the spawn, and threads of the blocking pool
//! end after a few idle seconds, which would kill a long job for nothing. So every child is
//! forked on one thread that lives as long as the process: it runs a small runtime of its own
//! (which also drives the children's pipes and exit notifications) and spawns what it is sent.

use std::{io, sync::OnceLock};

use tokio::{
    process::{Child, Command},
    sync::{mpsc, oneshot},
};

type Request = (Command, oneshot::Sender<io::Result<Child>>);

/// Spawns `cmd` on the spawner thread, with `death_signal` sent to the child when this
/// process dies. The child is also checked to still have this process as its parent after
/// arming the signal, so a daemon that died in between leaves no child running.
pub async fn spawn(mut cmd: Command, death_signal: i32) -> io::Result<Child> {
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid) and builds an error without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, death_signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let spawner = spawner()
        .as_ref()
        .ok_or_else(|| io::Error::other("the process spawner thread could not start"))?;
    let (reply, answer) = oneshot::channel();
    spawner
        .send((cmd, reply))
        .map_err(|_| io::Error::other("the process spawner thread has stopped"))?;
    answer
        .await
        .map_err(|_| io::Error::other("the process spawner thread has stopped"))?
}

fn spawner() -> &'static Option<mpsc::UnboundedSender<Request>> {
    static SPAWNER: OnceLock<Option<mpsc::UnboundedSender<Request>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        std::thread::Builder::new()
            .name("patron-spawner".to_owned())
            .spawn(move || {
                // The sender lives in a static, so this loop runs as long as the process, and
                // the runtime keeps driving the children's pipes and exits meanwhile.
                runtime.block_on(async move {
                    while let Some((mut cmd, reply)) = rx.recv().await {
                        // The requester may have given up (its attempt was cancelled); the
                        // child is then dropped and killed (`kill_on_drop`).
                        let _ = reply.send(cmd.spawn());
                    }
                });
            })
            .ok()?;
        Some(tx)
    })
}
