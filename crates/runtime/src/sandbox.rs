//! Keeping every process a function starts inside its environment.
//!
//! An environment is a process group, killed as one. A process can leave
//! its group (`setsid`, `setpgid`) and, once its parent dies, would be
//! re-parented to init and outlive the environment and the server. So:
//! - Stratus is the child subreaper of everything its functions start
//!   (`PR_SET_CHILD_SUBREAPER`): orphans are re-parented to it, not to init;
//! - every function process carries its environment's mark in its
//!   environment (`STRATUS_ENVIRONMENT_ID`), inherited by its children;
//! - when an environment ends, every process with its mark is killed, and
//!   those that were re-parented to Stratus are reaped.
//!
//! Limits: a process that clears its environment before `exec` loses the
//! mark; one that is never orphaned is still killed with its group. Both
//! are same-user processes (see the security section of docs/config.md).

use std::collections::HashSet;
use std::sync::Mutex;

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::peer::{processes, stat_field};

/// The variable that marks an environment's processes.
pub(crate) const MARK_VAR: &str = "STRATUS_ENVIRONMENT_ID";

/// Processes re-parented to Stratus that carried a mark: reaped once they
/// exit (only these: other children belong to whoever started them).
static ADOPTED: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Environment leaders: children that tokio waits for, never reaped here.
static LEADERS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(crate) fn leader_started(pid: u32) {
    LEADERS.lock().expect("leaders lock").push(pid);
}

pub(crate) fn leader_ended(pid: u32) {
    LEADERS.lock().expect("leaders lock").retain(|p| *p != pid);
}

/// Makes this process the subreaper of its descendants (once, at start).
pub(crate) fn become_subreaper() {
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!("cannot become the subreaper of function processes: {e}");
    }
}

/// Kills the process group `pgid` and every process marked `mark`, then
/// reaps what was re-parented to Stratus. Blocking (reads `/proc`).
pub(crate) fn end_environment(pgid: u32, mark: &str) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
    }
    let me = std::process::id();
    let mut adopted = Vec::new();
    for pid in processes().filter(|p| *p != me && *p != pgid) {
        if mark_of(pid).as_deref() != Some(mark.as_bytes()) {
            continue;
        }
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        // Re-parented to Stratus now or once its parent (also killed) is gone.
        adopted.push(pid);
    }
    if !adopted.is_empty() {
        tracing::debug!(
            mark,
            "killed {} process(es) that had left the environment",
            adopted.len()
        );
        ADOPTED.lock().expect("adopted lock").extend(adopted);
    }
    reap_adopted();
}

/// Notes marked processes re-parented to Stratus (their parent died) and
/// reaps those that have exited. Called now and then by the pool reaper.
pub(crate) fn sweep() {
    let me = std::process::id();
    let leaders: HashSet<u32> = LEADERS
        .lock()
        .expect("leaders lock")
        .iter()
        .copied()
        .collect();
    let mut found = Vec::new();
    for pid in processes().filter(|p| !leaders.contains(p)) {
        if stat_field(pid, 1) == Some(me) && mark_of(pid).is_some() {
            found.push(pid);
        }
    }
    if !found.is_empty() {
        let mut adopted = ADOPTED.lock().expect("adopted lock");
        let known: HashSet<u32> = adopted.iter().copied().collect();
        adopted.extend(found.into_iter().filter(|p| !known.contains(p)));
    }
    reap_adopted();
}

fn reap_adopted() {
    let mut adopted = ADOPTED.lock().expect("adopted lock");
    adopted.retain(|pid| {
        match waitpid(Pid::from_raw(*pid as i32), Some(WaitPidFlag::WNOHANG)) {
            Ok(nix::sys::wait::WaitStatus::StillAlive) => true,
            // Not (yet) our child: kept while it exists, as it may still be
            // re-parented to Stratus.
            Err(nix::errno::Errno::ECHILD) => {
                std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            // Exited and reaped.
            _ => false,
        }
    });
}

fn environ(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// The environment mark a process carries, if any.
fn mark_of(pid: u32) -> Option<Vec<u8>> {
    let prefix = format!("{MARK_VAR}=");
    let env = environ(pid)?;
    env.split(|b| *b == 0)
        .find_map(|var| var.strip_prefix(prefix.as_bytes()))
        .map(<[u8]>::to_vec)
}
