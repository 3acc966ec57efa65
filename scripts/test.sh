#!/usr/bin/env bash
# Sets everything up on Debian 12 and runs every test: formatting, lints, the ring's
# unit, stress (threads and processes), fuzz and wake-path (seccomp) tests, the same
# ring suite built for aarch64 under qemu-user, the Python package's pytest suite (under
# numpy 1.x and 2.x), the Node package's tests (npm test), the elements' gst-check tests,
# the cross-process gst-launch tests, the end-to-end three-camera test, a build through
# meson that gst-inspect-1.0 must load, the C examples and libshmring's C tests must
# pass (also under AddressSanitizer) and meson install must install, the Debian
# packages must build lint-clean and work when installed in a clean Debian 12 chroot,
# the elements' tests on GStreamer 1.26 (a Debian 13 chroot) and on aarch64 (a Debian
# 12 arm64 chroot under qemu-user-static, where the arm64 packages are installed too),
# and a short run of the benchmark (to show it runs; its figures are not pass/fail).
# A GLib critical or warning anywhere fails the run (G_DEBUG=fatal_warnings).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

export G_DEBUG=fatal_warnings
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (cargo test alone does not produce libgstshmring.so, which the"
echo "   gst-launch-1.0 tests load)"
cargo build --workspace --locked
echo "== capi/include/shmring.h is what cbindgen makes of capi/src"
bash scripts/capi-header.sh --check
echo "== cargo test"
PROPTEST_CASES=20000 cargo test --workspace --locked
bash scripts/test-aarch64.sh
echo "== Python: the package (python/) formats, lints, installs with pip and passes pytest"
repo=$PWD
py_target=$repo/target/python # the package's own cargo target (it is not in the workspace)
CARGO_TARGET_DIR=$py_target cargo fmt --manifest-path python/Cargo.toml -- --check
CARGO_TARGET_DIR=$py_target cargo clippy --manifest-path python/Cargo.toml --locked -- -D warnings
rm -rf target/python-wheel
CARGO_TARGET_DIR=$py_target target/pyenv/bin/pip wheel -q --disable-pip-version-check --no-deps -w target/python-wheel ./python
for env in pyenv pyenv-numpy2; do
  echo "-- pytest with numpy $(target/$env/bin/python -c 'import numpy; print(numpy.__version__)')"
  target/$env/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps target/python-wheel/*.whl
  (cd python && ../target/$env/bin/pytest -q tests)
done
echo "== Node: the package (node/) formats, lints, builds with npm install and passes npm test"
node_target=$repo/target/node # the addon's own cargo target (it is not in the workspace)
CARGO_TARGET_DIR=$node_target cargo fmt --manifest-path node/Cargo.toml -- --check
CARGO_TARGET_DIR=$node_target cargo clippy --manifest-path node/Cargo.toml --release --locked -- -D warnings
(cd node && CARGO_TARGET_DIR=$node_target npm install --no-audit --no-fund --loglevel=error && npm test)
echo "== meson: the plugin built through meson.build loads in gst-inspect-1.0, and the"
echo "   C examples (a gst-check suite, an application, libshmring's reader and writer"
echo "   across processes and its C tests) run against it; cargo builds in target/"
rm -rf target/meson
meson setup --buildtype=debug -Dcargo_target_dir="$repo/target" target/meson
meson compile -C target/meson
meson test -C target/meson --print-errorlogs "gst-inspect shmring" "c gst-check suite" "c application"
meson test -C target/meson --print-errorlogs --suite capi
echo "== libshmring's C tests and examples under AddressSanitizer and LeakSanitizer"
rm -rf target/meson-asan
meson setup --buildtype=debug -Db_sanitize=address -Dcargo_target_dir="$repo/target" target/meson-asan
meson compile -C target/meson-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 meson test -C target/meson-asan --print-errorlogs --suite capi
echo "== meson install puts the plugin into GStreamer's plugin directory and libshmring"
echo "   (library, soname links, header, shmring.pc) beside the system's (staged in DESTDIR)"
dest=$PWD/target/meson-dest
rm -rf "$dest"
meson install -C target/meson --destdir "$dest" --quiet
installed=$dest$(pkg-config --variable=pluginsdir gstreamer-1.0)/libgstshmring.so
test -f "$installed" || { echo "meson install did not install $installed"; exit 1; }
GST_REGISTRY=$dest/registry.bin GST_PLUGIN_SYSTEM_PATH= GST_PLUGIN_PATH=$(dirname "$installed") \
  gst-inspect-1.0 shmring | grep shmringsrc >/dev/null
libdir=$(find "$dest" -name libshmring.so.0.2.0 -printf '%h\n')
for f in libshmring.so libshmring.so.0 pkgconfig/shmring.pc; do
  test -e "$libdir/$f" || { echo "meson install did not install $libdir/$f"; exit 1; }
done
test -f "$(find "$dest" -path '*/include/shmring.h')" || { echo "meson install did not install shmring.h"; exit 1; }
PKG_CONFIG_SYSROOT_DIR=$dest PKG_CONFIG_LIBDIR=$libdir/pkgconfig pkg-config --cflags --libs shmring \
  | grep -q -- "-lshmring" || { echo "shmring.pc does not link libshmring"; exit 1; }
echo "== Debian packages and the wheel (dist/), installed and used in a clean Debian 12 chroot"
bash scripts/package.sh
bash scripts/test-packages.sh
echo "== other platforms: GStreamer 1.26 (Debian 13) and aarch64 (Debian 12 arm64 under"
echo "   qemu-user-static), with the arm64 packages"
bash scripts/test-platforms.sh
echo "== benchmarks (short: they must run; their figures are not pass/fail)"
cargo bench --locked -p shmring-common --bench ring -- --quick
(cd /tmp && "$repo/target/pyenv/bin/python" "$repo/python/benches/readers.py" --quick)
(cd /tmp && "$repo/target/pyenv/bin/python" "$repo/scripts/serve-latency.py" --flashes 5)
bash scripts/bench.sh --quick --out target/bench-quick
python3 scripts/bench-encoded.py --seconds 5 --rounds 1 --shmring "$repo/target/debug/shmring"
