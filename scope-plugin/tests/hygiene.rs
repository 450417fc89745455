//! Generated code compiles with `std`, `core`, `Result`, `Ok`, `Err`, `Option` and the
//! crate name shadowed: it names only absolute paths.
#![allow(
    dead_code,
    non_camel_case_types,
    reason = "the shadowing items exist only to shadow"
)]

mod std {}
mod core {}
mod scope_plugin {}
mod anyhow {}
mod inventory {}
struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
struct Default;

use ::scope_plugin::prelude::*;

#[derive(::core::default::Default)]
struct Counter(u64);

/// A host metric with state.
#[scope_metric(
    topology = "host",
    id = "hygiene_count",
    label = "Count",
    min = 0,
    max = 1e9
)]
fn hygiene_count(
    counter: &mut Counter,
    ctx: &Context,
) -> ::core::result::Result<f64, ::std::io::Error> {
    let _ = ctx;
    counter.0 += 1;
    ::core::result::Result::Ok(counter.0 as f64)
}

/// A process metadata row.
#[scope_metadata(topology = "process", id = "hygiene_name", label = "Name")]
fn hygiene_name() -> ::std::vec::Vec<(Pid, &'static str)> {
    ::std::vec![(Pid(1), "init")]
}

/// Functions named like the generated code's own variables are not shadowed by them.
mod named_like_the_generated_code {
    use ::scope_plugin::prelude::*;

    /// A metric called `state`, with state.
    #[scope_metric(topology = "host", id = "state", label = "State")]
    fn state(counter: &mut super::Counter) -> f64 {
        counter.0 += 1;
        counter.0 as f64
    }

    /// A table called `context`.
    #[scope_table(topology = "host", id = "context", label = "Context")]
    fn context(
        ctx: &Context,
    ) -> ::std::vec::Vec<((ThisHost, &'static str), ::std::string::String)> {
        ::std::vec![((ThisHost, "host"), ctx.host_id().into())]
    }

    fn node_id() -> bool {
        true
    }

    /// A control called `context`, shown by a function called `node_id`.
    #[scope_control(topology = "host", id = "context", human = "C", icon = "fa-check", shown = node_id)]
    fn context_control(_host: ThisHost) {}
}

mod generated_main {
    ::scope_plugin::main!(id = "hygiene", label = "Hygiene");
}

#[test]
fn shadowed_names_do_not_break_generated_code() {
    let registry = ::scope_plugin::Registry::load("hygiene", &[]).expect("valid registry");
    let ids: ::std::vec::Vec<&str> = registry.collectors().iter().map(|c| c.id).collect();
    ::core::assert_eq!(ids, ["hygiene_name", "context", "hygiene_count", "state"]);
}
