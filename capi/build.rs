//! The library's soname: `libshmring.so.0`, so that programs linked against this ABI
//! keep finding it beside a later, incompatible `libshmring.so.1`. SONAME_MAJOR moves
//! only when a function's signature or a struct's layout changes.

const SONAME_MAJOR: u32 = 0;

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libshmring.so.{SONAME_MAJOR}");
    println!("cargo:rerun-if-changed=build.rs");
}
