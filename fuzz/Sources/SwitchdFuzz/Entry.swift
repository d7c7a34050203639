// Entry: libFuzzer's LLVMFuzzerTestOneInput, dispatching to the target that FUZZ_TARGET names.
import Glibc
import Switch

/// Every fuzz target by name; `run.sh` and `ci.sh` take their list from `SwitchdFuzz --list`.
let targets: [(name: String, run: (UnsafeRawBufferPointer) -> Void)] = [
    ("ethernet", fuzzEthernet),
    ("arp", fuzzARP),
    ("ipv4", fuzzIPv4),
    ("ipv6", fuzzIPv6),
    ("icmpv4", fuzzICMPv4),
    ("icmpv6", fuzzICMPv6),
    ("ndp", fuzzNDP),
    ("udp", fuzzUDP),
    ("tcp", fuzzTCP),
    ("dhcp", fuzzDHCP),
    ("dns", fuzzDNS),
    ("virtio", fuzzVirtio),
    ("segmentation", fuzzSegmentation),
    ("headerless", fuzzHeaderless),
    ("arp-responder", fuzzARPResponder),
    ("ndp-responder", fuzzNDPResponder),
    ("echo-responder", fuzzEchoResponder),
    ("ra-responder", fuzzRAResponder),
    ("dhcp-server", fuzzDHCPServer),
    ("dns-proxy", fuzzDNSProxy),
    ("stream-framer", fuzzStreamFramer),
]

/// The target FUZZ_TARGET names, looked up once; an unknown or missing name stops the process.
let selected: (UnsafeRawBufferPointer) -> Void = {
    guard let raw = getenv("FUZZ_TARGET") else { fatalError("set FUZZ_TARGET to one of: \(targets.map(\.name))") }
    let name = String(cString: raw)
    guard let target = targets.first(where: { $0.name == name }) else {
        fatalError("unknown FUZZ_TARGET \(name); one of: \(targets.map(\.name))")
    }
    return target.run
}()

/// Called by libFuzzer once before the first input: `--list` prints the target names and exits.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>) -> CInt {
    for index in 1..<Int(argc.pointee) where String(cString: argv.pointee[index]!) == "--list" {
        for target in targets { print(target.name) }
        exit(0)
    }
    Log.level = .error   // the DHCP server logs every relay and exhaustion
    _ = selected
    return 0
}

/// One input, handed to the selected target. libFuzzer already passes a heap copy of exactly
/// `size` bytes, so AddressSanitizer sees any read past the end.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected(UnsafeRawBufferPointer(start: size > 0 ? data : nil, count: size))
    return 0
}
