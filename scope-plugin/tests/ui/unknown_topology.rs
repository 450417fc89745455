use scope_plugin::prelude::*;

#[scope_metric(topology = "hosts", id = "x", label = "X")]
fn x() -> f64 {
    1.0
}

fn main() {}
