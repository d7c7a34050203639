// Forwarding benchmark: ns per frame between two unix datagram peers through a running Dataplane.
//
// The fixture (Sources/ForwardingFixture) does what Tests/SwitchTests/ZeroAllocationTests.swift
// does through the public Switch API: learn both MACs, then a sends to b with at most 64 frames in
// flight. The figure includes both peers' syscalls (sendto and recv on the benchmark thread).
import Benchmark
import ForwardingFixture

func registerForwardingBenchmarks() {
    let frameNanoseconds = BenchmarkMetric.custom("ns/frame", polarity: .prefersSmaller, useScalingFactor: false)
    for length in [60, 1514] {
        // One benchmark iteration forwards 1000 frames (scaling factor kilo): scaled wall clock
        // is ns per frame, scaled malloc counts are mallocs per frame over the whole process.
        let config = Benchmark.Configuration(
            metrics: [.wallClock, .throughput, .mallocCountTotal, .syscalls, frameNanoseconds],
            timeUnits: .nanoseconds,
            units: [frameNanoseconds: .count, .mallocCountTotal: .count],
            scalingFactor: .kilo,
            maxDuration: .seconds(2),
            maxIterations: 1000,
            setup: { try setUpForwarding(frameLength: length) },
            teardown: { tearDownForwarding() }
        )
        Benchmark("Forward dgram to dgram \(length) B", configuration: config) { benchmark in
            let start = monotonicNanoseconds()
            guard forwardFrames(benchmark.scaledIterations.count) else {
                return benchmark.error("a frame was not forwarded within 2 s")
            }
            let elapsed = monotonicNanoseconds() - start
            benchmark.measurement(frameNanoseconds, Int(elapsed) / benchmark.scaledIterations.count)
        }
    }
}
