//! The options of `#[numa_rt::main]` and `#[numa_rt::test]`, read and
//! checked.

use proc_macro2::Span;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit, LitStr, Meta, Token};

use crate::spec;

/// The options every macro accepts, for error messages.
const OPTIONS: &str = "`flavor`, `worker_threads`, `nodes`, `topology`, `crate`";

/// Which scheduler the generated runtime uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// `Builder::new_current_thread()`.
    CurrentThread,
    /// `Builder::new_multi_thread()`.
    MultiThread,
}

/// The checked options.
pub(crate) struct Config {
    pub(crate) flavor: Flavor,
    pub(crate) worker_threads: Option<usize>,
    pub(crate) nodes: Option<Vec<u32>>,
    /// A synthetic topology spec, already validated.
    pub(crate) topology: Option<LitStr>,
    pub(crate) crate_path: syn::Path,
}

impl Config {
    /// The defaults: `flavor`, nothing else set, the crate at `::numa_rt`.
    pub(crate) fn new(flavor: Flavor) -> Config {
        Config {
            flavor,
            worker_threads: None,
            nodes: None,
            topology: None,
            crate_path: syn::parse_quote!(::numa_rt),
        }
    }

    /// Reads `args` (the tokens inside the attribute's parentheses) over
    /// the defaults; `macro_name` is used in messages (`main` or `test`).
    pub(crate) fn parse(
        args: proc_macro2::TokenStream,
        default: Flavor,
        macro_name: &str,
    ) -> syn::Result<Config> {
        let metas =
            syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, args)?;
        let mut config = Config::new(default);
        let mut flavor: Option<(Flavor, Span)> = None;
        let mut worker_threads: Option<(usize, Span)> = None;
        let mut seen: Vec<String> = Vec::new();
        for meta in metas {
            let name = match meta.path().get_ident() {
                Some(ident) => ident.to_string(),
                None => {
                    return Err(syn::Error::new_spanned(
                        meta.path(),
                        format!("unknown option; expected one of {OPTIONS}"),
                    ))
                }
            };
            let value = match &meta {
                Meta::NameValue(nv) => &nv.value,
                _ => {
                    return Err(syn::Error::new_spanned(
                        &meta,
                        format!("the `{name}` option needs a value: `{name} = ...`"),
                    ))
                }
            };
            if seen.contains(&name) {
                return Err(syn::Error::new_spanned(
                    meta.path(),
                    format!("the `{name}` option is given twice"),
                ));
            }
            seen.push(name.clone());
            match name.as_str() {
                "flavor" => flavor = Some((parse_flavor(value)?, value.span())),
                "worker_threads" => {
                    worker_threads = Some((parse_worker_threads(value)?, value.span()))
                }
                "nodes" => config.nodes = Some(parse_nodes(value)?),
                "topology" => {
                    let spec = lit_str(value, "topology", "\"2x1\"")?;
                    spec::check_topology(&spec.value()).map_err(|e| {
                        syn::Error::new(
                            spec.span(),
                            format!("invalid synthetic topology {:?}: {e}", spec.value()),
                        )
                    })?;
                    config.topology = Some(spec);
                }
                "crate" => {
                    let path = lit_str(value, "crate", "\"numa_rt\"")?;
                    config.crate_path = path.parse().map_err(|_| {
                        syn::Error::new(
                            path.span(),
                            format!("`crate` must name a path, got {:?}", path.value()),
                        )
                    })?;
                }
                "start_paused" | "unhandled_panic" => {
                    return Err(syn::Error::new_spanned(
                        meta.path(),
                        format!(
                            "tokio's `{name}` option is not supported by numa_rt; \
                             expected one of {OPTIONS}"
                        ),
                    ))
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        meta.path(),
                        format!("unknown option `{name}`; expected one of {OPTIONS}"),
                    ))
                }
            }
        }
        if let Some((flavor, _)) = flavor {
            config.flavor = flavor;
        }
        if let Some((n, span)) = worker_threads {
            if config.flavor == Flavor::CurrentThread {
                let hint = if macro_name == "test" {
                    "#[numa_rt::test(flavor = \"multi_thread\")]"
                } else {
                    "#[numa_rt::main(flavor = \"multi_thread\")]"
                };
                return Err(syn::Error::new(
                    span,
                    format!(
                        "the `worker_threads` option needs the multi-thread flavor \
                         (a current-thread runtime has exactly one thread); use `{hint}`"
                    ),
                ));
            }
            config.worker_threads = Some(n);
        }
        Ok(config)
    }
}

fn lit_str(value: &Expr, option: &str, example: &str) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        _ => Err(syn::Error::new_spanned(
            value,
            format!("`{option}` takes a string, such as `{option} = {example}`"),
        )),
    }
}

fn parse_flavor(value: &Expr) -> syn::Result<Flavor> {
    let text = lit_str(value, "flavor", "\"multi_thread\"")?;
    match text.value().as_str() {
        "current_thread" => Ok(Flavor::CurrentThread),
        "multi_thread" => Ok(Flavor::MultiThread),
        other => Err(syn::Error::new(
            text.span(),
            format!("unknown flavor {other:?}; expected \"current_thread\" or \"multi_thread\""),
        )),
    }
}

fn parse_worker_threads(value: &Expr) -> syn::Result<usize> {
    let int = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => int,
        _ => {
            return Err(syn::Error::new_spanned(
                value,
                "`worker_threads` takes a positive integer, such as `worker_threads = 2`",
            ))
        }
    };
    match int.base10_parse::<usize>() {
        Ok(0) => Err(syn::Error::new(
            int.span(),
            "`worker_threads` may not be 0: a pool needs at least one worker",
        )),
        Ok(n) => Ok(n),
        Err(e) => Err(syn::Error::new(
            int.span(),
            format!("`worker_threads` takes a positive integer: {e}"),
        )),
    }
}

/// `nodes = "0,2-3"`, `nodes = [0, 2, 3]` or `nodes = 1`.
fn parse_nodes(value: &Expr) -> syn::Result<Vec<u32>> {
    let nodes = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => spec::parse_nodes(&s.value())
            .map_err(|e| syn::Error::new(s.span(), format!("invalid node list: {e}")))?,
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => vec![node_literal(int)?],
        Expr::Array(array) => {
            let mut nodes = array
                .elems
                .iter()
                .map(|elem| match elem {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(int), ..
                    }) => node_literal(int),
                    other => Err(syn::Error::new_spanned(
                        other,
                        "a node list holds node numbers, such as `nodes = [0, 1]`",
                    )),
                })
                .collect::<syn::Result<Vec<u32>>>()?;
            nodes.sort_unstable();
            nodes.dedup();
            nodes
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`nodes` takes a node list, such as `nodes = \"0,1\"` or `nodes = [0, 1]`",
            ))
        }
    };
    if nodes.is_empty() {
        return Err(syn::Error::new_spanned(
            value,
            "`nodes` needs at least one node",
        ));
    }
    Ok(nodes)
}

fn node_literal(int: &syn::LitInt) -> syn::Result<u32> {
    spec::node_id(int.base10_digits())
        .map_err(|e| syn::Error::new(int.span(), format!("invalid node: {e}")))
}
