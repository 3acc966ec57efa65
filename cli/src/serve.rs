//! `shmring serve`: rings over RTSP with gst-rtsp-server. Each ring is a shared media:
//! one `shmringsrc ! encoder ! rtph264pay` pipeline, started by the first client and
//! stopped after the last, whatever the number of clients between.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gst::glib;
use gst_rtsp_server::prelude::*;

use crate::{ring_names, Result};

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

/// The encoder part of a media's pipeline, tuned for low latency.
fn encoder(name: &str, kbps: u32) -> Result<String> {
    let bps = u64::from(kbps) * 1000;
    let fragment = match name {
        "x264enc" => {
            format!("x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max=30")
        }
        "openh264enc" => format!("openh264enc bitrate={bps} gop-size=30 complexity=low"),
        "vaapih264enc" => format!("vaapih264enc rate-control=cbr bitrate={kbps} keyframe-period=30"),
        "nvh264enc" => format!("nvh264enc preset=low-latency-hq bitrate={kbps} gop-size=30"),
        "v4l2h264enc" => {
            format!("v4l2h264enc extra-controls=\"controls,video_bitrate={bps},h264_i_frame_period=30\"")
        }
        other => {
            return Err(format!(
                "encoder {other}: expected x264enc, openh264enc, vaapih264enc, nvh264enc or v4l2h264enc"
            ))
        }
    };
    if gst::ElementFactory::find(name).is_none() {
        return Err(format!(
            "encoder {name} is not installed here (gst-inspect-1.0 {name})"
        ));
    }
    Ok(fragment)
}

pub(crate) fn serve(opts: Options) -> Result<()> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    let enc = encoder(&opts.encoder, opts.bitrate)?;
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address(&opts.bind);
    server.set_service(&opts.port.to_string());
    let auth = authentication(&opts)?;
    if let Some(a) = &auth {
        server.set_auth(Some(a));
    }
    let mounts = server
        .mount_points()
        .ok_or("gst-rtsp-server has no mount points")?;
    let dir = opts.dir.clone();
    let launch = move |ring: &str| {
        format!(
            "( shmringsrc ring={ring} dir={} ! queue leaky=downstream max-size-buffers=2 \
             ! videoconvert ! video/x-raw,format=I420 ! {enc} ! h264parse \
             ! rtph264pay name=pay0 pt=96 config-interval=1 )",
            dir.display()
        )
    };
    let served: Arc<Mutex<HashSet<String>>> = Arc::default();
    let with_auth = auth.is_some();
    // Mounts what is not mounted yet: the rings named, or every ring of the directory,
    // including those that appear while the server runs (looked for every second).
    let mount_new = {
        let (served, mounts, dir, only) = (
            served.clone(),
            mounts.clone(),
            opts.dir.clone(),
            opts.rings.clone(),
        );
        move || {
            let names = if only.is_empty() {
                ring_names(&dir).unwrap_or_default()
            } else {
                only.clone()
            };
            let mut served = served.lock().unwrap_or_else(|e| e.into_inner());
            for name in names {
                if served.contains(&name) {
                    continue;
                }
                let factory = gst_rtsp_server::RTSPMediaFactory::new();
                factory.set_launch(&launch(&name));
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
                served.insert(name);
            }
        }
    };
    mount_new();
    glib::timeout_add_seconds(1, move || {
        mount_new();
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

/// Basic authentication (and TLS) when asked for: one user, allowed every ring.
fn authentication(opts: &Options) -> Result<Option<gst_rtsp_server::RTSPAuth>> {
    if opts.user.is_none() && opts.tls.is_none() {
        return Ok(None);
    }
    let auth = gst_rtsp_server::RTSPAuth::new();
    if let Some(user) = &opts.user {
        let password = match &opts.password_file {
            Some(f) => std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read {}: {e}", f.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            None => std::env::var("SHMRING_SERVE_PASSWORD").map_err(|_| {
                "--user needs a password: --password-file FILE or $SHMRING_SERVE_PASSWORD"
                    .to_string()
            })?,
        };
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
