// Compiled (not run) by `npm test`: the types of index.d.ts fit the documented use.
import { Reader, Writer, Frame, ShmringError, ShmringErrorCode } from '..'

async function use(dir: string): Promise<void> {
  const w = new Writer('types', { width: 64, height: 48, format: 'BGRx', fps: 30, dir })
  const handle: string = w.write(Buffer.alloc(w.frameSize), { pts: 1n, capturedAt: 2 })
  const slot = w.frame({ pts: 3n })
  slot.pixels.fill(0)
  const committed: string = slot.commit()
  const r = new Reader('types', { dir, zeroCopy: true })
  const opened: Reader = await Reader.open('types', { dir })
  opened.close()
  const f: Frame | null = r.latest({ timeout: 1000 })
  if (f) {
    const px: Buffer = f.pixels
    const at: bigint = f.capturedAt
    const seq: number = f.seq
    const pts: bigint | null = f.pts
    console.log(px[0], at, seq, pts, f.width, f.height, f.format, f.handle, f.planes[0].stride)
    f.release()
  }
  const g: Frame | null = await r.latestAsync({ timeout: 1000 })
  g?.release()
  const n: Frame | null = await r.nextAsync()
  n?.release()
  const byHandle: Frame = r.get(handle)
  const byTime: Frame = r.at(byHandle.capturedAt, 'at-or-before')
  console.log(r.info().writerPid, committed, byTime.seq)
  for await (const frame of r.frames({ mode: 'next' })) {
    frame.release()
    break
  }
  try {
    r.get('x')
  } catch (e) {
    if (e instanceof ShmringError) {
      const code: ShmringErrorCode = e.code
      console.log(code, e.ring)
    }
  }
  r.close()
  w.close()
}

void use
