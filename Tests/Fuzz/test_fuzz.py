"""A short seeded fuzz run in the test suite (the million-input run is `scripts/fuzz`)."""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_seeded_fuzz_run_finds_no_crash_hang_or_memory_growth():
    for seed in (7, 8):
        result = subprocess.run([sys.executable, str(HERE / "fuzz_protocol.py"), "--inputs", "20000", "--seed",
                                 str(seed), "--probe-every", "2000"], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK" in result.stdout
