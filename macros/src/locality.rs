//! `#[locality(a, b = 3, strict)]`: an `async fn` that first moves its task
//! to the node of the resources named by its arguments.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit_mut::VisitMut;
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
    let output = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    let body = &func.block;
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

    // The `async fn` becomes a plain `fn` returning the future, so the
    // targets are resolved when it is called: a spawned call is then
    // queued on its targets' node at once (see `locality::spawn_hint`)
    // instead of hopping there on its first poll.
    let captures = capture_arguments(&mut func.sig.inputs);
    let lifetimes = name_elided_lifetimes(&mut func.sig);
    let body: syn::Block = syn::parse_quote!({
        let __numa_rt_plan = #loc::Plan::new(&#set);
        #loc::spawn_hint(__numa_rt_plan, async move {
            #(#captures)*
            let __numa_rt_node = #loc::hop_planned(__numa_rt_plan, &#set).await;
            #typed
        })
    });
    *func.block = body;
    func.sig.asyncness = None;
    func.sig.output = syn::parse_quote!(
        -> impl ::core::future::Future<Output = #output> #(+ #loc::Captures<#lifetimes>)*
    );
    Ok(func.into_token_stream())
}

/// Statements that move every argument into the returned future, as an
/// `async fn` does (an `async move` block would take only those its body
/// names, dropping the others at the call). Arguments bound by a pattern
/// other than a name are passed under a hidden name and destructured in
/// the future.
fn capture_arguments(inputs: &mut Punctuated<FnArg, Token![,]>) -> Vec<TokenStream> {
    let mut captures = Vec::new();
    for (i, arg) in inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(_) => captures.push(quote!(let _ = &self;)),
            FnArg::Typed(t) => match &*t.pat {
                Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                    let name = &p.ident;
                    captures.push(quote!(let _ = &#name;));
                }
                _ => {
                    let hidden = Ident::new(&format!("__numa_rt_arg{i}"), Span::call_site());
                    let pat = std::mem::replace(&mut *t.pat, syn::parse_quote!(#hidden));
                    captures.push(quote!(let #pat = #hidden;));
                }
            },
        }
    }
    captures
}

/// Names the elided lifetimes of the arguments (`&T`, `'_`) and returns
/// every lifetime parameter of the function, for the `Captures` bounds of
/// the returned `impl Future` (which, unlike an `async fn`'s future,
/// captures only the lifetimes it names on edition 2021).
fn name_elided_lifetimes(sig: &mut syn::Signature) -> Vec<syn::Lifetime> {
    let mut namer = NameElided { fresh: Vec::new() };
    for arg in sig.inputs.iter_mut() {
        match arg {
            FnArg::Receiver(r) => {
                if let Some((_, lifetime)) = &mut r.reference {
                    match lifetime {
                        Some(l) => namer.visit_lifetime_mut(l),
                        None => *lifetime = Some(namer.next()),
                    }
                    if let syn::Type::Reference(ty) = &mut *r.ty {
                        ty.lifetime.clone_from(lifetime);
                    }
                } else {
                    namer.visit_type_mut(&mut r.ty);
                }
            }
            FnArg::Typed(t) => namer.visit_type_mut(&mut t.ty),
        }
    }
    for lifetime in namer.fresh.iter().rev() {
        sig.generics.params.insert(
            0,
            syn::GenericParam::Lifetime(syn::LifetimeParam::new(lifetime.clone())),
        );
    }
    sig.generics
        .lifetimes()
        .map(|param| param.lifetime.clone())
        .collect()
}

/// Gives each elided lifetime of a type a fresh name.
struct NameElided {
    fresh: Vec<syn::Lifetime>,
}

impl NameElided {
    fn next(&mut self) -> syn::Lifetime {
        let lifetime = syn::Lifetime::new(
            &format!("'__numa_rt_l{}", self.fresh.len()),
            Span::call_site(),
        );
        self.fresh.push(lifetime.clone());
        lifetime
    }
}

impl VisitMut for NameElided {
    fn visit_type_reference_mut(&mut self, ty: &mut syn::TypeReference) {
        match &mut ty.lifetime {
            Some(l) => self.visit_lifetime_mut(l),
            None => ty.lifetime = Some(self.next()),
        }
        self.visit_type_mut(&mut ty.elem);
    }

    fn visit_lifetime_mut(&mut self, lifetime: &mut syn::Lifetime) {
        if lifetime.ident == "_" {
            *lifetime = self.next();
        }
    }

    // Elided lifetimes inside `fn(&T)` and `Fn(&T)` belong to that type,
    // not to the function.
    fn visit_type_bare_fn_mut(&mut self, _: &mut syn::TypeBareFn) {}

    fn visit_parenthesized_generic_arguments_mut(
        &mut self,
        _: &mut syn::ParenthesizedGenericArguments,
    ) {
    }
}
