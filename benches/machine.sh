#!/usr/bin/env bash
# Prints one line describing this machine, for benchmark output: the CPU's model,
# family and model numbers, the CPU count, which of the extensions that decide
# what AES-GCM and SHA-256 cost it has (aes, vaes, pclmulqdq, vpclmulqdq, sha_ni,
# avx2, avx512f), and the kernel. Figures from different CPUs differ a lot (VAES
# makes AES-GCM cheap for every system; SHA-NI and AVX-512 the Merkle leaves).
set -euo pipefail
exec python3 - <<'PY'
import os, platform
info = {}
for line in open("/proc/cpuinfo"):
    k, _, v = line.partition(":")
    info.setdefault(k.strip(), v.strip())
flags = set(info.get("flags", "").split())
wanted = ["aes", "vaes", "pclmulqdq", "vpclmulqdq", "sha_ni", "avx2", "avx512f"]
print(f"{info.get('model name', 'unknown CPU')} (family {info.get('cpu family', '?')}, "
      f"model {info.get('model', '?')}), {os.cpu_count()} CPUs, "
      f"{' '.join(f for f in wanted if f in flags) or 'no AES/SHA extensions'}, "
      f"Linux {platform.release()}")
PY
