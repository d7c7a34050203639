// Checksum benchmarks: InternetChecksum.sum over 64 B, 1500 B and 64 KiB buffers.
import Benchmark
import Proto

/// 64 KiB of patterned bytes, 64-byte aligned; each size sums a prefix of it.
nonisolated(unsafe) private let checksumInput: UnsafeRawBufferPointer = {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 64)
    for i in 0..<buffer.count { buffer[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
    return UnsafeRawBufferPointer(buffer)
}()

func registerChecksumBenchmarks() {
    for size in [64, 1500, 65536] {
        // One benchmark iteration sums the buffer 1000 times (scaling factor kilo), so the scaled
        // wall clock is the time of one sum and the scaled throughput is sums per second.
        let config = Benchmark.Configuration(
            metrics: [.wallClock, .throughput, megabytesPerSecondMetric],
            timeUnits: .nanoseconds,
            units: [megabytesPerSecondMetric: .count],
            scalingFactor: .kilo,
            maxDuration: .milliseconds(700),
            maxIterations: 5000
        )
        Benchmark("Checksum \(size) B", configuration: config) { benchmark in
            let bytes = UnsafeRawBufferPointer(rebasing: checksumInput[0..<size])
            var sum: UInt16 = 0
            let start = monotonicNanoseconds()
            for _ in benchmark.scaledIterations {
                // Chained through `initial`, so no call can be hoisted or dropped.
                sum = InternetChecksum.sum(bytes, initial: sum)
            }
            let elapsed = monotonicNanoseconds() - start
            blackHole(sum)
            benchmark.measurement(megabytesPerSecondMetric,
                                  megabytesPerSecond(bytes: size * benchmark.scaledIterations.count, nanoseconds: elapsed))
        }
    }
}
