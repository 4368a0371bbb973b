//! `#[locality(a, b = 3, strict)]`: an `async fn` that first moves its task
//! to the node of the resources named by its arguments.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, FnArg, Ident, ItemFn, LitStr, Pat, Path, ReturnType, Token};

/// One item of the attribute's list.
enum Item {
    /// An argument used once, or `weight` times.
    Arg { name: Ident, weight: Option<Expr> },
    /// `crate = "path"`: where the `numa_rt` crate is.
    Crate(Path),
}

impl Parse for Item {
    fn parse(input: ParseStream<'_>) -> syn::Result<Item> {
        if input.peek(Token![crate]) {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let lit: LitStr = input.parse()?;
            return Ok(Item::Crate(lit.parse()?));
        }
        let name = Ident::parse_any(input)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let weight: Expr = input.parse()?;
            return Ok(Item::Arg {
                name,
                weight: Some(weight),
            });
        }
        Ok(Item::Arg { name, weight: None })
    }
}

/// Expands the attribute.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    match try_expand(args, item) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

fn try_expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let mut func: ItemFn = syn::parse2(item)?;
    if func.sig.asyncness.is_none() {
        return Err(syn::Error::new_spanned(
            func.sig.fn_token,
            "#[locality] applies to an `async fn`",
        ));
    }
    let items = syn::parse::Parser::parse2(Punctuated::<Item, Token![,]>::parse_terminated, args)?;
    let params: Vec<Ident> = func
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) => Some(p.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => Some(Ident::new("self", Span::call_site())),
        })
        .collect();

    let mut krate: Path = syn::parse_quote!(::numa_rt);
    let mut strict = false;
    let mut targets = Vec::new();
    for item in items {
        match item {
            Item::Crate(path) => krate = path,
            Item::Arg { name, weight } => {
                if name == "strict" && weight.is_none() && !params.contains(&name) {
                    strict = true;
                    continue;
                }
                if !params.contains(&name) {
                    return Err(syn::Error::new_spanned(
                        &name,
                        format!(
                            "`{name}` is not an argument of this function; #[locality] names \
                             the arguments whose resources the function uses"
                        ),
                    ));
                }
                targets.push((name, weight));
            }
        }
    }
    if targets.is_empty() {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[locality] needs at least one argument to place the function by, \
             e.g. #[locality(index)] or #[locality(index, log = 2, strict)]",
        ));
    }

    let loc = quote!(#krate::locality);
    let parts = targets.iter().map(|(name, weight)| match weight {
        Some(w) => quote!(#loc::Weighted(&#name, (#w) as u64)),
        None => quote!(&#name),
    });
    let mut set = quote!((#(#parts,)*));
    if strict {
        set = quote!(#loc::Strict(#set));
    }
    let body = &func.block;
    let output = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    // Gives the inner block its output type (so `?` inside it infers),
    // except for `impl Trait` outputs, which cannot be named here.
    let typed = if output.to_string().contains("impl") {
        quote!(#loc::OnTarget::new(__numa_rt_node, async move #body).await)
    } else {
        quote!({
            fn __numa_rt_typed<F: ::core::future::Future<Output = #output>>(f: F) -> F {
                f
            }
            #loc::OnTarget::new(__numa_rt_node, __numa_rt_typed(async move #body)).await
        })
    };
    let new_body: syn::Block = syn::parse_quote!({
        let __numa_rt_node = #loc::hop(&#set).await;
        #typed
    });
    *func.block = new_body;
    Ok(func.into_token_stream())
}
