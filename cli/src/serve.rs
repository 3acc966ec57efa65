//! `shmring serve`: rings over RTSP with gst-rtsp-server. Each ring is a shared media:
//! one `shmringsrc ! encoder ! rtph264pay` pipeline, started by the first client and
//! stopped after the last, whatever the number of clients between. A ring of the
//! camera's own H.264 or H.265 is served as it is: `shmringsrc ! h264parse !
//! rtph264pay`, no encoder.
//!
//! Every client is untrusted: a ring without a live writer is refused at once, a media
//! that brings no frame within [`FIRST_FRAME_TIMEOUT`] is abandoned, clients are served
//! on several threads so that none waits for another, and sessions are bounded. Media
//! pipelines are built from elements and properties, never from text with ring names
//! or directories pasted in.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst_rtsp_server::prelude::*;
use gst_rtsp_server::subclass::prelude::*;

use crate::rings::{ring_names, Result};

/// How long a media may take to bring its first frame before its client is refused.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Threads that serve clients: one client waiting on a media never holds up another.
const CLIENT_THREADS: i32 = 8;
/// RTSP sessions at once, over all rings.
const MAX_SESSIONS: u32 = 64;

pub(crate) struct Options {
    pub dir: PathBuf,
    pub rings: Vec<String>,
    pub port: u16,
    pub bind: String,
    pub encoder: String,
    pub bitrate: u32,
    pub user: Option<String>,
    pub password_file: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// An H.264 encoder element and the properties that tune it for low latency.
#[derive(Clone, Debug)]
struct Encoder {
    factory: &'static str,
    properties: Vec<(&'static str, String)>,
}

impl Encoder {
    fn new(name: &str, kbps: u32) -> Result<Encoder> {
        let bps = (u64::from(kbps) * 1000).to_string();
        let kbps = kbps.to_string();
        let (factory, properties) = match name {
            "x264enc" => (
                "x264enc",
                vec![
                    ("tune", "zerolatency".into()),
                    ("speed-preset", "ultrafast".into()),
                    ("bitrate", kbps),
                    ("key-int-max", "30".into()),
                ],
            ),
            "openh264enc" => (
                "openh264enc",
                vec![
                    ("bitrate", bps),
                    ("gop-size", "30".into()),
                    ("complexity", "low".into()),
                ],
            ),
            "vaapih264enc" => (
                "vaapih264enc",
                vec![
                    ("rate-control", "cbr".into()),
                    ("bitrate", kbps),
                    ("keyframe-period", "30".into()),
                ],
            ),
            "nvh264enc" => (
                "nvh264enc",
                vec![
                    ("preset", "low-latency-hq".into()),
                    ("bitrate", kbps),
                    ("gop-size", "30".into()),
                ],
            ),
            "v4l2h264enc" => (
                "v4l2h264enc",
                vec![(
                    "extra-controls",
                    format!("controls,video_bitrate={bps},h264_i_frame_period=30"),
                )],
            ),
            other => {
                return Err(format!(
                    "encoder {other}: expected x264enc, openh264enc, vaapih264enc, nvh264enc or v4l2h264enc"
                ))
            }
        };
        if gst::ElementFactory::find(factory).is_none() {
            return Err(format!(
                "encoder {factory} is not installed here (gst-inspect-1.0 {factory})"
            ));
        }
        Ok(Encoder {
            factory,
            properties,
        })
    }

    fn make(&self) -> std::result::Result<gst::Element, glib::BoolError> {
        let e = gst::ElementFactory::make(self.factory).build()?;
        for (name, value) in &self.properties {
            e.set_property_from_str(name, value);
        }
        Ok(e)
    }
}

/// What a media of one ring is made of.
#[derive(Clone, Debug)]
struct Media {
    dir: PathBuf,
    ring: String,
    encoder: Encoder,
}

impl Media {
    /// The codec of the ring when it holds encoded units ("h264" or "h265"), served
    /// without an encoder.
    fn encoded_codec(&self) -> Option<&'static str> {
        let r = crate::rings::open(&self.dir, &self.ring).ok()?;
        if !r.holds_units() {
            return None;
        }
        let (_, caps) = r.current_caps().ok()??;
        shmring_common::codec_of(&caps)
    }

    /// `shmringsrc ! queue ! videoconvert ! I420 ! encoder ! h264parse ! rtph264pay`,
    /// or for an encoded ring `shmringsrc ! h26Xparse ! rtph26Xpay`, element by
    /// element: the ring's name and directory are property values.
    fn build(&self) -> std::result::Result<gst::Element, glib::BoolError> {
        let make = |factory: &str| gst::ElementFactory::make(factory).build();
        let src = gst::ElementFactory::make("shmringsrc")
            .property("ring", &self.ring)
            .property("dir", self.dir.to_string_lossy().as_ref())
            .build()?;
        if let Some(codec) = self.encoded_codec() {
            eprintln!(
                "shmring serve: /{}: {} from the ring, served as it is (no encoder)",
                self.ring,
                codec.to_uppercase()
            );
            let parse = make(&format!("{codec}parse"))?;
            let pay = gst::ElementFactory::make(&format!("rtp{codec}pay"))
                .name("pay0")
                .property("pt", 96u32)
                .property("config-interval", -1i32)
                .build()?;
            let bin = gst::Bin::new();
            let chain = [&src, &parse, &pay];
            bin.add_many(chain)?;
            gst::Element::link_many(chain)?;
            return Ok(bin.upcast());
        }
        let queue = gst::ElementFactory::make("queue")
            .property_from_str("leaky", "downstream")
            .property("max-size-buffers", 2u32)
            .build()?;
        let convert = make("videoconvert")?;
        let i420 = gst::ElementFactory::make("capsfilter")
            .property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .build(),
            )
            .build()?;
        let encoder = self.encoder.make()?;
        let parse = make("h264parse")?;
        let pay = gst::ElementFactory::make("rtph264pay")
            .name("pay0")
            .property("pt", 96u32)
            .property("config-interval", 1i32)
            .build()?;
        let bin = gst::Bin::new();
        let chain = [&src, &queue, &convert, &i420, &encoder, &parse, &pay];
        bin.add_many(chain)?;
        gst::Element::link_many(chain)?;
        Ok(bin.upcast())
    }

    /// Whether the ring has a writer alive now: a media of a ring without one would
    /// wait for it, holding its client.
    fn writer_alive(&self) -> std::result::Result<(), String> {
        let r = crate::rings::open(&self.dir, &self.ring)?;
        match r.writer_status() {
            shmring_common::WriterStatus::Live => Ok(()),
            other => Err(format!("its writer is {}", crate::rings::state_name(other))),
        }
    }
}

mod imp {
    use super::*;

    /// A media factory of one ring.
    #[derive(Default)]
    pub struct RingFactory {
        pub(super) media: OnceLock<Media>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for RingFactory {
        const NAME: &'static str = "ShmringServeRingFactory";
        type Type = super::RingFactory;
        type ParentType = gst_rtsp_server::RTSPMediaFactory;
    }

    impl ObjectImpl for RingFactory {}

    impl RTSPMediaFactoryImpl for RingFactory {
        // A ring without a live writer is refused here rather than in create_element,
        // whose binding raises a critical when it returns no element.
        fn construct(
            &self,
            url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst_rtsp_server::RTSPMedia> {
            let media = self.media.get()?;
            if let Err(why) = media.writer_alive() {
                eprintln!("shmring serve: /{}: refused: {why}", media.ring);
                return None;
            }
            self.parent_construct(url)
        }

        fn create_element(
            &self,
            _url: &gst_rtsp_server::gst_rtsp::RTSPUrl,
        ) -> Option<gst::Element> {
            let media = self.media.get()?;
            match media.build() {
                Ok(bin) => Some(bin),
                Err(e) => {
                    // An element missing (h265parse for an H.265 ring, said at start):
                    // an empty bin has no stream, and the client is refused.
                    eprintln!("shmring serve: /{}: {e}", media.ring);
                    Some(gst::Bin::new().upcast())
                }
            }
        }

        fn media_configure(&self, media: &gst_rtsp_server::RTSPMedia) {
            self.parent_media_configure(media);
            // A media that has not brought its first frame in time fails with an
            // error on its pipeline's bus: every client waiting for it is answered and
            // gives back its own hold on the media (unprepare would take a hold that is
            // not ours, and end the stream of a client that came later). Checked on
            // the main loop, from a flag: RTSPMedia::status() waits while a media
            // prepares, and the main loop must never wait.
            let prepared = Arc::new(AtomicBool::new(false));
            let flag = prepared.clone();
            // Release pairs with the Acquire load below.
            media.connect_prepared(move |_| flag.store(true, Ordering::Release));
            let weak = media.downgrade();
            let ring = self.media.get().map(|m| m.ring.clone()).unwrap_or_default();
            glib::timeout_add_once(FIRST_FRAME_TIMEOUT, move || {
                let Some(media) = weak.upgrade() else { return };
                if prepared.load(Ordering::Acquire) {
                    return;
                }
                eprintln!(
                    "shmring serve: /{ring}: no frame within {} s: refused",
                    FIRST_FRAME_TIMEOUT.as_secs()
                );
                media.element().post_error_message(gst::error_msg!(
                    gst::ResourceError::Read,
                    (
                        "Ring {} brought no frame within {} s",
                        ring,
                        FIRST_FRAME_TIMEOUT.as_secs()
                    )
                ));
            });
        }
    }
}

glib::wrapper! {
    pub struct RingFactory(ObjectSubclass<imp::RingFactory>) @extends gst_rtsp_server::RTSPMediaFactory;
}

impl RingFactory {
    fn new(media: Media) -> Self {
        let f: Self = glib::Object::new();
        f.imp().media.set(media).expect("set once, when made");
        f
    }
}

pub(crate) fn serve(opts: Options) -> Result<()> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let encoder = Encoder::new(&opts.encoder, opts.bitrate)?;
    let auth = authentication(&opts)?;
    for needed in ["shmringsrc", "videoconvert", "h264parse", "rtph264pay"] {
        if gst::ElementFactory::find(needed).is_none() {
            return Err(format!(
                "{needed} is not installed here (gst-inspect-1.0 {needed}; for shmringsrc, GST_PLUGIN_PATH)"
            ));
        }
    }
    // Encoded rings are served as they are: H.264 with the elements above, H.265 only
    // where its parser and payloader are installed.
    if ["h265parse", "rtph265pay"]
        .iter()
        .any(|f| gst::ElementFactory::find(f).is_none())
    {
        eprintln!(
            "shmring serve: no h265parse or rtph265pay here: rings of H.265 cannot be served"
        );
    }
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address(&opts.bind);
    server.set_service(&opts.port.to_string());
    if let Some(a) = &auth {
        server.set_auth(Some(a));
    }
    if let Some(pool) = server.thread_pool() {
        pool.set_max_threads(CLIENT_THREADS);
    }
    if let Some(pool) = server.session_pool() {
        pool.set_max_sessions(MAX_SESSIONS);
    }
    let mounts = server
        .mount_points()
        .ok_or("gst-rtsp-server has no mount points")?;
    let served: Arc<Mutex<HashSet<String>>> = Arc::default();
    let with_auth = auth.is_some();
    // Mounts what is not mounted yet: the rings named, or every ring of the directory,
    // including those that appear while the server runs (looked for every second);
    // when serving the whole directory, takes down the mounts of rings removed.
    let remount = {
        let (served, mounts, dir, only) = (
            served.clone(),
            mounts.clone(),
            opts.dir.clone(),
            opts.rings.clone(),
        );
        move || {
            let names: HashSet<String> = if only.is_empty() {
                match ring_names(&dir) {
                    Ok(names) => names.into_iter().collect(),
                    // Not a sign that the rings are gone (EMFILE under load, say):
                    // nothing is mounted or taken down this round.
                    Err(e) => {
                        eprintln!("shmring serve: {e}");
                        return;
                    }
                }
            } else {
                only.iter().cloned().collect()
            };
            let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
            served.retain(|name| {
                let keep = names.contains(name);
                if !keep {
                    mounts.remove_factory(&format!("/{name}"));
                    eprintln!("shmring serve: /{name} taken down: the ring is gone");
                }
                keep
            });
            let mut new: Vec<&String> = names.difference(&served).collect();
            new.sort();
            for name in new {
                let factory = RingFactory::new(Media {
                    dir: dir.clone(),
                    ring: name.clone(),
                    encoder: encoder.clone(),
                });
                factory.set_shared(true);
                if with_auth {
                    factory.add_role_from_structure(
                        &gst::Structure::builder("user")
                            .field(
                                gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS.as_str(),
                                true,
                            )
                            .field(
                                gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT.as_str(),
                                true,
                            )
                            .build(),
                    );
                }
                mounts.add_factory(&format!("/{name}"), factory);
                eprintln!("shmring serve: /{name}");
            }
            served.extend(names);
        }
    };
    remount();
    glib::timeout_add_seconds(1, move || {
        remount();
        glib::ControlFlow::Continue
    });
    let main_loop = glib::MainLoop::new(None, false);
    let _id = server
        .attach(None)
        .map_err(|e| format!("cannot listen on {}:{}: {e}", opts.bind, opts.port))?;
    let scheme = if opts.tls.is_some() { "rtsps" } else { "rtsp" };
    eprintln!(
        "shmring serve: rings of {} at {scheme}://{}:{}/RING",
        opts.dir.display(),
        opts.bind,
        server.bound_port()
    );
    // SIGINT or SIGTERM end the process: a server writes no ring, so nothing is left
    // behind.
    main_loop.run();
    Ok(())
}

/// Basic authentication (and TLS) when asked for: one user, allowed every ring. A
/// password without a user is an error, never a server open to all.
fn authentication(opts: &Options) -> Result<Option<gst_rtsp_server::RTSPAuth>> {
    let env_password = std::env::var("SHMRING_SERVE_PASSWORD").ok();
    if opts.user.is_none() && (env_password.is_some() || opts.password_file.is_some()) {
        return Err(
            "a password (--password-file or $SHMRING_SERVE_PASSWORD) needs --user: \
             without it every client would be let in"
                .into(),
        );
    }
    if opts.user.is_none() && opts.tls.is_none() {
        return Ok(None);
    }
    let auth = gst_rtsp_server::RTSPAuth::new();
    if let Some(user) = &opts.user {
        let password = match (&opts.password_file, env_password) {
            (Some(f), _) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, Some(p)) => p,
            (None, None) => {
                return Err(
                    "--user needs a password: --password-file FILE or $SHMRING_SERVE_PASSWORD"
                        .into(),
                )
            }
        };
        if password.is_empty() {
            return Err("--user needs a password that is not empty".into());
        }
        let token = gst_rtsp_server::RTSPToken::builder()
            .field(
                gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(),
                "user",
            )
            .build();
        auth.add_basic(
            &gst_rtsp_server::RTSPAuth::make_basic(user, &password),
            &token,
        );
    } else {
        // TLS alone: everybody who completes the handshake may watch.
        let mut token = gst_rtsp_server::RTSPToken::builder()
            .field(
                gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE.as_str(),
                "user",
            )
            .build();
        auth.set_default_token(Some(&mut token));
    }
    if let Some((cert, key)) = &opts.tls {
        let tls = gst_rtsp_server::gio::TlsCertificate::from_files(cert, key).map_err(|e| {
            format!(
                "TLS certificate {} / key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
        auth.set_tls_certificate(Some(&tls));
    }
    Ok(Some(auth))
}
