/* libshmring's C API tested from C, as a C program links it (built by meson, and run
 * under AddressSanitizer and LeakSanitizer with -Db_sanitize=address): a frame written
 * and read back, then every careless call a C program can make, each answered with an
 * error code and a message, never a crash, a bad access or a leak.
 */
#include <shmring.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define EXPECT(cond) do { \
    if (!(cond)) { \
      fprintf (stderr, "%s:%d: expected %s (last error: %s)\n", __FILE__, __LINE__, \
          #cond, shmring_last_error ()); \
      failures++; \
    } \
  } while (0)

int
main (void)
{
  char dir[] = "/tmp/shmring-capi-XXXXXX";
  if (mkdtemp (dir) == NULL)
    return 1;

  /* A round trip. */
  shmring_writer *w = shmring_writer_open ("c-test", dir, "GRAY8", 64, 32, 30.0, 4);
  EXPECT (w != NULL);
  size_t size = shmring_writer_frame_size (w);
  EXPECT (size == 64 * 32);
  shmring_reader *r = shmring_reader_open ("c-test", dir);
  EXPECT (r != NULL);
  uint8_t *bytes = malloc (size);
  memset (bytes, 0xab, size);
  char handle[SHMRING_HANDLE_SIZE];
  EXPECT (shmring_writer_write (w, bytes, size, 42, SHMRING_NO_TIME, handle,
          sizeof handle) == 0);
  EXPECT (strncmp (handle, "c-test:", 7) == 0);
  shmring_frame *f = NULL;
  EXPECT (shmring_reader_latest (r, 1000, &f) == SHMRING_OK);
  EXPECT (shmring_frame_size (f) == size);
  EXPECT (memcmp (shmring_frame_data (f), bytes, size) == 0);
  EXPECT (shmring_frame_pts (f) == 42);
  EXPECT (strcmp (shmring_frame_format (f), "GRAY8") == 0);
  EXPECT (shmring_frame_plane_stride (f, 0) == 64);
  shmring_frame *again = NULL;
  EXPECT (shmring_reader_get (r, handle, &again) == SHMRING_OK);
  EXPECT (shmring_frame_seq (again) == shmring_frame_seq (f));
  shmring_frame_release (again);

  /* NULL objects and arguments. */
  shmring_frame *out = (shmring_frame *) 1;
  EXPECT (shmring_reader_latest (NULL, 0, &out) == -EBADF && out == NULL);
  EXPECT (strstr (shmring_last_error (), "not an open reader") != NULL);
  EXPECT (shmring_reader_next (r, 0, NULL) == -EINVAL);
  EXPECT (shmring_reader_get (r, NULL, &out) == -EINVAL);
  EXPECT (shmring_reader_get (r, "not a handle", &out) == -EINVAL);
  EXPECT (shmring_reader_info (r, NULL) == -EINVAL);
  EXPECT (shmring_reader_open (NULL, NULL) == NULL);
  EXPECT (shmring_reader_open ("../escape", dir) == NULL);
  EXPECT (shmring_reader_open ("missing", dir) == NULL);
  EXPECT (shmring_writer_open ("c-test", dir, "GRAY8", 64, 32, 30.0, 4) == NULL);
  EXPECT (shmring_writer_open ("x", dir, NULL, 64, 32, 30.0, 4) == NULL);
  EXPECT (shmring_writer_open ("x", dir, "GRAY8", -1, 32, 30.0, 4) == NULL);
  EXPECT (shmring_writer_write (w, NULL, size, 0, 0, NULL, 0) == -EINVAL);
  EXPECT (shmring_writer_write (w, bytes, size - 1, 0, 0, NULL, 0) == -EINVAL);
  EXPECT (shmring_frame_data (NULL) == NULL);
  EXPECT (shmring_frame_size (NULL) == 0);
  EXPECT (shmring_frame_handle (NULL, handle, sizeof handle) == -EBADF);
  EXPECT (shmring_write_frame_data (NULL) == NULL);
  shmring_frame_release (NULL);
  shmring_reader_close (NULL);
  shmring_writer_close (NULL);
  shmring_write_frame_abort (NULL);

  /* Made-up objects, and objects of another kind. */
  EXPECT (shmring_reader_latest ((shmring_reader *) f, 0, &out) == -EBADF);
  EXPECT (shmring_reader_latest ((shmring_reader *) w, 0, &out) == -EBADF);
  EXPECT (shmring_frame_size ((shmring_frame *) r) == 0);
  EXPECT (shmring_frame_size ((shmring_frame *) (uintptr_t) 0xdeadbeef) == 0);
  EXPECT (shmring_writer_eos ((shmring_writer *) r) == -EBADF);
  shmring_reader_close ((shmring_reader *) f);  /* not a reader: nothing happens */
  shmring_writer_close ((shmring_writer *) r);
  EXPECT (shmring_frame_size (f) == size);
  EXPECT (shmring_reader_latest (r, 0, &out) == SHMRING_TIMEOUT);

  /* Released and closed objects, twice. */
  shmring_frame_release (f);
  shmring_frame_release (f);
  EXPECT (shmring_frame_data (f) == NULL);
  EXPECT (shmring_frame_seq (f) == 0);
  shmring_write_frame *wf = shmring_writer_begin (w);
  EXPECT (wf != NULL);
  shmring_write_frame_abort (wf);
  EXPECT (shmring_write_frame_commit (wf, 0, 0, NULL, 0) == -EBADF);
  shmring_reader_close (r);
  shmring_reader_close (r);
  EXPECT (shmring_reader_latest (r, 0, &out) == -EBADF);
  EXPECT (shmring_reader_caps (r, handle, sizeof handle) == -EBADF);
  shmring_writer_close (w);
  shmring_writer_close (w);
  EXPECT (shmring_writer_write (w, bytes, size, 0, 0, NULL, 0) == -EBADF);
  EXPECT (shmring_writer_begin (w) == NULL);

  /* The ring is gone with its writer. */
  EXPECT (shmring_reader_open ("c-test", dir) == NULL);
  EXPECT (strstr (shmring_last_error (), "no ring") != NULL);
  free (bytes);
  rmdir (dir);
  if (failures > 0) {
    fprintf (stderr, "%d failures\n", failures);
    return 1;
  }
  printf ("libshmring C API: all checks passed\n");
  return 0;
}
