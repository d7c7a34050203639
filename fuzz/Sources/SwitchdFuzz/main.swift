// main: hands the process to libFuzzer's driver with LLVMFuzzerTestOneInput as the callback.
//
// SwiftPM links an executable target's own entry point as `main` (it renames the module's main
// and points `main` at it), so libFuzzer's main() is not used; its LLVMFuzzerRunDriver takes the
// same arguments and does the same.
import Glibc

@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>,
               _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runDriver(&argc, &argv) { data, size in fuzzOne(data, size) })
