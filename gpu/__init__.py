"""The GPU command (`python3 -m gpu OUTDIR`, `./run.sh gpu OUTDIR`): conformance on cuda and cuda-tf32, the GPU
benchmarks and the merged page, in one time-boxed run on a machine with one NVIDIA GPU; `--dry` runs the same
steps on the CPU at toy sizes. See gpu/command.py (its parts: context.py, conformance_part.py, benchmark_part.py);
gpu/plugin.py is its pytest plugin."""
