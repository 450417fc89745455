//! `#[scope_metric]` and `#[scope_metadata]`: register a function as a collector.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Type};

use scope_plugin_rules::{DataType, MetricFormat, Rollup, Topology};

use crate::args::Args;

/// Which attribute.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AttrKind {
    Metric,
    Metadata,
    Table,
}

impl AttrKind {
    fn name(self) -> &'static str {
        match self {
            AttrKind::Metric => "scope_metric",
            AttrKind::Metadata => "scope_metadata",
            AttrKind::Table => "scope_table",
        }
    }

    fn valid_keys(self) -> &'static [&'static str] {
        match self {
            AttrKind::Metric => &[
                "topology",
                "id",
                "label",
                "format",
                "min",
                "max",
                "rollup",
                "priority",
                "interval",
                "timeout",
                "default",
                "namespaced",
                "crate",
            ],
            AttrKind::Table => &[
                "topology",
                "id",
                "label",
                "columns",
                "interval",
                "timeout",
                "default",
                "namespaced",
                "crate",
            ],
            AttrKind::Metadata => &[
                "topology",
                "id",
                "label",
                "data_type",
                "priority",
                "interval",
                "timeout",
                "default",
                "namespaced",
                "crate",
            ],
        }
    }
}

fn topology_names() -> String {
    Topology::ALL
        .iter()
        .map(|t| format!("\"{}\"", t.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `key` interval or timeout, as the runtime's `--interval` takes it, in nanoseconds.
fn interval_nanos(key: &str, text: &LitStr) -> syn::Result<u64> {
    let duration = scope_plugin_rules::parse_interval(&text.value())
        .map_err(|problem| syn::Error::new(text.span(), format!("{key}: {problem}")))?;
    u64::try_from(duration.as_nanos())
        .map_err(|_| syn::Error::new(text.span(), "too long: keep it under 500 years"))
}

/// A parsed attribute.
#[derive(Debug)]
pub(crate) struct CollectorAttr {
    kind: AttrKind,
    topology: &'static str,
    id: LitStr,
    label: LitStr,
    /// Format (metric) or data type (metadata) variant name.
    presentation: &'static str,
    min: Option<f64>,
    max: Option<f64>,
    /// `Rollup` variant name.
    rollup: &'static str,
    /// A table's columns: (id, label, `DataType` variant name); none for a property list.
    columns: Vec<(LitStr, LitStr, &'static str)>,
    priority: Option<f64>,
    interval_ns: Option<u64>,
    timeout_ns: Option<u64>,
    enabled_by_default: bool,
    namespaced: bool,
    krate: syn::Path,
}

/// The value named by `text`, or an error listing what `what` accepts (`names`, quoted
/// and comma-separated), with the closest as a suggestion.
fn lookup<T>(
    text: &LitStr,
    what: &str,
    find: fn(&str) -> Option<T>,
    names: String,
) -> syn::Result<T> {
    let value = text.value();
    find(&value).ok_or_else(|| {
        let suggestion =
            crate::args::did_you_mean(&value, names.split(", ").map(|name| name.trim_matches('"')));
        syn::Error::new(
            text.span(),
            format!("unknown {what} {value:?};{suggestion} use one of: {names}"),
        )
    })
}

impl CollectorAttr {
    pub(crate) fn parse(kind: AttrKind, tokens: TokenStream) -> syn::Result<Self> {
        let args = Args::parse(tokens, kind.valid_keys())?;
        let call_site = Span::call_site();
        let topology_text = args.required_string("topology", call_site, "host")?;
        let topology = lookup(
            &topology_text,
            "topology",
            Topology::from_name,
            topology_names(),
        )?
        .variant_name();
        let id = args.required_string("id", call_site, "my_metric")?;
        if !scope_plugin_rules::is_key(&id.value()) {
            return Err(syn::Error::new(
                id.span(),
                format!(
                    "invalid id {:?}: {}",
                    id.value(),
                    scope_plugin_rules::KEY_RULE
                ),
            ));
        }
        let label = args.required_string("label", call_site, "My metric")?;
        scope_plugin_rules::check_label(&label.value())
            .map_err(|problem| syn::Error::new(label.span(), problem))?;
        let presentation = match kind {
            AttrKind::Metric => match args.string("format")? {
                Some(text) => lookup(
                    &text,
                    "format",
                    MetricFormat::from_name,
                    MetricFormat::names(),
                )?
                .variant_name(),
                None => MetricFormat::default().variant_name(),
            },
            AttrKind::Metadata => match args.string("data_type")? {
                Some(text) => lookup(&text, "data_type", DataType::from_name, DataType::names())?
                    .variant_name(),
                None => DataType::default().variant_name(),
            },
            AttrKind::Table => DataType::default().variant_name(),
        };
        let columns = match args.get("columns") {
            Some(arg) => parse_columns(&arg.value)?,
            None => Vec::new(),
        };
        let min = args.number("min")?;
        let max = args.number("max")?;
        if let Err(problem) = scope_plugin_rules::check_range(min.map(|m| m.0), max.map(|m| m.0)) {
            let span = max.or(min).map_or_else(Span::call_site, |(_, span)| span);
            return Err(syn::Error::new(span, problem));
        }
        let rollup = match args.string("rollup")? {
            Some(text) => {
                let rollup = lookup(&text, "rollup", Rollup::from_name, Rollup::names())?;
                if rollup != Rollup::None && topology != Topology::Process.variant_name() {
                    return Err(syn::Error::new(
                        text.span(),
                        format!(
                            "rollup applies to process metrics (it reduces their values per container and pod); this one is on topology {:?}",
                            topology_text.value()
                        ),
                    ));
                }
                rollup
            }
            None => Rollup::None,
        }
        .variant_name();
        let interval_ns = args
            .string("interval")?
            .map(|text| interval_nanos("interval", &text))
            .transpose()?;
        let timeout_ns = args
            .string("timeout")?
            .map(|text| interval_nanos("timeout", &text))
            .transpose()?;
        let krate = args
            .path("crate")?
            .unwrap_or_else(|| syn::parse_quote!(::scope_plugin));
        Ok(Self {
            kind,
            topology,
            id,
            label,
            presentation,
            min: min.map(|(v, _)| v),
            max: max.map(|(v, _)| v),
            rollup,
            columns,
            priority: args.number("priority")?.map(|(v, _)| v),
            interval_ns,
            timeout_ns,
            enabled_by_default: args.boolean("default")?.unwrap_or(true),
            namespaced: args.boolean("namespaced")?.unwrap_or(true),
            krate,
        })
    }

    pub(crate) fn expand(&self, function: &ItemFn) -> syn::Result<TokenStream> {
        let krate = &self.krate;
        let signature = &function.sig;
        if let Some(asyncness) = &signature.asyncness {
            return Err(syn::Error::new(
                asyncness.span(),
                "collectors cannot be async: they run on a blocking thread with a timeout; remove `async` and block inside",
            ));
        }
        if !signature.generics.params.is_empty() || signature.generics.where_clause.is_some() {
            return Err(syn::Error::new(
                signature.generics.span(),
                "collectors cannot be generic: the registry needs one concrete function; remove the type parameters",
            ));
        }
        let mut state_type: Option<Type> = None;
        let mut call_args = Vec::new();
        for input in &signature.inputs {
            let FnArg::Typed(typed) = input else {
                return Err(syn::Error::new(
                    input.span(),
                    "collectors are free functions; remove `self`",
                ));
            };
            let Type::Reference(reference) = &*typed.ty else {
                return Err(syn::Error::new(
                    typed.ty.span(),
                    "a collector takes `&mut State` (kept between samples) and/or `&Context`; take this by reference",
                ));
            };
            if reference.mutability.is_some() {
                if state_type.is_some() {
                    return Err(syn::Error::new(
                        typed.ty.span(),
                        "a collector has at most one `&mut State` parameter",
                    ));
                }
                state_type = Some((*reference.elem).clone());
                call_args.push(quote!(__scope_plugin_state));
            } else {
                call_args.push(quote!(__scope_plugin_context));
            }
        }
        let state_type = state_type.unwrap_or_else(|| syn::parse_quote!(()));
        let name = &signature.ident;
        let output_kind = match self.kind {
            AttrKind::Metric => quote!(#krate::__private::MetricKind),
            AttrKind::Metadata | AttrKind::Table => quote!(#krate::__private::MetadataKind),
        };
        let topology = syn::Ident::new(self.topology, Span::call_site());
        let columns = self.columns.iter().map(|(id, label, data_type)| {
            let data_type = syn::Ident::new(data_type, Span::call_site());
            quote!(#krate::__private::TableColumn {
                id: #id, label: #label, data_type: #krate::__private::DataType::#data_type,
            })
        });
        let columns = quote!(&[#(#columns),*]);
        let column_count = self.columns.len();
        // Spanned on the user's function name, so a return type the runtime cannot use is
        // reported there.
        let convert = if self.kind == AttrKind::Table && self.columns.is_empty() {
            quote_spanned!(name.span()=> #krate::__private::property_list_output::<#krate::__private::topology::#topology, _, _>(
                #name(#(#call_args),*), __scope_plugin_context, #krate::__private::Topology::#topology))
        } else if self.kind == AttrKind::Table {
            quote_spanned!(name.span()=> #krate::__private::multicolumn_output::<#krate::__private::topology::#topology, _, _, #column_count>(
                #name(#(#call_args),*), __scope_plugin_context, #krate::__private::Topology::#topology, #columns))
        } else if self.topology == "Host" {
            quote_spanned!(name.span()=> #krate::__private::host_output::<#output_kind, _>(#name(#(#call_args),*), __scope_plugin_context))
        } else {
            quote_spanned!(name.span()=> #krate::__private::nodes_output::<#output_kind, _, #krate::__private::topology::#topology>(
                #name(#(#call_args),*), __scope_plugin_context, #krate::__private::Topology::#topology))
        };
        let state_new =
            quote_spanned!(state_type.span()=> #krate::__private::new_state::<#state_type>);
        let presentation = syn::Ident::new(self.presentation, Span::call_site());
        let option = |value: Option<f64>| match value {
            Some(v) => quote!(::core::option::Option::Some(#v)),
            None => quote!(::core::option::Option::None),
        };
        let duration = |value: Option<u64>| match value {
            Some(ns) => {
                quote!(::core::option::Option::Some(#krate::__private::Duration::from_nanos(#ns)))
            }
            None => quote!(::core::option::Option::None),
        };
        let kind = match self.kind {
            AttrKind::Metric => {
                let (min, max) = (option(self.min), option(self.max));
                quote!(#krate::__private::Kind::Metric {
                    format: #krate::__private::MetricFormat::#presentation, min: #min, max: #max,
                })
            }
            AttrKind::Metadata => quote!(#krate::__private::Kind::Metadata {
                data_type: #krate::__private::DataType::#presentation,
            }),
            AttrKind::Table => quote!(#krate::__private::Kind::Table { columns: #columns }),
        };
        let (id, label) = (&self.id, &self.label);
        let priority = option(self.priority);
        let (interval, timeout) = (duration(self.interval_ns), duration(self.timeout_ns));
        let (enabled, namespaced) = (self.enabled_by_default, self.namespaced);
        let description = first_doc_line(function);
        let rollup = syn::Ident::new(self.rollup, Span::call_site());
        Ok(quote! {
            #function

            const _: () = {
                fn __scope_plugin_collect(
                    __scope_plugin_state: &mut (dyn #krate::__private::Any + ::core::marker::Send),
                    __scope_plugin_context: &#krate::__private::Context,
                ) -> #krate::__private::anyhow::Result<#krate::__private::Collected> {
                    // Named so that no user function (`state`, `context`) is shadowed.
                    let __scope_plugin_state = #krate::__private::state_mut::<#state_type>(__scope_plugin_state);
                    let _ = &__scope_plugin_state;
                    #convert
                }

                #krate::__private::inventory::submit! {
                    #krate::__private::Collector {
                        topology: #krate::__private::Topology::#topology,
                        id: #id,
                        label: #label,
                        kind: #kind,
                        priority: #priority,
                        interval: #interval,
                        timeout: #timeout,
                        enabled_by_default: #enabled,
                        namespaced: #namespaced,
                        rollup: #krate::__private::Rollup::#rollup,
                        description: #description,
                        location: #krate::__private::Location {
                            module_path: ::core::module_path!(),
                            file: ::core::file!(),
                            line: ::core::line!(),
                        },
                        new_state: #state_new,
                        collect: __scope_plugin_collect,
                    }
                }
            };
        })
    }
}

/// `columns = [("id", "Label"), ("id", "Label", "number"), ...]`: each id a key without
/// `___` (Scope splits table keys on it), unique; the data type as for metadata.
fn parse_columns(value: &syn::Expr) -> syn::Result<Vec<(LitStr, LitStr, &'static str)>> {
    let usage = "`columns` takes a list of (id, label) or (id, label, data_type) string tuples, like columns = [(\"port\", \"Port\", \"number\"), (\"protocol\", \"Protocol\")]";
    let syn::Expr::Array(array) = value else {
        return Err(syn::Error::new_spanned(value, usage));
    };
    if array.elems.is_empty() {
        return Err(syn::Error::new_spanned(
            value,
            "a multicolumn table needs at least one column (Scope's UI reads the first); leave `columns` out for a property list",
        ));
    }
    let mut columns: Vec<(LitStr, LitStr, &'static str)> = Vec::new();
    for element in &array.elems {
        let syn::Expr::Tuple(tuple) = element else {
            return Err(syn::Error::new_spanned(element, usage));
        };
        let texts: Vec<LitStr> = tuple
            .elems
            .iter()
            .map(|e| match e {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(text),
                    ..
                }) => Ok(text.clone()),
                other => Err(syn::Error::new_spanned(other, usage)),
            })
            .collect::<syn::Result<_>>()?;
        let (id, label, data_type) = match texts.as_slice() {
            [id, label] => (id.clone(), label.clone(), DataType::default()),
            [id, label, data_type] => (
                id.clone(),
                label.clone(),
                lookup(
                    data_type,
                    "data_type",
                    DataType::from_name,
                    DataType::names(),
                )?,
            ),
            _ => return Err(syn::Error::new_spanned(tuple, usage)),
        };
        let text = id.value();
        if !scope_plugin_rules::is_key(&text) || text.contains("___") {
            return Err(syn::Error::new(
                id.span(),
                format!(
                    "invalid column id {text:?}: {} (cells are sent as <row>___<column>)",
                    scope_plugin_rules::KEY_RULE
                ),
            ));
        }
        if columns.iter().any(|(other, _, _)| other.value() == text) {
            return Err(syn::Error::new(
                id.span(),
                format!("column {text:?} is given twice"),
            ));
        }
        scope_plugin_rules::check_label(&label.value())
            .map_err(|problem| syn::Error::new(label.span(), problem))?;
        columns.push((id, label, data_type.variant_name()));
    }
    Ok(columns)
}

fn first_doc_line(function: &ItemFn) -> String {
    function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .find_map(|attr| match &attr.meta {
            syn::Meta::NameValue(syn::MetaNameValue {
                value:
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(text),
                        ..
                    }),
                ..
            }) => Some(text.value().trim().to_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The attribute's entry point: on an error, the original item plus `compile_error!`, so
/// one mistake gives one error and the function stays usable.
pub(crate) fn attribute(kind: AttrKind, args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                format!("#[{}] goes on a function", kind.name()),
            );
            let error = error.to_compile_error();
            return quote!(#item #error);
        }
    };
    match CollectorAttr::parse(kind, args).and_then(|attr| attr.expand(&function)) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#function #error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(kind: AttrKind, args: TokenStream, item: TokenStream) -> String {
        attribute(kind, args, item).to_string()
    }

    #[test]
    fn host_metric_expands_to_a_registration() {
        let out = expand(
            AttrKind::Metric,
            quote!(
                topology = "host",
                id = "iowait",
                label = "IO wait",
                format = "percent",
                min = 0.0,
                max = 100,
                priority = 3.5
            ),
            quote!(
                /// Share of time in IO wait.
                fn iowait(state: &mut Cpu, ctx: &Context) -> anyhow::Result<f64> {
                    todo!()
                }
            ),
        );
        let expected_collect = quote!(
            let __scope_plugin_state = ::scope_plugin::__private::state_mut::<Cpu>(__scope_plugin_state);
            let _ = &__scope_plugin_state;
            ::scope_plugin::__private::host_output::<::scope_plugin::__private::MetricKind, _>(
                iowait(__scope_plugin_state, __scope_plugin_context), __scope_plugin_context)
        )
        .to_string();
        assert!(out.contains(&expected_collect), "{out}");
        for part in [
            quote!(topology: ::scope_plugin::__private::Topology::Host,).to_string(),
            quote!(id: "iowait",).to_string(),
            quote!(format: ::scope_plugin::__private::MetricFormat::Percent,).to_string(),
            quote!(min: ::core::option::Option::Some(0f64),).to_string(),
            quote!(max: ::core::option::Option::Some(100f64),).to_string(),
            quote!(description: "Share of time in IO wait.",).to_string(),
            quote!(new_state: ::scope_plugin::__private::new_state::<Cpu>,).to_string(),
        ] {
            assert!(out.contains(&part), "missing {part} in {out}");
        }
    }

    #[test]
    fn process_metadata_uses_nodes_output_and_custom_crate_path() {
        let out = expand(
            AttrKind::Metadata,
            quote!(
                topology = "process",
                id = "cmd",
                label = "Command",
                crate = ::my::scope,
                default = false,
                interval = "2s"
            ),
            quote!(
                fn cmd(ctx: &Context) -> Vec<(Pid, String)> {
                    vec![]
                }
            ),
        );
        assert!(
            out.contains(&quote!(::my::scope::__private::nodes_output).to_string()),
            "{out}"
        );
        assert!(
            out.contains(&quote!(::my::scope::__private::Topology::Process).to_string()),
            "{out}"
        );
        assert!(out.contains(&quote!(new_state::<()>).to_string()), "{out}");
        assert!(
            out.contains(&quote!(enabled_by_default: false,).to_string()),
            "{out}"
        );
        assert!(
            out.contains(&quote!(Duration::from_nanos(2000000000u64)).to_string()),
            "{out}"
        );
        assert!(!out.contains("scope_plugin ::"), "{out}");
    }

    #[test]
    fn errors_keep_the_item() {
        let out = expand(
            AttrKind::Metric,
            quote!(topology = "hots", id = "x", label = "X"),
            quote!(
                fn x() -> f64 {
                    1.0
                }
            ),
        );
        assert!(out.contains("fn x"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("unknown topology"), "{out}");
    }
}
