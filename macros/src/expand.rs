//! Turning an `async fn` into a function that runs it on a runtime.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::config::{Config, Flavor};

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "main",
            Kind::Test => "test",
        }
    }

    fn default_flavor(self) -> Flavor {
        match self {
            Kind::Main => Flavor::MultiThread,
            Kind::Test => Flavor::CurrentThread,
        }
    }
}

/// Expands `#[numa_rt::main]` or `#[numa_rt::test]`.
///
/// On an error the function is still emitted (expanded with the default
/// options when possible) next to the error, so that the error is the only
/// one reported and IDEs keep working.
pub(crate) fn entry(args: TokenStream, item: TokenStream, kind: Kind) -> TokenStream {
    let input: syn::ItemFn = match syn::parse2(item.clone()) {
        Ok(input) => input,
        Err(e) => return with_error(item, e),
    };
    if let Err(e) = check_signature(&input, kind) {
        return with_error(placeholder(input), e);
    }
    match Config::parse(args, kind.default_flavor(), kind.name()) {
        Ok(config) => expand(input, kind, &config),
        Err(e) => {
            let fallback = expand(input, kind, &Config::new(kind.default_flavor()));
            with_error(fallback, e)
        }
    }
}

/// What stands in for a function whose signature the macro rejects: a
/// plain function of the same name and return type, so that the macro's
/// error is the only one reported (no "`main` not found" or "`main` cannot
/// be async"). It is never built: the error stops compilation.
fn placeholder(mut input: syn::ItemFn) -> TokenStream {
    if input.sig.asyncness.is_none() {
        // A plain function is valid as it stands.
        return quote!(#input);
    }
    input.sig.asyncness = None;
    input.sig.inputs.clear();
    input.sig.generics = syn::Generics::default();
    input.attrs.retain(|attr| !attr.path().is_ident("test"));
    input.block = syn::parse_quote!({ ::core::unreachable!() });
    quote! {
        #[allow(dead_code, unreachable_code)]
        #input
    }
}

fn with_error(mut tokens: TokenStream, error: syn::Error) -> TokenStream {
    tokens.extend(error.into_compile_error());
    tokens
}

fn check_signature(input: &syn::ItemFn, kind: Kind) -> syn::Result<()> {
    let sig = &input.sig;
    let name = kind.name();
    if sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the `async` keyword is missing from the function declaration; \
                 #[numa_rt::{name}] runs an `async fn`"
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        let what = match kind {
            Kind::Main if sig.ident == "main" => "the main function cannot accept arguments",
            Kind::Main => "a function under #[numa_rt::main] cannot accept arguments",
            Kind::Test => "the test function cannot accept arguments",
        };
        return Err(syn::Error::new_spanned(&sig.inputs, what));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &sig.generics,
            format!("a function under #[numa_rt::{name}] cannot be generic"),
        ));
    }
    if kind == Kind::Test {
        if let Some(attr) = input.attrs.iter().find(|attr| attr.path().is_ident("test")) {
            return Err(syn::Error::new_spanned(
                attr,
                "a second test attribute is supplied: #[numa_rt::test] already \
                 makes the function a test",
            ));
        }
    }
    Ok(())
}

/// The runtime-building expression for `config`.
fn builder(config: &Config, span: proc_macro2::Span) -> TokenStream {
    let krate = &config.crate_path;
    let mut chain = match config.flavor {
        Flavor::CurrentThread => {
            quote_spanned!(span=> #krate::runtime::Builder::new_current_thread())
        }
        Flavor::MultiThread => quote_spanned!(span=> #krate::runtime::Builder::new_multi_thread()),
    };
    if let Some(n) = config.worker_threads {
        chain = quote_spanned!(span=> #chain.worker_threads(#n));
    }
    if let Some(spec) = &config.topology {
        chain = quote_spanned!(span=>
            #chain.topology(#krate::__private::synthetic_topology(#spec))
        );
    }
    if let Some(nodes) = &config.nodes {
        chain = quote_spanned!(span=>
            #chain.nodes([#(#krate::NodeId::new(#nodes)),*])
        );
    }
    quote_spanned!(span=>
        #chain
            .enable_all()
            .build()
            .unwrap_or_else(|e| #krate::__private::build_failed(e))
    )
}

fn expand(mut input: syn::ItemFn, kind: Kind, config: &Config) -> TokenStream {
    input.sig.asyncness = None;
    let block = &input.block;
    let span = block.brace_token.span.join();
    let output = match &input.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let runtime = builder(config, input.sig.output.span());
    // The body is pinned and used as `dyn Future` so that only one
    // `block_on` is instantiated however many tests a crate has, and so
    // that the declared return type drives inference of `?` in the body.
    let body = quote_spanned! {span=>
        {
            let body = ::core::pin::pin!(async #block);
            let body: ::core::pin::Pin<&mut dyn ::core::future::Future<Output = #output>> = body;
            #runtime.block_on(body)
        }
    };
    input.block.stmts = vec![syn::Stmt::Expr(syn::Expr::Verbatim(body), None)];
    let test_attr = match kind {
        Kind::Test => quote!(#[::core::prelude::v1::test]),
        Kind::Main => quote!(),
    };
    quote! {
        #test_attr
        #input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: &str, item: &str, kind: Kind) -> String {
        entry(args.parse().unwrap(), item.parse().unwrap(), kind).to_string()
    }

    #[test]
    fn main_defaults_to_multi_thread() {
        let out = expand_str("", "async fn main() {}", Kind::Main);
        assert!(out.contains("new_multi_thread"), "{out}");
        assert!(!out.contains("async fn"), "{out}");
        assert!(out.contains("block_on"), "{out}");
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn test_defaults_to_current_thread() {
        let out = expand_str("", "async fn t() {}", Kind::Test);
        assert!(out.contains("new_current_thread"), "{out}");
        assert!(out.contains(":: core :: prelude :: v1 :: test"), "{out}");
    }

    #[test]
    fn options_reach_the_builder() {
        let out = expand_str(
            r#"flavor = "multi_thread", worker_threads = 3, nodes = "0-1", topology = "2x1", crate = "my::rt""#,
            "async fn t() {}",
            Kind::Test,
        );
        for want in [
            "my :: rt :: runtime :: Builder :: new_multi_thread ()",
            ". worker_threads (3usize)",
            "my :: rt :: __private :: synthetic_topology (\"2x1\")",
            "my :: rt :: NodeId :: new (0u32) , my :: rt :: NodeId :: new (1u32)",
        ] {
            assert!(out.contains(want), "{want:?} not in {out}");
        }
    }

    #[test]
    fn rejected_signatures_leave_a_plain_function() {
        let out = expand_str(
            "",
            "async fn main(args: Vec<String>) -> u8 { 0 }",
            Kind::Main,
        );
        assert!(out.contains("cannot accept arguments"), "{out}");
        assert!(out.contains("fn main () -> u8"), "{out}");
        assert!(!out.contains("block_on"), "{out}");
        let out = expand_str("", "fn t() {}", Kind::Test);
        assert!(out.contains("`async` keyword is missing"), "{out}");
        assert!(out.contains("fn t () { }"), "{out}");
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand_str("bogus = 1", "async fn main() {}", Kind::Main);
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("unknown option `bogus`"), "{out}");
        assert!(out.contains("fn main"), "{out}");
        assert!(!out.contains("async fn"), "{out}");
    }
}
