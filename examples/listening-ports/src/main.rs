//! Run with: cargo run -p example-listening-ports -- --once
//!
//! Tables: each process's listening TCP ports (a multicolumn table on process nodes, a row
//! per port), and the host's listening sockets by family (a property list on the host).
//! From procfs: `net/tcp` and `net/tcp6` list the listening sockets by inode, and each
//! process's `fd` directory links its sockets as `socket:[<inode>]`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use procfs_core::net::{TcpNetEntries, TcpState};
use procfs_core::{ExplicitSystemInfo, FromReadSI};
use scope_plugin::prelude::*;

/// Listening TCP sockets by inode: (address, family), from `net/tcp` and `net/tcp6`.
fn listening(ctx: &Context) -> anyhow::Result<HashMap<u64, (SocketAddr, &'static str)>> {
    // The parser needs to know only the byte order of the addresses in these files.
    let system = ExplicitSystemInfo {
        boot_time_secs: 0,
        ticks_per_second: 100,
        page_size: 4096,
        is_little_endian: cfg!(target_endian = "little"),
    };
    let mut sockets = HashMap::new();
    for (file, family) in [("net/tcp", "IPv4"), ("net/tcp6", "IPv6")] {
        // A kernel without IPv6 has no tcp6: no sockets of that family.
        let Ok(entries) = TcpNetEntries::from_file(ctx.procfs_path(file), &system) else {
            continue;
        };
        for entry in entries.0 {
            if entry.state == TcpState::Listen {
                sockets.insert(entry.inode, (entry.local_address, family));
            }
        }
    }
    Ok(sockets)
}

/// The socket inodes a process holds, from its `fd` links.
fn socket_inodes(ctx: &Context, pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(ctx.procfs_path(&format!("{pid}/fd"))) else {
        return Vec::new(); // exited, or not ours to read
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// The ports each process listens on, with the addresses (a port may be bound on several).
#[scope_table(
    topology = "process",
    id = "ports",
    label = "Listening ports",
    columns = [("addresses", "Listening on"), ("sockets", "Sockets", "number")]
)]
fn ports(ctx: &Context) -> anyhow::Result<BTreeMap<(Pid, u16), [String; 2]>> {
    let sockets = listening(ctx)?;
    let mut rows: BTreeMap<(Pid, u16), Vec<SocketAddr>> = BTreeMap::new();
    for entry in std::fs::read_dir(ctx.procfs())? {
        let Some(pid) = entry?.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        for inode in socket_inodes(ctx, pid) {
            if let Some((address, _)) = sockets.get(&inode) {
                rows.entry((Pid(pid), address.port()))
                    .or_default()
                    .push(*address);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|(key, mut addresses)| {
            addresses.sort();
            let count = addresses.len();
            let ips: Vec<String> = addresses.iter().map(|a| a.ip().to_string()).collect();
            (key, [ips.join(", "), count.to_string()])
        })
        .collect())
}

/// Listening TCP sockets on the host, by address family.
#[scope_table(topology = "host", id = "listening", label = "Listening TCP sockets")]
fn listening_by_family(ctx: &Context) -> anyhow::Result<BTreeMap<(ThisHost, &'static str), usize>> {
    let mut counts = BTreeMap::new();
    for (_, family) in listening(ctx)?.into_values() {
        *counts.entry((ThisHost, family)).or_default() += 1;
    }
    Ok(counts)
}

scope_plugin::main!(
    id = "example-listening-ports",
    label = "Listening ports",
    description = "Adds each process's listening TCP ports"
);
