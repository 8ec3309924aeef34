//! Who is on the other end of a Runtime API connection.
//!
//! On AWS only the sandbox can reach its Runtime API. Here every
//! environment's listener is on loopback, where any local process could
//! connect, take the next invocation and answer it. So each connection is
//! checked once, when accepted: the peer's socket must be held open by a
//! process of the environment's process group. The kernel has no call
//! that says which process holds a TCP socket; but it tells a socket's
//! inode (netlink `sock_diag`), and `/proc/PID/fd` lists the sockets each
//! process holds: the inode must appear among the group's open files.
//! Linux only, as Stratus is.

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

/// The inode of the socket bound to `addr` and connected to `remote`, asked
/// of the kernel by its exact address pair (netlink `sock_diag`, as `ss`
/// does): one answer, however many sockets the machine has. (Scanning
/// `/proc/net/tcp` instead costs milliseconds with many sockets, and a
/// socket can be missed while the table changes under the reader.)
fn socket_inode(addr: SocketAddr, remote: SocketAddr) -> Option<u64> {
    use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr as NlAddr};

    let family = match (addr.ip(), remote.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => AF_INET,
        (IpAddr::V6(_), IpAddr::V6(_)) => AF_INET6,
        _ => return None,
    };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).ok()?;
    socket.bind_auto().ok()?;
    socket.connect(&NlAddr::new(0, 0)).ok()?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: addr.port(),
                destination_port: remote.port(),
                source_address: addr.ip(),
                destination_address: remote.ip(),
                interface_id: 0,
                // "No cookie": look the socket up by its addresses.
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    packet.finalize();
    let mut out = vec![0; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out, 0).ok()?;
    let mut answer = vec![0; 8192];
    let n = socket.recv(&mut &mut answer[..], 0).ok()?;
    let reply = <NetlinkMessage<SockDiagMessage>>::deserialize(&answer[..n]).ok()?;
    match reply.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            Some(u64::from(r.header.inode))
        }
        _ => None, // an error: no such socket
    }
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
