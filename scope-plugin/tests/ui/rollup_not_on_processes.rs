use scope_plugin::prelude::*;

// A host has no containers to add up onto.
#[scope_metric(topology = "host", id = "x", label = "X", rollup = "sum")]
fn x() -> f64 {
    1.0
}

fn main() {}
