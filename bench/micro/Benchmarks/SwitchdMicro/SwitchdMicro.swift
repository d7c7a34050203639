// Entry point of the microbenchmarks: registers every suite with the harness.
//
// Wall-clock figures are reported, never asserted (STYLE.md, Benchmarks). Each benchmark also
// records a custom metric in the unit the issue asks for (MB/s, so GB/s reads off with three
// decimals, or ns per frame), measured inside the benchmark around the timed loop only.
import Benchmark
import Glibc

let benchmarks: @Sendable () -> Void = {
    registerChecksumBenchmarks()
    registerSegmentationBenchmarks()
    registerForwardingBenchmarks()
}

/// Monotonic nanoseconds, for the custom throughput metrics.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// MB/s from bytes over nanoseconds (bytes per ns is GB/s; times 1000 keeps three decimals in an Int).
@inline(__always)
func megabytesPerSecond(bytes: Int, nanoseconds: UInt64) -> Int {
    nanoseconds == 0 ? 0 : Int(Double(bytes) * 1000 / Double(nanoseconds))
}

/// Custom metric: throughput in MB/s (divide by 1000 for GB/s).
let megabytesPerSecondMetric = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)
