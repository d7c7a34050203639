// swift-tools-version:6.1
// switchd microbenchmarks: checksum, segmentation and the forwarding loop, measured with ordo-one/benchmark.
//
// A separate package so that the benchmark harness (and its dependencies) stays out of the main
// build and CI. It depends on the root package by path for its `Proto` and `Switch` products.
import PackageDescription

let package = Package(
    name: "switchd-micro",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "switchd", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // The dataplane and its two peers, with Switch imported implementation-only: Switch's
        // CLiburing and the harness's CSystem define `struct io_uring_sqe` differently and cannot
        // be loaded into one module.
        .target(
            name: "ForwardingFixture",
            dependencies: [
                .product(name: "Proto", package: "switchd"),
                .product(name: "Switch", package: "switchd"),
            ]
        ),
        .executableTarget(
            name: "SwitchdMicro",
            dependencies: [
                "ForwardingFixture",
                .product(name: "Proto", package: "switchd"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/SwitchdMicro",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v5]
)
