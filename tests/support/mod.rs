//! What the element test files share: GStreamer initialised once, with the plugin
//! registered statically and every GLib critical or warning fatal.

use std::sync::Once;

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // A GLib critical or warning anywhere fails the test, whatever G_DEBUG says.
        glib::log_set_always_fatal(
            glib::LogLevels::LEVEL_CRITICAL | glib::LogLevels::LEVEL_WARNING,
        );
        gst::init().unwrap();
        gstshmring::plugin_register_static().expect("shmring plugin registers");
    });
}
