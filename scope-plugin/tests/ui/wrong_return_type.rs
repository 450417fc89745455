use scope_plugin::prelude::*;

#[scope_metric(topology = "host", id = "x", label = "X")]
fn text_as_metric() -> String {
    String::new()
}

#[scope_metric(topology = "process", id = "y", label = "Y")]
fn scalar_for_processes() -> f64 {
    1.0
}

fn main() {}
