"""Ingestion speed: generate N 12-megapixel JPEGs with EXIF, index them, then index them again unchanged.

Prints photos/second for the first run and the no-change re-run (median of --runs re-runs), the CPU time a
photo took in the first run (steadier than photos/s on a machine shared with other work), split between the
main process (scan, catalog writes, place names) and the decode workers, peak memory (this process plus its
decode workers, sampled every 0.1 s), and where a worker's time goes: each stage of reading a photo, timed in
this process over --stages photos.
Usage: python bench/ingest.py [--n 2000] [--workers 0] [--keep DIR] [--stages 50]
"""

from __future__ import annotations

import argparse
import contextlib
import pickle
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import piexif
import psutil
from PIL import Image

from smartalbum.catalog import Catalog
from smartalbum.config import Settings, load_settings
from smartalbum.ingest import decode
from smartalbum.pipeline.ingest import ingest_library


def _make(args: tuple[Path, int, int, int]) -> int:
    path, i, width, height = args
    rng = np.random.default_rng(i)
    # smooth gradients plus noise: compresses like a real photo (a few MB), unlike pure noise or flat color
    y, x = np.mgrid[0:height:8, 0:width:8]
    base = np.stack([(x * (i % 7 + 1)) % 256, (y * (i % 5 + 1)) % 256, (x + y + i) % 256], axis=-1)
    small = (base + rng.integers(0, 24, base.shape)).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    exif = piexif.dump(
        {
            "0th": {piexif.ImageIFD.Make: b"BenchCam", piexif.ImageIFD.Model: b"BC-12"},
            "Exif": {
                piexif.ExifIFD.DateTimeOriginal: f"2024:07:{1 + i % 28:02d} 12:{i % 60:02d}:00".encode(),
                piexif.ExifIFD.OffsetTimeOriginal: b"+08:00",
            },
            "GPS": {
                piexif.GPSIFD.GPSLatitudeRef: b"N",
                piexif.GPSIFD.GPSLatitude: ((36, 1), (i % 60, 1), (0, 1)),
                piexif.GPSIFD.GPSLongitudeRef: b"E",
                piexif.GPSIFD.GPSLongitude: ((120, 1), (i % 60, 1), (0, 1)),
            },
        }
    )
    img.save(path, "JPEG", quality=88, exif=exif)
    return path.stat().st_size


def generate(folder: Path, n: int, width: int, height: int, workers: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(folder / f"d{i % 20:02d}" / f"IMG_{i:05d}.jpg", i, width, height) for i in range(n)]
    for path, *_ in todo:
        path.parent.mkdir(exist_ok=True)
    todo = [t for t in todo if not t[0].exists()]
    with ProcessPoolExecutor(workers or None) as pool:
        sizes = list(pool.map(_make, todo, chunksize=8))
    return sum(sizes)


class MemorySampler(threading.Thread):
    """Peak resident memory of this process and all its children, sampled while indexing runs, and the CPU
    time they used (a worker's last 0.1 s before it exits is missed), less this sampler's own (~2 ms a sample,
    which on a slow run was a few ms a photo)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self.cpu_by_pid: dict[int, float] = {}
        self.own_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.wait(0.1):
            t0 = time.thread_time()
            self.sample(me)
            self.own_s += time.thread_time() - t0

    def sample(self, me: psutil.Process) -> None:
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
                times = proc.cpu_times()
                self.cpu_by_pid[proc.pid] = times.user + times.system
        self.peak_mb = max(self.peak_mb, total / 2**20)

    def cpu_s(self) -> float:
        self.sample(psutil.Process())
        return sum(self.cpu_by_pid.values()) - self.own_s

    def main_cpu_s(self) -> float:
        """This process's share of cpu_s() (as of its last sample)."""
        return self.cpu_by_pid.get(psutil.Process().pid, 0.0) - self.own_s


def stage_breakdown(photos: list[Path], settings: Settings, thumbs: Path) -> dict[str, float]:
    """CPU ms a photo of each stage of ingest_file, run here (not in a worker) on `photos`."""
    decode.register_decoders()
    tasks = []
    for path in photos:
        st = path.stat()
        tasks.append(
            decode.IngestTask(
                str(path), 1, st.st_size, st.st_mtime_ns, str(thumbs), settings.thumb_sizes,
                settings.max_image_pixels,
            )
        )  # fmt: skip
    decode.ingest_file(tasks[0])  # imports and first-call costs out of the way
    shutil.rmtree(thumbs, ignore_errors=True)
    stages: dict[str, float] = {}
    decode.STAGE_CPU = stages
    ipc = 0.0
    t0 = time.process_time()
    try:
        for task in tasks:
            outcome = decode.ingest_file(task)
            assert outcome.ok, outcome
            t = time.process_time()
            pickle.loads(pickle.dumps(outcome))  # what the pool does to send it to the main process
            ipc += time.process_time() - t
    finally:
        decode.STAGE_CPU = None
    total = time.process_time() - t0 - ipc
    stages["other (in ingest_file)"] = total - sum(stages.values())
    stages["IPC: pickle + unpickle the outcome"] = ipc
    stages["total"] = total + ipc
    return {k: v / len(tasks) * 1000 for k, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    ap.add_argument("--runs", type=int, default=3, help="no-change re-runs to take the median of")
    ap.add_argument("--keep", type=Path, help="keep the photos in this folder (reused by later runs)")
    ap.add_argument("--stages", type=int, default=50, help="photos to time stage by stage (0: none)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sa-bench-"))
    photos = args.keep or work / "photos"
    try:
        t0 = time.perf_counter()
        generate(photos, args.n, args.width, args.height, args.workers)
        total_bytes = sum(p.stat().st_size for p in photos.rglob("*.jpg"))
        mp = args.width * args.height / 1e6
        made_s = time.perf_counter() - t0
        print(f"corpus: {args.n} JPEGs of {mp:.1f} MP, {total_bytes / 1e9:.2f} GB, made in {made_s:.0f}s")
        settings = load_settings(work / "library", workers=args.workers)
        with Catalog(settings.catalog_path) as cat:
            cat.add_root(photos.resolve())
            sampler = MemorySampler()
            cpu0, main0 = sampler.cpu_s(), sampler.main_cpu_s()
            sampler.start()
            t0 = time.perf_counter()
            first = ingest_library(cat, settings)
            first_s = time.perf_counter() - t0
            first_cpu_s = sampler.cpu_s() - cpu0
            main_cpu_s = sampler.main_cpu_s() - main0
            assert first.ok == args.n, first
            reruns = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                again = ingest_library(cat, settings)
                reruns.append(time.perf_counter() - t0)
                assert again.unchanged == args.n and again.ok == 0, again
            sampler.stop.set()
        rerun_s = statistics.median(reruns)
        workers = settings.workers or "auto"
        print(f"first run : {args.n / first_s:8.1f} photos/s ({first_s:.1f}s, {workers} workers)")
        cpu_ms = first_cpu_s / args.n * 1000
        print(
            f"cpu       : {cpu_ms:8.1f} ms a photo in the first run (main process + decode workers; "
            f"{2000 / cpu_ms:.1f} photos/s if 2 cores did nothing else)"
        )
        print(
            f"cpu split : {main_cpu_s / args.n * 1000:8.1f} ms main process (scan, catalog, places), "
            f"{(first_cpu_s - main_cpu_s) / args.n * 1000:.1f} ms decode workers (start-up included)"
        )
        print(
            f"re-run    : {args.n / rerun_s:8.1f} photos/s ({rerun_s:.2f}s, median of {args.runs}, unchanged)"
        )
        print(f"ratio     : the re-run is {first_s / rerun_s:.0f}x faster than the first run")
        print(f"peak RSS  : {sampler.peak_mb:.0f} MB (main process + decode workers)")
        if args.stages > 0:
            sample = sorted(photos.rglob("*.jpg"))[: args.stages]
            stages = stage_breakdown(sample, settings, work / "stage-thumbs")
            print(f"stages    : CPU ms a photo, one process, {len(sample)} photos")
            for name, ms in stages.items():
                print(f"  {name:38s} {ms:7.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
