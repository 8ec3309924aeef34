//! Who is on the other end of a Runtime API connection.
//!
//! On AWS only the sandbox can reach its Runtime API. Here every
//! environment's listener is on loopback, where any local process could
//! connect, take the next invocation and answer it. So each connection is
//! checked once, when accepted: the peer's socket must be held open by a
//! process of the environment's process group. The kernel has no call
//! that says which process holds a TCP socket; `/proc` does: the socket's
//! inode (from `/proc/net/tcp`) must appear among the group's open files
//! (`/proc/PID/fd`). Linux only, as Stratus is.

use std::net::{IpAddr, SocketAddr};

/// Does a process of process group `pgid` hold the client socket of the
/// connection `peer` → `local`? Blocking (reads `/proc`).
pub(crate) fn held_by_group(peer: SocketAddr, local: SocketAddr, pgid: u32) -> bool {
    if pgid == 0 {
        return false;
    }
    let Some(inode) = socket_inode(peer, local) else {
        return false;
    };
    let target = format!("socket:[{inode}]");
    // The group leader (the bootstrap) is the usual client: look there first.
    if holds(pgid, &target) {
        return true;
    }
    group_members(pgid).any(|pid| pid != pgid && holds(pid, &target))
}

/// The inode of the socket bound to `addr` and connected to `remote`.
fn socket_inode(addr: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let (table, want_local, want_remote) = match (addr.ip(), remote.ip()) {
        (IpAddr::V4(a), IpAddr::V4(r)) => (
            "/proc/net/tcp",
            format!("{:08X}:{:04X}", u32::from_le_bytes(a.octets()), addr.port()),
            format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(r.octets()),
                remote.port()
            ),
        ),
        _ => return None, // the Runtime API listens on 127.0.0.1 only
    };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1] == want_local && f[2] == want_remote)
            .then(|| f[9].parse().ok())
            .flatten()
    })
}

fn holds(pid: u32, target: &str) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target))
}

/// Every process whose process group is `pgid`.
pub(crate) fn group_members(pgid: u32) -> impl Iterator<Item = u32> {
    processes().filter(move |pid| stat_field(*pid, 2).is_some_and(|g| g == pgid))
}

/// Every process id in `/proc`.
pub(crate) fn processes() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
}

/// A numeric field of `/proc/PID/stat` counted from the one after the
/// command name: 0 = state is skipped, 1 = ppid, 2 = pgrp, 3 = session.
pub(crate) fn stat_field(pid: u32, n: usize) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_of_this_process_is_found_and_a_foreign_group_is_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        let local = listener.local_addr().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = std::process::id();
        let my_group = stat_field(me, 2).unwrap();
        assert!(held_by_group(peer, local, my_group));
        // No process is in a group numbered like an unused pid.
        assert!(!held_by_group(peer, local, 4_000_000));
        assert!(!held_by_group(peer, local, 0));
    }
}
