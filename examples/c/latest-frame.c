/* A C application that reads a ring the way an analytics process would: it takes the
 * latest frame whenever it is ready for one (a slow application skips frames and never
 * slows the writer), and learns from each frame its ring sequence and how long ago it
 * was captured.
 *
 * Usage: latest-frame RING [FRAMES]   (GST_PLUGIN_PATH must find libgstshmring.so)
 * Prints one line per frame, then a summary; exits 0 once FRAMES frames (default 30)
 * came in order with a capture time, 1 otherwise.
 *
 * Build: cc latest-frame.c $(pkg-config --cflags --libs gstreamer-app-1.0) -o latest-frame
 */
#include <gst/gst.h>
#include <gst/app/gstappsink.h>
#include <stdlib.h>

static gboolean
capture_time (GstBuffer * buffer, GstClockTime * unix_ns)
{
  static GstCaps *unix_time;
  GstReferenceTimestampMeta *meta;

  if (unix_time == NULL)
    unix_time = gst_caps_new_empty_simple ("timestamp/x-unix");
  meta = gst_buffer_get_reference_timestamp_meta (buffer, unix_time);
  if (meta == NULL)
    return FALSE;
  *unix_ns = meta->timestamp;
  return TRUE;
}

int
main (int argc, char **argv)
{
  GstElement *pipeline, *sink;
  GError *error = NULL;
  gchar *launch;
  guint64 last_seq = 0;
  guint wanted, got = 0, skipped = 0;
  gboolean ok = TRUE;

  gst_init (&argc, &argv);
  if (argc < 2) {
    g_printerr ("usage: %s RING [FRAMES]\n", argv[0]);
    return 2;
  }
  wanted = argc > 2 ? (guint) strtoul (argv[2], NULL, 10) : 30;

  /* No caps filter: the caps come from the ring. */
  launch = g_strdup_printf ("shmringsrc name=src ring=%s mode=latest ! "
      "appsink name=sink max-buffers=1 drop=true sync=false", argv[1]);
  /* FATAL_ERRORS: no half-made pipeline when an element is missing (the plugin
   * not on GST_PLUGIN_PATH). */
  pipeline = gst_parse_launch_full (launch, NULL, GST_PARSE_FLAG_FATAL_ERRORS,
      &error);
  g_free (launch);
  if (pipeline == NULL) {
    g_printerr ("latest-frame: %s\n", error->message);
    g_error_free (error);
    return 2;
  }
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  gst_element_set_state (pipeline, GST_STATE_PLAYING);

  while (got < wanted) {
    GstSample *sample =
        gst_app_sink_try_pull_sample (GST_APP_SINK (sink), 10 * GST_SECOND);
    GstBuffer *buffer;
    GstClockTime captured;
    guint64 seq;

    if (sample == NULL) {
      /* EOS, or nothing for 10 s; an error says why on the bus. */
      GstBus *bus = gst_element_get_bus (pipeline);
      GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);

      if (msg != NULL) {
        gst_message_parse_error (msg, &error, NULL);
        g_printerr ("latest-frame: %s\n", error->message);
        g_clear_error (&error);
        gst_message_unref (msg);
      } else {
        g_printerr ("latest-frame: no frame from ring %s\n", argv[1]);
      }
      gst_object_unref (bus);
      ok = FALSE;
      break;
    }
    buffer = gst_sample_get_buffer (sample);
    seq = GST_BUFFER_OFFSET (buffer);   /* the frame's sequence in the ring */
    if (!capture_time (buffer, &captured)) {
      g_printerr ("latest-frame: frame %" G_GUINT64_FORMAT
          " carries no capture time\n", seq);
      ok = FALSE;
    } else {
      gint64 age_us = g_get_real_time () - (gint64) (captured / 1000);

      g_print ("frame %" G_GUINT64_FORMAT ": %" G_GSIZE_FORMAT " bytes, "
          "captured %.2f ms ago\n", seq, gst_buffer_get_size (buffer),
          age_us / 1000.0);
    }
    if (got > 0 && seq <= last_seq) {
      g_printerr ("latest-frame: frame %" G_GUINT64_FORMAT " after frame %"
          G_GUINT64_FORMAT "\n", seq, last_seq);
      ok = FALSE;
    } else if (got > 0) {
      skipped += (guint) (seq - last_seq - 1);
    }
    last_seq = seq;
    got++;
    gst_sample_unref (sample);
  }

  g_print ("latest-frame: %u frames, %u skipped, last frame %" G_GUINT64_FORMAT "\n",
      got, skipped, last_seq);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (pipeline);
  return ok && got == wanted ? 0 : 1;
}
