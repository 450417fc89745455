//! A plugin whose collectors are registered by hand through the runtime's registry (no
//! macros), including misbehaving ones that are off unless enabled.

use std::time::Duration;

use scope_plugin::__private::{
    Any, Collected, Collector, Context, Kind, Location, MetricFormat, Topology,
};
use scope_plugin::{NodeKey, Pid, Point, ThisHost, Value, register_collector};

const HERE: Location = Location {
    module_path: module_path!(),
    file: file!(),
    line: line!(),
};

fn no_state() -> Box<dyn Any + Send> {
    Box::new(())
}

const fn metric(
    id: &'static str,
    topology: Topology,
    collect: scope_plugin::__private::CollectFn,
) -> Collector {
    Collector {
        topology,
        id,
        label: id,
        kind: Kind::Metric {
            format: MetricFormat::Number,
            min: Some(0.0),
            max: Some(100.0),
        },
        priority: Some(5.0),
        interval: None,
        timeout: None,
        enabled_by_default: true,
        namespaced: true,
        rollup: scope_plugin::Rollup::None,
        description: "test collector",
        location: HERE,
        new_state: no_state,
        collect,
    }
}

fn answer(_: &mut (dyn Any + Send), ctx: &Context) -> anyhow::Result<Collected> {
    Ok(Collected::Values(
        vec![Point::new(
            ThisHost.node_id(ctx.host_id()),
            Value::Number(42.0),
        )]
        .into(),
    ))
}

fn processes(_: &mut (dyn Any + Send), ctx: &Context) -> anyhow::Result<Collected> {
    let values = [(1, 10.0), (std::process::id(), 20.0)]
        .into_iter()
        .map(|(pid, v)| Point::new(Pid(pid).node_id(ctx.host_id()), Value::Number(v)))
        .collect();
    Ok(Collected::Values(values))
}

fn panics(_: &mut (dyn Any + Send), _: &Context) -> anyhow::Result<Collected> {
    panic!("deliberate test panic")
}

fn hangs(_: &mut (dyn Any + Send), _: &Context) -> anyhow::Result<Collected> {
    std::thread::sleep(Duration::from_secs(3600));
    Ok(Collected::NoSample)
}

fn fails(_: &mut (dyn Any + Send), _: &Context) -> anyhow::Result<Collected> {
    anyhow::bail!("deliberate test error")
}

register_collector!(metric("answer", Topology::Host, answer));
register_collector!(metric("per_process", Topology::Process, processes));
register_collector!(Collector {
    kind: Kind::Metadata {
        data_type: scope_plugin::__private::DataType::Text
    },
    ..metric("motto", Topology::Host, |_, ctx| {
        Ok(Collected::Values(
            vec![Point::new(
                ThisHost.node_id(ctx.host_id()),
                Value::Text("hello <scope>".into()),
            )]
            .into(),
        ))
    })
});
// These two test the messages of a panic and of an error, not timeouts: their 10 s
// timeout keeps a loaded machine (a backtrace printed under RUST_BACKTRACE, blocking
// threads at nice 10 behind parallel tests) from turning a message into "did not finish
// within 200ms", as happened in CI.
register_collector!(Collector {
    enabled_by_default: false,
    timeout: Some(Duration::from_secs(10)),
    ..metric("panics", Topology::Host, panics)
});
register_collector!(Collector {
    enabled_by_default: false,
    timeout: Some(Duration::from_millis(300)),
    ..metric("hangs", Topology::Host, hangs)
});
register_collector!(Collector {
    enabled_by_default: false,
    timeout: Some(Duration::from_secs(10)),
    ..metric("fails", Topology::Host, fails)
});

fn main() -> std::process::ExitCode {
    scope_plugin::Plugin::new("test-plugin", "Test plugin")
        .description("Integration tests")
        .run()
}
