// swift-tools-version:6.1
// switchd libFuzzer targets: every Proto parser, segmentation, the responders and the stream framer.
//
// A separate package (like bench/micro) so that the sanitizer build stays out of the main build and
// CI. It depends on the root package by path; `run.sh` builds it with `-sanitize=fuzzer,address`.
// One executable holds every target (FUZZ_TARGET picks one): a single compile and link instead of
// one libFuzzer link per target on a 2-core machine.
import PackageDescription

let package = Package(
    name: "switchd-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "switchd", path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "SwitchdFuzz",
            dependencies: [
                .product(name: "Proto", package: "switchd"),
                .product(name: "Switch", package: "switchd"),
            ]
        ),
    ],
    swiftLanguageModes: [.v5]
)
