use scope_plugin::prelude::*;

#[scope_metric(topology = "process", id = "x", label = "X", rollup = "total")]
fn x() -> Vec<(Pid, f64)> {
    Vec::new()
}

// Metadata is text: nothing to add up.
#[scope_metadata(topology = "process", id = "y", label = "Y", rollup = "sum")]
fn y() -> Vec<(Pid, String)> {
    Vec::new()
}

fn main() {}
