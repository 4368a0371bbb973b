//! `#[derive(Target)]`: a struct made of targets is a target: each field
//! adds its nodes (`#[target(skip)]` leaves one out, `#[target(weight = N)]`
//! counts it N times).

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Data, DeriveInput, Expr, Fields, Index, LitStr, Path};

/// Expands the derive.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match try_expand(input) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

struct FieldOpts {
    skip: bool,
    weight: Option<Expr>,
}

fn field_opts(attrs: &[syn::Attribute]) -> syn::Result<FieldOpts> {
    let mut opts = FieldOpts {
        skip: false,
        weight: None,
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("target")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                opts.skip = true;
                Ok(())
            } else if meta.path.is_ident("weight") {
                opts.weight = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `skip` or `weight = N`"))
            }
        })?;
    }
    Ok(opts)
}

fn crate_path(attrs: &[syn::Attribute]) -> syn::Result<Path> {
    let mut path: Path = syn::parse_quote!(::numa_rt);
    for attr in attrs.iter().filter(|a| a.path().is_ident("target")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                path = lit.parse()?;
                Ok(())
            } else {
                Err(meta.error("expected `crate = \"path\"`"))
            }
        })?;
    }
    Ok(path)
}

fn try_expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(input)?;
    let krate = crate_path(&input.attrs)?;
    let loc = quote!(#krate::locality);
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Target)] supports structs whose fields are targets",
        ));
    };
    let mut adds = Vec::new();
    let members: Vec<(TokenStream, &syn::Field)> = match &data.fields {
        Fields::Named(f) => f
            .named
            .iter()
            .map(|field| {
                let ident = field.ident.as_ref().map(|i| quote!(#i)).unwrap_or_default();
                (ident, field)
            })
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, field)| {
                let index = Index::from(i);
                (quote!(#index), field)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (member, field) in members {
        let opts = field_opts(&field.attrs)?;
        if opts.skip {
            continue;
        }
        adds.push(match opts.weight {
            Some(w) => quote!(targets.add_weighted(&self.#member, (#w) as u64, topology)?;),
            None => quote!(#loc::Target::add_to(&self.#member, targets, topology)?;),
        });
    }
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics #loc::Target for #name #ty_generics #where_clause {
            fn add_to(
                &self,
                targets: &mut #loc::Targets,
                topology: &#krate::topology::Topology,
            ) -> ::core::result::Result<(), #loc::PlacementError> {
                #(#adds)*
                ::core::result::Result::Ok(())
            }
        }
    })
}
