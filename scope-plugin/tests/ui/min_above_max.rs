use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "x", label = "X", min = 100, max = 0.0)]
fn x() -> f64 {
    1.0
}

fn main() {}
