/* How a C application tests its use of shmringsink and shmringsrc with gst-check.
 *
 * The plugin is loaded the way an application loads it, from GST_PLUGIN_PATH. Each
 * test puts its rings in a fresh directory (the elements' `dir` property), so tests
 * never meet each other's rings or the machine's.
 *
 * Build and run (meson does both: `meson test -C build`):
 *   cc test-shmring.c $(pkg-config --cflags --libs gstreamer-check-1.0) -o test-shmring
 *   GST_PLUGIN_PATH=target/release ./test-shmring
 */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define WIDTH 16
#define HEIGHT 8
#define FRAME_SIZE (WIDTH * HEIGHT)
#define CAPS "video/x-raw,format=GRAY8,width=16,height=8,framerate=30/1"
#define CAPTURED_AT G_GUINT64_CONSTANT (1700000000123456789)

static gchar *ring_dir;

static void
make_ring_dir (void)
{
  GError *error = NULL;

  ring_dir = g_dir_make_tmp ("shmring-check-XXXXXX", &error);
  fail_unless (ring_dir != NULL, "temporary ring directory: %s",
      error ? error->message : "?");
}

/* A clean stop removes each ring, so the directory is empty again by now but for
 * the name lock's file (.shmring-names-<uid>.lock), which stays for the next writer. */
static void
remove_ring_dir (void)
{
  gchar *lock_name = g_strdup_printf (".shmring-names-%u.lock", (guint) geteuid ());
  gchar *lock = g_build_filename (ring_dir, lock_name, NULL);

  g_remove (lock);
  g_free (lock);
  g_free (lock_name);
  fail_unless (g_rmdir (ring_dir) == 0, "%s is not empty: a ring was left behind",
      ring_dir);
  g_clear_pointer (&ring_dir, g_free);
}

static GstHarness *
ring_harness (const gchar * element, const gchar * ring, const gchar * extra)
{
  gchar *launch = g_strdup_printf ("%s ring=%s dir=%s %s", element, ring,
      ring_dir, extra);
  GstHarness *h = gst_harness_new_parse (launch);

  g_free (launch);
  return h;
}

/* A frame whose bytes depend on n, stamped with its pts and a capture time. */
static GstBuffer *
frame (guint n)
{
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, FRAME_SIZE, NULL);
  GstCaps *unix_time = gst_caps_new_empty_simple ("timestamp/x-unix");
  GstMapInfo map;
  guint i;

  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (i = 0; i < FRAME_SIZE; i++)
    map.data[i] = (guint8) ((i * 31 + n * 7) % 251);
  gst_buffer_unmap (buffer, &map);
  GST_BUFFER_PTS (buffer) = n * 33 * GST_MSECOND;
  GST_BUFFER_DURATION (buffer) = 33 * GST_MSECOND;
  gst_buffer_add_reference_timestamp_meta (buffer, unix_time,
      CAPTURED_AT + n * 33 * GST_MSECOND, GST_CLOCK_TIME_NONE);
  gst_caps_unref (unix_time);
  return buffer;
}

static void
assert_is_frame (GstBuffer * buffer, guint n)
{
  GstBuffer *expected = frame (n);
  GstCaps *unix_time = gst_caps_new_empty_simple ("timestamp/x-unix");
  GstReferenceTimestampMeta *meta;

  fail_unless_equals_uint64 (GST_BUFFER_OFFSET (buffer), n);
  fail_unless_equals_uint64 (gst_buffer_get_size (buffer), FRAME_SIZE);
  {
    GstMapInfo map;
    gst_buffer_map (expected, &map, GST_MAP_READ);
    fail_unless (gst_buffer_memcmp (buffer, 0, map.data, map.size) == 0,
        "frame %u: the bytes read differ from the bytes written", n);
    gst_buffer_unmap (expected, &map);
  }
  meta = gst_buffer_get_reference_timestamp_meta (buffer, unix_time);
  fail_unless (meta != NULL, "frame %u carries no capture time", n);
  fail_unless_equals_uint64 (meta->timestamp,
      CAPTURED_AT + n * 33 * GST_MSECOND);
  gst_caps_unref (unix_time);
  gst_buffer_unref (expected);
}

GST_START_TEST (test_every_frame_crosses_with_its_capture_time)
{
  GstHarness *writer, *reader;
  guint n;

  make_ring_dir ();
  writer = ring_harness ("shmringsink", "cam", "slots=16");
  gst_harness_set_src_caps_str (writer, CAPS);
  fail_unless_equals_int (gst_harness_push (writer, frame (1)), GST_FLOW_OK);

  /* A sequential reader starts at the newest frame when it attaches, then gets every
   * frame after it in order. */
  reader = ring_harness ("shmringsrc", "cam", "mode=sequential");
  gst_harness_play (reader);
  {
    GstBuffer *first = gst_harness_pull (reader);

    fail_unless (first != NULL, "frame 1 never arrived");
    assert_is_frame (first, 1);
    gst_buffer_unref (first);
  }
  for (n = 2; n <= 10; n++)
    fail_unless_equals_int (gst_harness_push (writer, frame (n)), GST_FLOW_OK);
  for (n = 2; n <= 10; n++) {
    GstBuffer *buffer = gst_harness_pull (reader);

    fail_unless (buffer != NULL, "frame %u never arrived", n);
    assert_is_frame (buffer, n);
    gst_buffer_unref (buffer);
  }
  /* The reader took its caps from the ring. */
  {
    GstCaps *caps = gst_pad_get_current_caps (reader->sinkpad);
    GstCaps *written = gst_caps_from_string (CAPS);

    fail_unless (caps != NULL && gst_caps_is_equal (caps, written));
    gst_caps_unref (written);
    gst_caps_unref (caps);
  }
  gst_harness_teardown (reader);
  gst_harness_teardown (writer);
  remove_ring_dir ();
}

GST_END_TEST;

GST_START_TEST (test_a_handle_names_exactly_one_frame)
{
  GstHarness *writer, *reader;
  GstElement *sink, *src;
  gchar *handles[6] = { NULL };
  gboolean accepted = FALSE;
  GstBuffer *buffer;
  guint n;

  make_ring_dir ();
  writer = ring_harness ("shmringsink", "h", "slots=8");
  gst_harness_set_src_caps_str (writer, CAPS);
  sink = gst_harness_find_element (writer, "shmringsink");
  for (n = 1; n <= 5; n++) {
    fail_unless_equals_int (gst_harness_push (writer, frame (n)), GST_FLOW_OK);
    g_object_get (sink, "last-handle", &handles[n], NULL);
    fail_unless (handles[n] != NULL, "no last-handle after frame %u", n);
  }

  reader = ring_harness ("shmringsrc", "h", "mode=handle");
  gst_harness_play (reader);
  src = gst_harness_find_element (reader, "shmringsrc");
  g_signal_emit_by_name (src, "request-frame", handles[3], &accepted);
  fail_unless (accepted, "request-frame refused %s", handles[3]);
  buffer = gst_harness_pull (reader);
  assert_is_frame (buffer, 3);
  gst_buffer_unref (buffer);

  g_signal_emit_by_name (src, "request-frame", "cam:not-a-handle", &accepted);
  fail_if (accepted, "a malformed handle was accepted");

  for (n = 1; n <= 5; n++)
    g_free (handles[n]);
  gst_object_unref (src);
  gst_object_unref (sink);
  gst_harness_teardown (reader);
  gst_harness_teardown (writer);
  remove_ring_dir ();
}

GST_END_TEST;

GST_START_TEST (test_a_bad_ring_name_is_an_error_that_names_it)
{
  gchar *launch;
  GstElement *pipeline;
  GstBus *bus;
  GstMessage *message;
  GError *error = NULL;

  make_ring_dir ();
  launch = g_strdup_printf ("videotestsrc num-buffers=1 ! "
      "shmringsink ring=../etc dir=%s", ring_dir);
  pipeline = gst_parse_launch (launch, NULL);
  fail_unless (pipeline != NULL);
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  message = gst_bus_timed_pop_filtered (bus, 10 * GST_SECOND,
      GST_MESSAGE_ERROR | GST_MESSAGE_EOS);
  fail_unless (message != NULL && GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR,
      "no error for ring=../etc");
  gst_message_parse_error (message, &error, NULL);
  fail_unless (strstr (error->message, "../etc") != NULL,
      "the error does not name the ring: %s", error->message);
  g_error_free (error);
  gst_message_unref (message);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (pipeline);
  g_free (launch);
  remove_ring_dir ();
}

GST_END_TEST;

static Suite *
shmring_suite (void)
{
  Suite *s = suite_create ("shmring");
  TCase *tc = tcase_create ("elements");

  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_every_frame_crosses_with_its_capture_time);
  tcase_add_test (tc, test_a_handle_names_exactly_one_frame);
  tcase_add_test (tc, test_a_bad_ring_name_is_an_error_that_names_it);
  return s;
}

GST_CHECK_MAIN (shmring);
