// swift-tools-version:6.1
// switchd: a fast userspace virtual Ethernet switch for Linux.
import PackageDescription

// Release builds use SwiftPM's default -O: overflow traps and preconditions stay in. -Ounchecked
// was measured against it (bench/iperf.sh, switchd path, alternating, 3 rounds each, 2026-12-06)
// and gave no difference beyond the run-to-run spread; see docs/decisions.md "Build flags".

let package = Package(
    name: "switchd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "switchd", targets: ["switchd"]),
        .library(name: "Proto", targets: ["Proto"]),
        .library(name: "Switch", targets: ["Switch"]),
        .library(name: "SwitchSys", targets: ["SwitchSys"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // liburing, imported through a one-header module map (see Sources/CLiburing/shim.h).
        .systemLibrary(name: "CLiburing", pkgConfig: "liburing",
                       providers: [.apt(["liburing-dev"])]),
        // libpcap: bpf_filter/bpf_validate for capture filters in the dataplane; pcap_compile and the
        // pcap writer in `switchd capture` (see Sources/CPcap/shim.h).
        .systemLibrary(name: "CPcap", pkgConfig: "libpcap", providers: [.apt(["libpcap-dev"])]),
        // Small C helpers for what Swift cannot express well (ioctl with structs, CMSG macros).
        .target(name: "CSwitchShims"),
        // Wire formats: no syscalls, no Foundation, no allocation on parse/emit paths.
        .target(name: "Proto"),
        // The syscall layer: io_uring, buffer rings, sockets, files, processes, threads, clocks, errno.
        // The only target that calls Glibc/liburing/the shims for syscalls; it knows nothing of Switch
        // (Proto only for the address values of InetSocketAddress).
        .target(name: "SwitchSys", dependencies: ["Proto", "CLiburing", "CSwitchShims"]),
        // The dataplane: ports, io_uring loop, forwarding table. Its syscalls go through SwitchSys
        // (CPcap only for the pcap file format of captures).
        .target(name: "Switch", dependencies: ["Proto", "SwitchSys", "CPcap"]),
        // The executable: CLI, config, control socket.
        .executableTarget(name: "switchd", dependencies: [
            "Switch", "SwitchSys", "Proto", "CPcap",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Yams", package: "Yams"),
        ]),
        // Test-only helpers shared by the test targets (the scapy checkers).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "ProtoTests", dependencies: ["Proto", "TestSupport"], exclude: ["Segmentation/check_segments.py"],
                    resources: [.copy("Golden")]),
        // Test-only: counts heap allocations of one thread (interposes malloc in the test binary).
        .target(name: "CMallocCounter"),
        .testTarget(name: "SwitchTests", dependencies: ["Switch", "SwitchSys", "Proto", "CMallocCounter", "TestSupport"]),
        .testTarget(name: "SwitchSysTests", dependencies: ["SwitchSys", "Proto"]),
        .testTarget(name: "switchdTests", dependencies: ["switchd", "Switch", "SwitchSys", "Proto"]),
    ],
    swiftLanguageModes: [.v5]
)
