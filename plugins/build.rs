//! Build script of the plugin: the version, commit and release date GStreamer shows.
fn main() {
    gst_plugin_version_helper::info()
}
