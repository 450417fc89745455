use scope_plugin::prelude::*;

fn everywhere() -> Vec<Pid> {
    Vec::new()
}

// A process control is clicked on a process: it takes a Pid.
#[scope_control(topology = "process", id = "a", human = "A", icon = "fa-stop", shown = everywhere)]
fn takes_host(_: ThisHost) {}

fn main() {}
