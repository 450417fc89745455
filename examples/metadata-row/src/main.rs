//! Run with: cargo run -p example-metadata-row -- --once
//!
//! A metadata row: text in the host's info panel, here the kernel release.

use scope_plugin::prelude::*;

/// The running kernel's release, from /proc/sys/kernel/osrelease.
#[scope_metadata(topology = "host", id = "kernel", label = "Kernel", priority = 5.0)]
fn kernel(ctx: &Context) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(ctx.procfs_path("sys/kernel/osrelease"))?
            .trim()
            .to_owned(),
    )
}

scope_plugin::main!(
    id = "example-metadata-row",
    label = "Kernel",
    description = "Adds the kernel release to hosts"
);
