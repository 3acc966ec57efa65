/* A C program that reads a ring with libshmring, without GStreamer: every frame in
 * order, in place (no copy) while the ring lets it, with its geometry and how long ago
 * it was captured. Any ring: one written by shmringsink, by Python, Node, or C.
 *
 * Usage: ring-reader RING [FRAMES] [--check]
 * Waits up to 10 s for the ring to appear, then reads until FRAMES frames (0 or none:
 * until the stream ends). With --check, each frame must be ring-writer's pattern byte
 * for byte, none may be missed, and the last frame is fetched again by its handle and
 * by its capture time. Exits 0 when it read what it was asked, 1 otherwise.
 *
 * Build: cc ring-reader.c $(pkg-config --cflags --libs shmring) -o ring-reader
 */
#include <shmring.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t
now_ns (void)
{
  struct timespec t;
  clock_gettime (CLOCK_REALTIME, &t);
  return (uint64_t) t.tv_sec * 1000000000u + (uint64_t) t.tv_nsec;
}

/* Where frame `seq` differs from ring-writer's pattern, or -1. */
static long
mismatch (const uint8_t *data, size_t size, uint64_t seq)
{
  for (size_t i = 0; i < size; i++)
    if (data[i] != (uint8_t) (seq * 131 + i * 7 + (i >> 11)))
      return (long) i;
  return -1;
}

static int
fail (const char *what)
{
  fprintf (stderr, "ring-reader: %s: %s\n", what, shmring_last_error ());
  return 1;
}

/* Fetches the frame `handle` names and the one captured at `captured_at`: both must be
 * frame `seq`. */
static int
fetch_again (shmring_reader *r, const char *handle, uint64_t captured_at, uint64_t seq)
{
  shmring_frame *f;
  if (shmring_reader_get (r, handle, &f) != SHMRING_OK)
    return fail ("get by handle");
  int ok = shmring_frame_seq (f) == seq
      && mismatch (shmring_frame_data (f), shmring_frame_size (f), seq) < 0;
  shmring_frame_release (f);
  if (shmring_reader_at (r, captured_at, SHMRING_AT_NEAREST, &f) != SHMRING_OK)
    return fail ("get by capture time");
  ok = ok && shmring_frame_seq (f) == seq;
  shmring_frame_release (f);
  if (!ok) {
    fprintf (stderr, "ring-reader: frame %llu fetched again is not the same\n",
        (unsigned long long) seq);
    return 1;
  }
  printf ("fetched %s again by handle and by capture time\n", handle);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *ring = NULL;
  long wanted = 0;
  int check = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--check") == 0)
      check = 1;
    else if (ring == NULL)
      ring = argv[i];
    else
      wanted = strtol (argv[i], NULL, 10);
  }
  if (ring == NULL) {
    fprintf (stderr, "usage: %s RING [FRAMES] [--check]\n", argv[0]);
    return 2;
  }
  shmring_reader *r = NULL;
  for (int tries = 0; r == NULL; tries++) {
    r = shmring_reader_open (ring, NULL);
    if (r == NULL && tries == 200)
      return fail ("open");
    if (r == NULL) {
      struct timespec pause = { 0, 50 * 1000 * 1000 };
      nanosleep (&pause, NULL);
    }
  }
  shmring_ring_info info;
  if (shmring_reader_info (r, &info) != SHMRING_OK)
    return fail ("info");
  printf ("ring %s: %ux%u %s at %.2f fps, %u slots, writer pid %u\n", ring,
      info.width, info.height, info.format, info.fps, info.slots, info.writer_pid);

  long got = 0;
  uint64_t last_seq = 0, last_captured = 0, missed = 0;
  char last_handle[SHMRING_HANDLE_SIZE] = "";
  while (wanted == 0 || got < wanted) {
    shmring_frame *f;
    int rc = shmring_reader_next (r, 5000, &f);
    if (rc == -ENODATA)
      break;                    /* the stream ended and every frame was read */
    if (rc == SHMRING_TIMEOUT) {
      fprintf (stderr, "ring-reader: no frame for 5 s\n");
      return 1;
    }
    if (rc != SHMRING_OK)
      return fail ("next");
    uint64_t seq = shmring_frame_seq (f);
    uint64_t captured = shmring_frame_captured_at (f);
    size_t size = shmring_frame_size (f);
    missed += shmring_frame_missed (f);
    printf ("frame %llu: %ux%u %s, %zu bytes %s, captured %.1f ms ago\n",
        (unsigned long long) seq, shmring_frame_width (f), shmring_frame_height (f),
        shmring_frame_format (f), size,
        shmring_frame_is_in_place (f) ? "in place" : "copied",
        (double) (now_ns () - captured) / 1e6);
    if (seq <= last_seq) {
      fprintf (stderr, "ring-reader: frame %llu after %llu\n", (unsigned long long) seq,
          (unsigned long long) last_seq);
      return 1;
    }
    if (check) {
      long at = mismatch (shmring_frame_data (f), size, seq);
      if (at >= 0) {
        fprintf (stderr, "ring-reader: frame %llu differs at byte %ld\n",
            (unsigned long long) seq, at);
        return 1;
      }
    }
    int hl = shmring_frame_handle (f, last_handle, sizeof last_handle);
    if (hl < 0 || (size_t) hl >= sizeof last_handle)
      return fail ("handle");
    last_seq = seq;
    last_captured = captured;
    shmring_frame_release (f);
    got++;
  }
  printf ("%ld frames read up to frame %llu, %llu missed\n", got,
      (unsigned long long) last_seq, (unsigned long long) missed);
  int rc = 0;
  if (check && missed > 0) {
    fprintf (stderr, "ring-reader: %llu frames missed\n", (unsigned long long) missed);
    rc = 1;
  }
  if (check && got > 0 && rc == 0)
    rc = fetch_again (r, last_handle, last_captured, last_seq);
  if (wanted > 0 && got < wanted)
    rc = 1;
  shmring_reader_close (r);
  return rc;
}
