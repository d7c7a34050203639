// Retrying: blocking socket calls in the loop tests, retried when interrupted.
import Glibc

/// Runs `call` (a recv/recvfrom/poll that returns -1 and sets errno on failure) again while it fails
/// with EINTR. A test thread that dropped an earlier switch sees one now and then: the switch's
/// io_uring is torn down on that thread, and timed socket waits report the wake-up as EINTR
/// (seen in CaptureTests, ShardTests, ZeroAllocationTests, VXLANLoopTests and VhostUserLoopTests).
func retryingEINTR<Result: BinaryInteger>(_ call: () -> Result) -> Result {
    while true {
        let result = call()
        if result >= 0 || errno != EINTR { return result }
    }
}
