/* A C program that writes a ring with libshmring, without GStreamer: frames of a
 * pattern that any reader can check byte for byte, half copied in with
 * shmring_writer_write, half filled in place in a slot of the ring. shmringsrc reads
 * the ring as it would one of shmringsink's (its caps are published).
 *
 * Usage: ring-writer RING [FRAMES [FPS]]   (FRAMES 60, FPS 30 by default)
 * Writes I420 320x240 frames, tells readers the stream ended, waits a second for them
 * to finish, closes the ring. Exits 0, or 1 with libshmring's error.
 *
 * Build: cc ring-writer.c $(pkg-config --cflags --libs shmring) -o ring-writer
 */
#include <shmring.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Frame `seq`'s pattern: every byte depends on the frame and its place in it. */
static void
fill (uint8_t *data, size_t size, uint64_t seq)
{
  for (size_t i = 0; i < size; i++)
    data[i] = (uint8_t) (seq * 131 + i * 7 + (i >> 11));
}

static int
fail (const char *what)
{
  fprintf (stderr, "ring-writer: %s: %s\n", what, shmring_last_error ());
  return 1;
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: %s RING [FRAMES [FPS]]\n", argv[0]);
    return 2;
  }
  long frames = argc > 2 ? strtol (argv[2], NULL, 10) : 60;
  double fps = argc > 3 ? strtod (argv[3], NULL) : 30.0;
  shmring_writer *w = shmring_writer_open (argv[1], NULL, "I420", 320, 240, fps, 0);
  if (w == NULL)
    return fail ("open");
  size_t size = shmring_writer_frame_size (w);
  uint8_t *copy = malloc (size);
  if (copy == NULL)
    return 1;
  struct timespec period = { 0, (long) (1e9 / fps) };
  for (long seq = 1; seq <= frames; seq++) {
    char handle[SHMRING_HANDLE_SIZE];
    int rc;
    if (seq % 2 == 0) {
      /* Copied in. */
      fill (copy, size, (uint64_t) seq);
      rc = shmring_writer_write (w, copy, size, SHMRING_NO_TIME, SHMRING_NO_TIME,
          handle, sizeof handle);
    } else {
      /* Filled in place: the slot becomes the frame, with no copy. */
      shmring_write_frame *f = shmring_writer_begin (w);
      if (f == NULL)
        return fail ("begin");
      fill (shmring_write_frame_data (f), shmring_write_frame_size (f), (uint64_t) seq);
      rc = shmring_write_frame_commit (f, SHMRING_NO_TIME, SHMRING_NO_TIME, handle,
          sizeof handle);
    }
    if (rc != SHMRING_OK)
      return fail ("write");
    if (seq == frames)
      printf ("last frame %s\n", handle);
    nanosleep (&period, NULL);
  }
  if (shmring_writer_eos (w) != SHMRING_OK)
    return fail ("eos");
  struct timespec linger = { 1, 0 };
  nanosleep (&linger, NULL);
  shmring_writer_close (w);
  free (copy);
  return 0;
}
