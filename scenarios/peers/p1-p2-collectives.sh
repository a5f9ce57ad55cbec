#!/usr/bin/env sh
# PEERS.md P1 (flat ring) and P2 (8 GPUs per node + IB): one 1 GiB all-reduce per GPU count,
# through trainsim's flow network, with the hop model (the peers' textbook links and hop latencies). Run from the repository root after `cargo build --release`.
# Tables and bus-bandwidth charts go to plots/peers/p1-N[-chunks4]/ and plots/peers/p2-N/.
set -e
T=${TRAINSIM:-./target/release/trainsim}
# P1: 1 GPU per "node" so every hop is a ring link; 50 GiB/s = 429.4967296 Gbit/s; 500 ns/hop;
# efficiency 1 (the peers charge the raw link rate).
for n in 8 64 512 1024 4096; do
  for chunks in 1 4; do
    suffix=""; [ "$chunks" = 4 ] && suffix="-chunks4"
    "$T" collective --model hop --algo ring --op all_reduce --gpus "$n" --gpus-per-node 1 --nics-per-node 1 \
      --nic-gbit 429.4967296 --scale-out-latency-us 0.5 --scale-out-efficiency 1 \
      --min-bytes 1G --max-bytes 1G --chunks "$chunks" --out "plots/peers/p1-$n$suffix"
  done
done
# P2 (also with --algo hierarchical, ASTRA-sim's ring-ring: plots/peers/p2-N-hier/):
# NVSwitch 300 GiB/s (322.1225472 GB/s) at 500 ns; IB 25 GiB/s per GPU
# (214.7483648 Gbit/s, one NIC per GPU) at 2,000 ns; efficiency 1.
for n in 64 512 1024 4096; do
  "$T" collective --model hop --algo ring --op all_reduce --gpus "$n" --gpus-per-node 8 --nics-per-node 8 \
    --nic-gbit 214.7483648 --scale-up-gbyte 322.1225472 --scale-up-latency-us 0.5 \
    --scale-out-latency-us 2 --scale-up-efficiency 1 --scale-out-efficiency 1 \
    --min-bytes 1G --max-bytes 1G --out "plots/peers/p2-$n"
  "$T" collective --model hop --algo hierarchical --op all_reduce --gpus "$n" --gpus-per-node 8 --nics-per-node 8 \
    --nic-gbit 214.7483648 --scale-up-gbyte 322.1225472 --scale-up-latency-us 0.5 \
    --scale-out-latency-us 2 --scale-up-efficiency 1 --scale-out-efficiency 1 \
    --min-bytes 1G --max-bytes 1G --out "plots/peers/p2-$n-hier"
done
