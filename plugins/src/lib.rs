//! The loadable plugin `shmring` (libgstshmring.so): `shmringsink` and `shmringsrc`.
//!
//! Applications and tests that link this crate can register the elements statically
//! with [`plugin_register_static`].

use gst::glib;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gstshmringsink::register(plugin)?;
    gstshmringsrc::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    shmring,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
