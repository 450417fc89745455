use scope_plugin::prelude::*;

#[scope_metadata(topology = "host", id = "x", label = "X", format = "percent")]
fn x() -> String {
    String::new()
}

fn main() {}
