use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "disk;reads", label = "X")]
fn x() -> f64 {
    1.0
}

fn main() {}
