//! Compile-time behaviour of the macros: misuse gives a clear error
//! (tests/ui/*.rs with the expected tests/ui/*.stderr), and valid uses
//! build and run.
//!
//! Regenerate the expected output after a deliberate change with
//! `TRYBUILD=overwrite cargo test --test macros_ui`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail_*.rs");
    t.pass("tests/ui/pass_*.rs");
}
