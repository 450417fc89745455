use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "x", label = "X")]
fn x<T: Default>() -> f64 {
    1.0
}

fn main() {}
