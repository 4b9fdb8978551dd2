"""Separation inference cost on CPU: real-time factor of ResUNet30 and peak memory of `lasr separate` on long files.

1. Real-time factor (processing time / audio duration) of one forward pass of the reference-size ResUNet30
   (random weights, fp32, batch 1, query encoding excluded) on a 10 s clip at 16 kHz (1024 / 160, DCASE) and at
   32 kHz (2048 / 320, AudioSep).
2. Peak resident memory of the streaming file path (`lasr.models.separation.streaming.separate_file`: windowed read, overlap-add,
   incremental write) for a short and a long file, each in a fresh process. Bounded memory means the two peaks
   are about equal: the window, not the file, sets it. The long-file run uses a narrower separator by default
   (``--memory-channels``) so it finishes in minutes on a laptop CPU; the memory argument does not depend on
   width.

    .venv/bin/python benchmarks/separate.py [--threads 2] [--repeats 2] [--minutes 1 10]
                                            [--memory-channels 8 16 32 64 64 64] [--window 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from lasr.models.separation.resunet import ResUNet30
from lasr.models.separation.streaming import separate_file

SETTINGS = {"16 kHz (1024/160)": (16000, 1024, 160), "32 kHz (2048/320)": (32000, 2048, 320)}
CLIP_SECONDS = 10.0


def real_time_factor(sample_rate: int, n_fft: int, hop: int, repeats: int) -> float:
    model = ResUNet30(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop).eval()
    wave, condition = 0.1 * torch.randn(1, int(CLIP_SECONDS * sample_rate)), torch.randn(1, 512)
    with torch.no_grad():
        model(wave[:, : sample_rate], condition)  # warm-up (allocator, oneDNN primitives)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(wave, condition)
            times.append(time.perf_counter() - start)
    return min(times) / CLIP_SECONDS


def _status_kib(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0), so the next peak excludes imports and set-up."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_mib() -> float:
    return (_status_kib("VmRSS") or 0.0) / 1024


def peak_rss_mib() -> float:
    peak = _status_kib("VmHWM")  # peak since start or since reset_peak_rss()
    return (peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def child_memory(minutes: float, channels: list[int], window: float) -> dict[str, float]:
    """Run in a fresh process: write a synthetic file of ``minutes`` at 16 kHz, separate it, report the peak RSS."""
    model = ResUNet30(channels=channels).eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.wav"
        rng = np.random.default_rng(0)
        with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as sink:
            for _ in range(int(minutes * 60)):  # written a second at a time: the input is never all in memory
                sink.write((0.1 * rng.standard_normal(16000)).astype(np.float32))
        before = rss_mib()
        reset = reset_peak_rss()
        start = time.perf_counter()
        separate_file(model, torch.randn(512), path, Path(folder) / "out.wav", window_seconds=window)
        elapsed = time.perf_counter() - start
        peak = peak_rss_mib()
    return {"minutes": minutes, "peak_rss_mib": peak, "rss_before_mib": before, "seconds": elapsed,
            "peak_reset": reset}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--memory-channels", type=int, nargs="+", default=[8, 16, 32, 64, 64, 64])
    parser.add_argument("--window", type=float, default=10.0, help="separation window in s")
    parser.add_argument("--skip-rtf", action="store_true")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child is not None:
        print(json.dumps(child_memory(args.child, args.memory_channels, args.window)))
        return
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), fp32, batch 1, random weights")
    if not args.skip_rtf:
        for name, (rate, n_fft, hop) in SETTINGS.items():
            rtf = real_time_factor(rate, n_fft, hop, args.repeats)
            print(f"ResUNet30 {name}: {rtf * CLIP_SECONDS:6.2f} s for a 10 s clip, real-time factor {rtf:.3f}")
    for minutes in args.minutes:
        command = [sys.executable, __file__, "--child", str(minutes), "--threads", str(args.threads),
                   "--window", str(args.window), "--memory-channels", *map(str, args.memory_channels)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"separate_file, {minutes:g} min at 16 kHz (channels {args.memory_channels}, window {args.window:g} s): "
              f"peak RSS while separating {result['peak_rss_mib']:.0f} MiB "
              f"(RSS before {result['rss_before_mib']:.0f} MiB"
              f"{'' if result['peak_reset'] else '; peak not resettable here: includes imports'}), "
              f"{result['seconds']:.1f} s, RTF {result['seconds'] / (60 * minutes):.3f}")


if __name__ == "__main__":
    main()
