use scope_plugin::prelude::*;

// A container metric keyed by process ids: refused at compile time, not every sample.
#[scope_metric(topology = "container", id = "x", label = "X")]
fn x() -> Vec<(Pid, f64)> {
    vec![]
}

fn main() {}
