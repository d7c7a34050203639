// SegmentationTargets: GSO planning and segment emission, and the header-less offload description.
@testable import Proto

/// Checks one emitted segment with readers independent of the emitter: it locates as a whole
/// TCP/UDP frame with the plan's offsets, its IPv4 header checksum and its L4 checksum verify,
/// and its IP packet fits `mtu`.
private func checkSegment(_ segment: UnsafeRawBufferPointer, plan: SegmentationPlan, mtu: Int, index: Int) {
    guard case .transport(let layers) = FrameLayers.locate(segment) else { return require(false, "segment \(index) does not locate") }
    require(layers.l3Offset == plan.l3Offset && layers.l4Offset == plan.l4Offset
            && layers.headerLength == plan.headerLength && layers.isUDP == plan.isUDP && layers.isIPv6 == plan.isIPv6,
            "segment \(index) layers \(layers) ≠ plan \(plan)")
    require(layers.ipEnd == segment.count, "segment \(index) IP length ≠ frame")
    require(segment.count - plan.l3Offset <= mtu, "segment \(index): IP packet \(segment.count - plan.l3Offset) > MTU \(mtu)")
    let l4 = UnsafeRawBufferPointer(rebasing: segment[plan.l4Offset...])
    let pseudoHeaderSum: UInt16
    if plan.isIPv6 {
        let ip = IPv6Header(validating: UnsafeRawBufferPointer(rebasing: segment[plan.l3Offset...]))!
        pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                           protocol: plan.isUDP ? .udp : .tcp, length: l4.count)
    } else {
        let ip = IPv4Header(validating: UnsafeRawBufferPointer(rebasing: segment[plan.l3Offset...]))!
        require(ip.isChecksumValid, "segment \(index): IPv4 header checksum")
        pseudoHeaderSum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                           protocol: plan.isUDP ? .udp : .tcp, length: l4.count)
    }
    require(InternetChecksum.sum(l4, initial: pseudoHeaderSum) == 0xFFFF, "segment \(index): L4 checksum")
    if plan.isUDP { require(Int(l4.be16(4)) == l4.count, "segment \(index): UDP length") }
}

/// Emits every segment of `frame` under `plan` and checks each, their TCP sequence numbers and
/// that the payloads put back together are the original payload.
private func emitAll(_ frame: UnsafeRawBufferPointer, plan: SegmentationPlan, mtu: Int) {
    require(plan.count >= 1 && plan.segmentPayload >= 1, "plan \(plan)")
    require(plan.headerLength <= frame.count, "plan header length past the frame")
    let payload = frame.count - plan.headerLength
    require(plan.count == (payload == 0 ? 1 : (payload + plan.segmentPayload - 1) / plan.segmentPayload), "segment count")
    var reassembled = 0
    for index in 0..<plan.count {
        let expected = plan.segmentLength(index, frameLength: frame.count)
        require(expected >= plan.headerLength && expected <= plan.headerLength + plan.segmentPayload,
                "segment \(index) length \(expected)")
        withBuffer(expected) { out in
            let length = Segmentation.emitSegment(index, of: frame, plan: plan, into: out.baseAddress!)
            require(length == expected, "segment \(index): emitted \(length), planned \(expected)")
            let segment = UnsafeRawBufferPointer(out)
            checkSegment(segment, plan: plan, mtu: mtu, index: index)
            let piece = UnsafeRawBufferPointer(rebasing: segment[plan.headerLength...])
            let original = UnsafeRawBufferPointer(rebasing: frame[(plan.headerLength + reassembled)..<(plan.headerLength + reassembled + piece.count)])
            require(same(piece, original), "segment \(index): payload ≠ original")
            if !plan.isUDP {
                let sequence = frame.be32(plan.l4Offset + 4) &+ UInt32(truncatingIfNeeded: reassembled)
                require(segment.be32(plan.l4Offset + 4) == sequence, "segment \(index): sequence number")
                let flags = segment.byte(plan.l4Offset + 13), originalFlags = frame.byte(plan.l4Offset + 13)
                let finPsh: UInt8 = 0x09, cwr: UInt8 = 0x80
                require(flags & ~(finPsh | cwr) == originalFlags & ~(finPsh | cwr), "segment \(index): flags")
                require(index == plan.count - 1 || flags & finPsh == 0, "segment \(index): FIN/PSH before the last")
                require(index == 0 || flags & cwr == 0, "segment \(index): CWR after the first")
            }
            reassembled += piece.count
        }
    }
    require(reassembled == payload, "reassembled \(reassembled) of \(payload) payload bytes")
}

/// Segmentation.plan + emitSegment: a 12-byte virtio header, a 16-bit MTU, then the frame. A control
/// byte after the MTU, when odd, also emits one segment under a plan with fields taken from the input,
/// which must write nothing or stay within the frame's length.
func fuzzSegmentation(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    guard let header = VirtioNetHeader(validating: reader.take(VirtioNetHeader.size)) else { return }
    let mtu = Int(reader.u16())
    let control = reader.byte()
    let frame = reader.rest()
    switch Segmentation.plan(frame: frame, header: header, mtu: mtu) {
    case .success(let plan):
        emitAll(frame, plan: plan, mtu: mtu)
    case .failure:
        break
    }
    if control & 1 == 1 {
        // A plan that was not made for this frame (offsets and sizes from the control byte's high bits).
        let bogus = SegmentationPlan(l3Offset: Int(control >> 1 & 7) * 4 + 10, l4Offset: Int(control >> 4) * 4 + 30,
                                     headerLength: Int(header.headerLength) & 0xFF, segmentPayload: Int(header.gsoSize) & 0x3FF,
                                     count: Int(header.checksumStart) & 0xF, isIPv6: header.flags & 2 != 0,
                                     isUDP: header.flags & 4 != 0)
        let index = Int(header.checksumOffset & 0xF) - 1
        withBuffer(max(frame.count, 1)) { out in
            let length = Segmentation.emitSegment(index, of: frame, plan: bogus, into: out.baseAddress!)
            require(length == 0 || (length >= bogus.headerLength && length <= frame.count),
                    "bogus plan wrote \(length) bytes for a \(frame.count)-byte frame")
        }
    }
}

/// Segmentation.describeHeaderless (and FrameLayers.locate behind it): a 16-bit MTU, then the
/// frame. The header it returns must complete to a valid checksum and, for a GSO frame, plan and
/// segment into frames whose IP packets fit the MTU.
func fuzzHeaderless(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let mtu = Int(reader.u16())
    let original = reader.rest()
    withCopy(original) { frame in
        guard let header = Segmentation.describeHeaderless(frame: frame, mtu: mtu) else { return }
        guard header != .none else {
            return require(same(UnsafeRawBufferPointer(frame), original), "gso none but the frame changed")
        }
        guard case .transport(let layers) = FrameLayers.locate(UnsafeRawBufferPointer(frame)) else {
            return require(false, "described frame no longer locates")
        }
        require(header.flags == VirtioNetHeader.needsChecksum && Int(header.checksumStart) == layers.l4Offset
                && Int(header.checksumOffset) == layers.checksumFieldOffset, "header \(header) ≠ layers \(layers)")
        require(header.checksumFieldFits(frameLength: frame.count), "checksum field outside the frame")
        // Completing the checksum over the whole frame gives a valid L4 checksum.
        withCopy(UnsafeRawBufferPointer(frame)) { complete in
            require(header.completeChecksum(in: complete), "completeChecksum refused")
            let l4 = UnsafeRawBufferPointer(rebasing: complete[layers.l4Offset..<layers.ipEnd])
            let sum: UInt16
            if layers.isIPv6 {
                let ip = IPv6Header(unchecked: UnsafeRawBufferPointer(rebasing: complete[layers.l3Offset...]))
                sum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                       protocol: layers.isUDP ? .udp : .tcp, length: l4.count)
            } else {
                let ip = IPv4Header(unchecked: UnsafeRawBufferPointer(rebasing: complete[layers.l3Offset...]))
                sum = InternetChecksum.pseudoHeaderSum(source: ip.source, destination: ip.destination,
                                                       protocol: layers.isUDP ? .udp : .tcp, length: l4.count)
            }
            require(InternetChecksum.sum(l4, initial: sum) == 0xFFFF, "completed L4 checksum does not verify")
        }
        guard header.isGSO else {
            require(layers.isUDP || frame.count - layers.l3Offset <= mtu, "TCP frame over the MTU without GSO")
            return
        }
        require(!layers.isUDP && header.gsoSize >= 1, "GSO header \(header)")
        // An MTU below the IPv4 minimum (RFC 791: 68) cannot be a link's; only crashes count there.
        guard mtu >= 68 else { return }
        switch Segmentation.plan(frame: UnsafeRawBufferPointer(frame), header: header, mtu: mtu) {
        case .success(let plan): emitAll(UnsafeRawBufferPointer(frame), plan: plan, mtu: mtu)
        case .failure(let error): require(false, "describeHeaderless made a header that plan refuses: \(error)")
        }
    }
}
