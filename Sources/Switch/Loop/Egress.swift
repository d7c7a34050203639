// Egress: a frame to one port in the form that port can take, and its hand-over to the port's queue.
//
// Design note (netmap's "mismatch datapath", netmap_offloadings.c). TAP and link ports, and
// vhost-user guests that negotiated GUEST_CSUM and GUEST_TSO4/6 (`takesOffloads`), take a frame as
// received, virtio-net header included. Socket ports cannot: they get complete
// checksums, and super-frames either whole (header-less offload peers) or cut into MTU-size
// segments. Those variants are built lazily, at most once per frame, and shared by every port of
// a flood by reference count; they belong to the frame (`EgressVariants`), not to the loop, so a
// service frame emitted in the middle of forwarding another has variants of its own.
// Queued frames are submitted once per batch per port (`markDirty`, `flushDirty`: VALE's
// one flush per destination, OVS's dp_netdev_pmd_flush_output_packets).
import Proto

/// The copies of one frame made for the egress ports that cannot take it as it is. Owned by
/// whoever forwards the frame, released with `ForwardingLoop.release(_:)` once every port has
/// its reference. The segments live in the loop's `segmentBuffers` scratch, which only one
/// frame's variants use at a time: only a super-frame is segmented, and frames the services emit
/// while another is forwarded are never super-frames.
struct EgressVariants {
    enum Segments { case none, built(count: Int), failed(DropReason) }

    /// The frame with complete checksums, in place or in a copy.
    var completed: Frame? = nil
    var segments = Segments.none
}

extension ForwardingLoop {
    /// Sends `frame` to port `out` in the form that port can take: as is to TAP, link and offload
    /// vhost-user ports (virtio-net header included), with complete checksums to socket ports, cut into MTU-size
    /// segments for socket ports that cannot take super-frames.
    @inline(__always)
    func deliver(_ frame: Frame, to out: UInt16, unicast: Bool, variants: inout EgressVariants) {
        let port = ports + Int(out)
        if port.pointee.takesOffloads {
            if frame.header.isGSO { port.pointee.superFrames &+= 1 }
            enqueue(frame, to: out)
            return
        }
        if frame.header.isGSO {
            if port.pointee.offloadPeer && frame.length <= Self.maxOffloadFrame {
                guard let whole = completedCopy(of: frame, unicast: unicast, variants: &variants) else {
                    port.pointee.count(.noBuffer)
                    return
                }
                port.pointee.superFrames &+= 1
                enqueue(whole, to: out)
                return
            }
            if case .none = variants.segments { variants.segments = buildSegments(of: frame) }
            switch variants.segments {
            case .none: return  // not reached: built above
            case .failed(let reason):
                port.pointee.count(reason)
            case .built(let count):
                port.pointee.segmented &+= 1
                for i in 0..<count {
                    enqueue(Frame(buffer: segmentBuffers[i], offset: BufferPool.headroom, length: Int(segmentLengths[i]),
                                  header: .none), to: out)
                }
            }
            return
        }
        let limit = port.pointee.offloadPeer ? Self.maxOffloadFrame : maxFrame
        guard frame.length <= limit else { port.pointee.count(.oversize); return }
        if frame.header.flags & VirtioNetHeader.needsChecksum != 0 {
            guard let whole = completedCopy(of: frame, unicast: unicast, variants: &variants) else {
                port.pointee.count(.noBuffer)
                return
            }
            enqueue(whole, to: out)
        } else {
            enqueue(frame, to: out)
        }
    }

    /// The frame with complete checksums: completed in place when this is its only destination and
    /// nobody else holds the buffer, else in a copy made once per frame.
    private func completedCopy(of frame: Frame, unicast: Bool, variants: inout EgressVariants) -> Frame? {
        if let completed = variants.completed { return completed }
        var target = frame
        if !(unicast && pool.referenceCount(frame.buffer) == 1) {
            guard let copy = pool.allocate() else { return nil }
            pool.pointer(copy, BufferPool.headroom).copyMemory(from: pool.pointer(frame.buffer, frame.offset),
                                                                byteCount: frame.length)
            target = Frame(buffer: copy, offset: BufferPool.headroom, length: frame.length, header: frame.header)
        } else {
            pool.retain(frame.buffer)  // released with the other variants
        }
        let bytes = UnsafeMutableRawBufferPointer(start: pool.pointer(target.buffer, target.offset), count: target.length)
        var header = frame.header
        if header.isGSO {
            // A super-frame's field may hold a pseudo-header sum for another length: recompute it.
            header = Segmentation.describeHeaderless(frame: bytes, mtu: Self.maxOffloadFrame) ?? header
        }
        if header.flags & VirtioNetHeader.needsChecksum != 0 { _ = header.completeChecksum(in: bytes) }
        target.header = .none
        variants.completed = target
        return target
    }

    /// Cuts the super-frame into MTU-size segments in buffers of their own (`segmentBuffers`).
    private func buildSegments(of frame: Frame) -> EgressVariants.Segments {
        let bytes = UnsafeRawBufferPointer(start: pool.pointer(frame.buffer, frame.offset), count: frame.length)
        switch Segmentation.plan(frame: bytes, header: frame.header, mtu: mtu) {
        case .failure(let error):
            return .failed(error == .tooBig ? .oversize : .badHeader)
        case .success(let plan):
            guard plan.count <= Self.maxSegments else { return .failed(.badHeader) }
            for i in 0..<plan.count {
                guard let buffer = pool.allocate() else {
                    releaseSegments(count: i)
                    return .failed(.noBuffer)
                }
                segmentBuffers[i] = buffer
                segmentLengths[i] = Int32(Segmentation.emitSegment(i, of: bytes, plan: plan,
                                                                    into: pool.pointer(buffer, BufferPool.headroom)))
            }
            return .built(count: plan.count)
        }
    }

    private func releaseSegments(count: Int) {
        for i in 0..<count { pool.release(segmentBuffers[i]) }
    }

    /// Drops the forwarder's own references to the copies made for one frame (queues hold theirs).
    @inline(__always)
    func release(_ variants: inout EgressVariants) {
        if let completed = variants.completed {
            pool.release(completed.buffer)
            variants.completed = nil
        }
        if case .built(let count) = variants.segments { releaseSegments(count: count) }
        variants.segments = .none
    }

    /// Puts a frame in port `slot`'s send queue, or counts a drop when the queue is full.
    @inline(__always)
    func enqueue(_ frame: Frame, to slot: UInt16) {
        let port = ports + Int(slot)
        guard port.pointee.queueCount < port.pointee.queueCapacity else { port.pointee.count(.queueFull); return }
        let entry = port.pointee.queue! + port.pointee.queueIndex(port.pointee.queueCount)
        entry.pointee.buffer = frame.buffer
        entry.pointee.offset = UInt32(frame.offset)
        entry.pointee.length = UInt32(frame.length)
        entry.pointee.header = frame.header
        pool.retain(frame.buffer)
        port.pointee.queueCount += 1
        markDirty(slot)
    }

    /// Notes that port `slot` has frames to submit at the end of the batch.
    @inline(__always)
    func markDirty(_ slot: UInt16) {
        if !ports[Int(slot)].dirty {
            ports[Int(slot)].dirty = true
            dirty[dirtyCount] = slot
            dirtyCount += 1
        }
    }

    /// Submits the sends of every port that got frames in this batch.
    func flushDirty() {
        var i = 0
        while i < dirtyCount {
            let slot = dirty[i]
            ports[Int(slot)].dirty = false
            if ports[Int(slot)].isActive { submitSends(slot) }
            i += 1
        }
        dirtyCount = 0
        if shard.wake != 0 { wakeShards() }
    }
}
