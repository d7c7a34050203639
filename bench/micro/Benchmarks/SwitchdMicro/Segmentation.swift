// Segmentation benchmark: the whole software cut of a 64 KiB TCPv4 GSO super-frame into
// 1448-byte segments (plan plus every segment, into preallocated buffers), as a port without TSO
// receives it from a virtio-net peer that sent one super-frame.
import Benchmark
import Proto

/// Payload bytes of the super-frame: with a 20-byte TCP header (no options) the IP packet is
/// 65523 bytes, under the 65535 limit of the IPv4 total length (RFC 791 §3.1).
let superFramePayload = 65483
let superFrameHeaderLength = 14 + 20 + 20

/// The GSO header a Linux guest's virtio-net driver would send with the frame.
let superFrameHeader = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                       headerLength: UInt16(superFrameHeaderLength), gsoSize: 1448,
                                       checksumStart: 34, checksumOffset: 16)

/// Ethernet + IPv4 + TCP + payload, with the IPv4 header checksum complete and the TCP checksum
/// field holding the pseudo-header sum, as NEEDS_CSUM frames carry it (virtio 1.2 §5.1.6.2).
nonisolated(unsafe) let superFrame: UnsafeRawBufferPointer = {
    let ipLength = 20 + 20 + superFramePayload
    let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: 14 + ipLength, alignment: 64)
    frame.initializeMemory(as: UInt8.self, repeating: 0)
    let p = frame.baseAddress!
    func put16(_ offset: Int, _ value: UInt16) { p.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt16.self) }
    func put32(_ offset: Int, _ value: UInt32) { p.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self) }
    MACAddress(rawValue: 0x0200_0000_00bb).store(to: p)
    MACAddress(rawValue: 0x0200_0000_00aa).store(to: p + 6)
    put16(12, 0x0800)
    // IPv4 (RFC 791 §3.1): version 4, IHL 5, DF, TTL 64, TCP.
    let source = IPv4Address(10, 0, 0, 1), destination = IPv4Address(10, 0, 0, 2)
    frame[14] = 0x45
    put16(16, UInt16(ipLength))
    put16(18, 0x1234)
    put16(20, 0x4000)
    frame[22] = 64
    frame[23] = IPProtocol.tcp.rawValue
    put32(26, source.rawValue)
    put32(30, destination.rawValue)
    put16(24, InternetChecksum.checksum(UnsafeRawBufferPointer(rebasing: frame[14..<34])))
    // TCP (RFC 9293 §3.1): data offset 5, ACK|PSH.
    put16(34, 40000); put16(36, 5201)
    put32(38, 1_000_000); put32(42, 1)
    frame[46] = 5 << 4
    frame[47] = 0x18
    put16(48, 0xffff)
    put16(50, InternetChecksum.pseudoHeaderSum(source: source, destination: destination,
                                               protocol: .tcp, length: 20 + superFramePayload))
    for i in superFrameHeaderLength..<frame.count { frame[i] = UInt8(truncatingIfNeeded: i &* 7) }
    return UnsafeRawBufferPointer(frame)
}()

/// Room for every segment of the super-frame, 2 KiB each, allocated once.
let segmentSlot = 2048
nonisolated(unsafe) let segmentBuffers = UnsafeMutableRawPointer.allocate(byteCount: 64 * segmentSlot, alignment: 64)

func registerSegmentationBenchmarks() {
    let superFrameNanoseconds = BenchmarkMetric.custom("ns/super-frame", polarity: .prefersSmaller, useScalingFactor: false)
    let config = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal, superFrameNanoseconds, megabytesPerSecondMetric],
        timeUnits: .nanoseconds,
        units: [megabytesPerSecondMetric: .count, superFrameNanoseconds: .count],
        scalingFactor: .one,
        maxDuration: .milliseconds(1500),
        maxIterations: 20000,
        setup: { try checkSegmentation() }
    )
    Benchmark("Segmentation 64 KiB TCPv4 to 1448 B", configuration: config) { benchmark in
        let start = monotonicNanoseconds()
        var written = 0
        for _ in benchmark.scaledIterations {
            switch Segmentation.plan(frame: superFrame, header: superFrameHeader, mtu: 1500) {
            case .success(let plan):
                precondition(plan.count <= 64)
                for i in 0..<plan.count {
                    written &+= Segmentation.emitSegment(i, of: superFrame, plan: plan,
                                                         into: segmentBuffers + i * segmentSlot)
                }
            case .failure(let error):
                benchmark.error("plan failed: \(error)")
                return
            }
        }
        let elapsed = monotonicNanoseconds() - start
        blackHole(written)
        let frames = benchmark.scaledIterations.count
        benchmark.measurement(superFrameNanoseconds, Int(elapsed) / frames)
        benchmark.measurement(megabytesPerSecondMetric,
                              megabytesPerSecond(bytes: superFramePayload * frames, nanoseconds: elapsed))
    }
}

/// Why the benchmarked cut is not the expected one.
struct SegmentationCheckFailure: Error, CustomStringConvertible {
    var description: String
}

/// Checks once that the benchmarked cut is a real one: 46 segments, each with a valid IPv4 header
/// checksum and TCP checksum, whose payloads reassemble to the super-frame's.
func checkSegmentation() throws {
    guard case .success(let plan) = Segmentation.plan(frame: superFrame, header: superFrameHeader, mtu: 1500) else {
        throw SegmentationCheckFailure(description: "plan rejected the super-frame")
    }
    let expected = (superFramePayload + 1447) / 1448
    guard plan.count == expected, plan.headerLength == superFrameHeaderLength else {
        throw SegmentationCheckFailure(description: "plan: \(plan), expected \(expected) segments")
    }
    var payloadOffset = superFrameHeaderLength
    for i in 0..<plan.count {
        let p = segmentBuffers + i * segmentSlot
        let length = Segmentation.emitSegment(i, of: superFrame, plan: plan, into: p)
        let segment = UnsafeRawBufferPointer(start: p, count: length)
        let ipHeader = UnsafeRawBufferPointer(rebasing: segment[14..<34])
        let tcp = UnsafeRawBufferPointer(rebasing: segment[34...])
        let pseudo = InternetChecksum.pseudoHeaderSum(source: IPv4Address(loading: p + 26),
                                                      destination: IPv4Address(loading: p + 30),
                                                      protocol: .tcp, length: tcp.count)
        let payload = UnsafeRawBufferPointer(rebasing: segment[superFrameHeaderLength...])
        let original = UnsafeRawBufferPointer(rebasing: superFrame[payloadOffset..<(payloadOffset + payload.count)])
        guard InternetChecksum.checksum(ipHeader) == 0,
              InternetChecksum.checksum(tcp, initial: pseudo) == 0,
              payload.elementsEqual(original) else {
            throw SegmentationCheckFailure(description: "segment \(i) (\(length) bytes) has a bad checksum or payload")
        }
        payloadOffset += payload.count
    }
    guard payloadOffset == superFrame.count else {
        throw SegmentationCheckFailure(description: "segments carry \(payloadOffset - superFrameHeaderLength) payload bytes")
    }
}
