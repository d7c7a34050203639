// ProtoTargets: one fuzz target per Proto parser: validate, read every accessor, Repr parse, emit and re-parse.
import Proto

/// Ethernet with up to two VLAN tags: the view, the mutable view and the Repr round trip.
func fuzzEthernet(_ input: UnsafeRawBufferPointer) {
    guard let frame = EthernetFrame(validating: input) else { return }
    let headerLength = frame.headerLength
    require((headerLength == 14 || headerLength == 18 || headerLength == 22) && headerLength <= input.count, "Ethernet header length \(headerLength)")
    require(frame.tagCount == (headerLength - 14) / 4, "tag count")
    require(frame.payload.count == input.count - headerLength, "payload length")
    require((frame.outerTag != nil) == (frame.tagCount >= 1) && (frame.innerTag != nil) == (frame.tagCount == 2), "tags")
    consume((frame.destination, frame.source, frame.etherType, frame.outerTag?.vlanID, frame.innerTag?.priority,
             frame.outerTag?.dropEligible))
    let repr = EthernetRepr.parse(frame)
    require(repr.headerLength == headerLength, "Repr header length \(repr.headerLength) ≠ \(headerLength)")
    withBuffer(repr.headerLength) { out in
        repr.emit(into: out)
        require(same(UnsafeRawBufferPointer(out), UnsafeRawBufferPointer(rebasing: input[0..<headerLength])), "Ethernet emit ≠ input")
    }
    withCopy(input) { copy in
        guard let mutable = MutableEthernetFrame(validating: copy) else { return require(false, "mutable view refused") }
        require(mutable.headerLength == headerLength, "mutable header length")
        mutable.destination = frame.destination
        mutable.source = frame.source
        mutable.etherType = frame.etherType
        if let tag = frame.outerTag { mutable.setTag(tag, at: 0) }
        if let tag = frame.innerTag { mutable.setTag(tag, at: 1) }
        require(same(UnsafeRawBufferPointer(copy), input), "mutable rewrite changed the frame")
    }
}

/// ARP for IPv4 over Ethernet.
func fuzzARP(_ input: UnsafeRawBufferPointer) {
    guard let packet = ARPPacket(validating: input) else { return }
    require(packet.bytes.count == 28, "ARP length")
    let repr = ARPRepr.parse(packet)
    consume((packet.hardwareType, packet.protocolType, packet.hardwareLength, packet.protocolLength))
    withBuffer(28) { out in
        repr.emit(into: out)
        require(same(UnsafeRawBufferPointer(out), packet.bytes), "ARP emit ≠ input")
        require(ARPRepr.parse(ARPPacket(validating: UnsafeRawBufferPointer(out))!) == repr, "ARP re-parse")
    }
    withCopy(input) { copy in
        guard let mutable = MutableARPPacket(validating: copy) else { return require(false, "mutable ARP refused") }
        mutable.operation = repr.operation
        mutable.senderHardwareAddress = repr.senderHardwareAddress
        mutable.targetProtocolAddress = repr.targetProtocolAddress
        require(same(UnsafeRawBufferPointer(copy), input), "mutable ARP rewrite changed the packet")
    }
}

/// IPv4: header view, options, checksum, pseudo-header, Repr round trip (options dropped).
func fuzzIPv4(_ input: UnsafeRawBufferPointer) {
    guard let header = IPv4Header(validating: input) else { return }
    let headerLength = header.headerLength
    require(header.bytes.count == Int(header.totalLength) && headerLength <= header.bytes.count, "IPv4 lengths")
    require(header.options.count == headerLength - 20 && header.payload.count == header.bytes.count - headerLength, "IPv4 slices")
    consume((header.dscp, header.ecn, header.identification, header.dontFragment, header.moreFragments,
             header.fragmentOffset, header.isFragment, header.timeToLive, header.protocol, header.source,
             header.destination, header.isChecksumValid, header.payloadPseudoHeaderSum))
    let repr = IPv4Repr.parse(header)
    require(repr.payloadLength == header.payload.count, "IPv4 Repr payload length")
    withBuffer(20 + repr.payloadLength) { out in
        repr.emit(into: out)
        guard let again = IPv4Header(validating: UnsafeRawBufferPointer(out)) else { return require(false, "IPv4 emit unreadable") }
        require(again.isChecksumValid, "IPv4 emitted checksum")
        require(IPv4Repr.parse(again) == repr, "IPv4 re-parse ≠ Repr")
    }
    withCopy(input) { copy in
        guard let mutable = MutableIPv4Header(validating: copy) else { return require(false, "mutable IPv4 refused") }
        mutable.fillChecksum()
        require(mutable.header.isChecksumValid, "IPv4 fillChecksum")
        mutable.setFragment(dontFragment: header.dontFragment, moreFragments: header.moreFragments, offset: header.fragmentOffset)
        require(mutable.header.fragmentOffset == header.fragmentOffset, "IPv4 setFragment")
    }
}

/// IPv6: fixed header, the extension-header walk, each extension and fragment header, Repr round trip.
func fuzzIPv6(_ input: UnsafeRawBufferPointer) {
    guard let header = IPv6Header(validating: input) else { return }
    require(header.bytes.count == 40 + Int(header.payloadLength), "IPv6 length")
    consume((header.trafficClass, header.flowLabel, header.hopLimit, header.source, header.destination))
    if let upper = header.upperLayer() {
        require(upper.offset >= 40 && upper.offset <= header.bytes.count, "upper layer offset \(upper.offset)")
        consume((upper.protocol, upper.hasUpperLayerHeader))
        if let fragment = upper.fragment {
            withBuffer(8) { out in
                fragment.emit(into: out)
                require(IPv6FragmentRepr.parse(IPv6FragmentHeader(validating: UnsafeRawBufferPointer(out))!) == fragment,
                        "fragment round trip")
            }
        }
    }
    // Every header at the start of the payload, as each kind would read it.
    let payload = header.payload
    if let extensionHeader = IPv6ExtensionHeader(validating: payload) {
        require(extensionHeader.headerLength == (Int(extensionHeader.headerExtensionLength) + 1) * 8
                && extensionHeader.headerLength <= payload.count, "extension header length")
        consume((extensionHeader.nextHeader, extensionHeader.data.count))
        withBuffer(extensionHeader.headerLength) { out in
            IPv6PaddingOptionsRepr(nextHeader: extensionHeader.nextHeader, headerLength: extensionHeader.headerLength).emit(into: out)
            let again = IPv6ExtensionHeader(validating: UnsafeRawBufferPointer(out))
            require(again?.headerLength == extensionHeader.headerLength && again?.nextHeader == extensionHeader.nextHeader,
                    "padding options round trip")
        }
    }
    if let fragmentHeader = IPv6FragmentHeader(validating: payload) {
        consume((fragmentHeader.moreFragments, fragmentHeader.identification))
    }
    let repr = IPv6Repr.parse(header)
    withBuffer(40 + repr.payloadLength) { out in
        repr.emit(into: out)
        require(same(UnsafeRawBufferPointer(rebasing: out[0..<40]), UnsafeRawBufferPointer(rebasing: input[0..<40])),
                "IPv6 emit ≠ input")
    }
}

/// ICMPv4: view, checksum, Repr round trip over the same data.
func fuzzICMPv4(_ input: UnsafeRawBufferPointer) {
    guard let message = ICMPv4Message(validating: input) else { return }
    consume((message.type, message.code, message.checksum, message.identifier, message.sequenceNumber,
             message.isChecksumValid, message.payload.count))
    let repr = ICMPv4Repr.parse(message)
    withCopy(input) { copy in
        repr.emit(into: copy)
        let again = ICMPv4Message(validating: UnsafeRawBufferPointer(copy))!
        require(again.isChecksumValid, "ICMPv4 emitted checksum")
        require(ICMPv4Repr.parse(again) == repr, "ICMPv4 re-parse")
        // A valid message comes back unchanged but for its checksum (0 and 0xFFFF both verify).
        for index in 0..<copy.count where index != 2 && index != 3 && copy[index] != input[index] {
            return require(false, "ICMPv4 emit changed byte \(index)")
        }
    }
}

/// A pseudo-header sum from the first bytes of the input (the rest is the message).
private func pseudoHeader(_ reader: inout FuzzReader) -> UInt16 { reader.u16() }

/// ICMPv6: view, checksum against a pseudo-header sum, Repr round trip.
func fuzzICMPv6(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let sum = pseudoHeader(&reader)
    let bytes = reader.rest()
    guard let message = ICMPv6Message(validating: bytes) else { return }
    consume((message.type, message.code, message.checksum, message.restOfHeader, message.identifier,
             message.sequenceNumber, message.payload.count))
    let valid = message.isChecksumValid(pseudoHeaderSum: sum)
    let repr = ICMPv6Repr.parse(message)
    withCopy(bytes) { copy in
        repr.emit(into: copy, pseudoHeaderSum: sum)
        let again = ICMPv6Message(validating: UnsafeRawBufferPointer(copy))!
        require(again.isChecksumValid(pseudoHeaderSum: sum), "ICMPv6 emitted checksum")
        require(ICMPv6Repr.parse(again) == repr, "ICMPv6 re-parse")
        require(!valid || InternetChecksum.checksum(bytes, initial: sum) == 0, "ICMPv6 valid but sum ≠ 0")
    }
}

/// NDP (RFC 4861): NS/NA, RS and RA Reprs with their options, each parsed, emitted and parsed again.
func fuzzNDP(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let sum = pseudoHeader(&reader)
    let bytes = reader.rest()
    guard let message = ICMPv6Message(validating: bytes) else { return }
    // Options follow an 8-byte body (RS), a 16-byte one (RA) or a 24-byte one (NS/NA).
    for start in [8, 16, 24] where start <= bytes.count {
        guard let options = NDPOptions(validating: UnsafeRawBufferPointer(rebasing: bytes[start...])) else { continue }
        for option in options {
            require(option.length > 0 && option.bytes.count == Int(option.length) * 8, "NDP option length")
            consume((option.type, option.data.count, option.linkLayerAddress, option.mtu))
            if let prefix = NDPPrefixInformation.parse(option) {
                withBuffer(32) { out in
                    prefix.emit(into: out)
                    let again = NDPOptions(validating: UnsafeRawBufferPointer(out))?.first { _ in true }
                    require(again.flatMap(NDPPrefixInformation.parse) == prefix, "prefix information round trip")
                }
            }
            if let rdnss = NDPRecursiveDNSServer.parse(option) {
                consume(NDPRecursiveDNSServer.addressCount(option))
                withBuffer(24) { out in
                    rdnss.emit(into: out)
                    let again = NDPOptions(validating: UnsafeRawBufferPointer(out))?.first { _ in true }
                    require(again.flatMap(NDPRecursiveDNSServer.parse) == rdnss, "RDNSS round trip")
                }
            }
        }
    }
    func roundTrip<R: Equatable>(_ repr: R, _ length: Int, _ emit: (R, UnsafeMutableRawBufferPointer) -> Void,
                                 _ parse: (ICMPv6Message) -> R?, _ name: String) {
        withBuffer(length) { out in
            emit(repr, out)
            let again = ICMPv6Message(validating: UnsafeRawBufferPointer(out))!
            require(again.isChecksumValid(pseudoHeaderSum: sum), "\(name) emitted checksum")
            require(parse(again) == repr, "\(name) round trip")
        }
    }
    if let neighbor = NeighborRepr.parse(message) {
        roundTrip(neighbor, neighbor.length, { $0.emit(into: $1, pseudoHeaderSum: sum) }, NeighborRepr.parse, "neighbor")
    }
    if let solicitation = RouterSolicitationRepr.parse(message) {
        roundTrip(solicitation, solicitation.length, { $0.emit(into: $1, pseudoHeaderSum: sum) },
                  RouterSolicitationRepr.parse, "router solicitation")
    }
    if let advertisement = RouterAdvertisementRepr.parse(message) {
        roundTrip(advertisement, advertisement.length, { $0.emit(into: $1, pseudoHeaderSum: sum) },
                  RouterAdvertisementRepr.parse, "router advertisement")
    }
}

/// UDP: view, checksum, Repr emit over the same payload.
func fuzzUDP(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let sum = pseudoHeader(&reader)
    let bytes = reader.rest()
    guard let header = UDPHeader(validating: bytes) else { return }
    require(header.bytes.count == Int(header.length) && header.payload.count == header.bytes.count - 8, "UDP lengths")
    consume((header.checksum, header.isChecksumValid(pseudoHeaderSum: sum)))
    let repr = UDPRepr.parse(header)
    withCopy(header.bytes) { copy in
        repr.emit(into: copy, pseudoHeaderSum: sum)
        let again = UDPHeader(validating: UnsafeRawBufferPointer(copy))!
        require(again.isChecksumValid(pseudoHeaderSum: sum), "UDP emitted checksum")
        require(UDPRepr.parse(again) == repr && Int(again.length) == copy.count, "UDP re-parse")
    }
}

/// TCP: view, options walk in TCPRepr.parse, emit with the options it understood, re-parse.
func fuzzTCP(_ input: UnsafeRawBufferPointer) {
    var reader = FuzzReader(input)
    let sum = pseudoHeader(&reader)
    let bytes = reader.rest()
    guard let header = TCPHeader(validating: bytes) else { return }
    require(header.headerLength >= 20 && header.headerLength <= bytes.count, "TCP header length")
    require(header.options.count == header.headerLength - 20 && header.payload.count == bytes.count - header.headerLength, "TCP slices")
    consume((header.sourcePort, header.destinationPort, header.sequenceNumber, header.acknowledgmentNumber,
             header.flags, header.window, header.checksum, header.urgentPointer, header.isChecksumValid(pseudoHeaderSum: sum)))
    guard let repr = TCPRepr.parse(header) else { return }
    require(repr.headerLength <= 60 && repr.optionsLength % 4 == 0, "TCP Repr header length \(repr.headerLength)")
    withBuffer(repr.headerLength + header.payload.count) { out in
        if header.payload.count > 0 { out.suffix(from: repr.headerLength).copyMemory(from: header.payload) }
        repr.emit(into: out, pseudoHeaderSum: sum)
        guard let again = TCPHeader(validating: UnsafeRawBufferPointer(out)) else { return require(false, "TCP emit unreadable") }
        require(again.isChecksumValid(pseudoHeaderSum: sum), "TCP emitted checksum")
        require(TCPRepr.parse(again) == repr, "TCP re-parse ≠ Repr")
    }
}

/// DHCP (RFC 2131/2132): parse, every typed accessor, emit, re-parse to the same message.
func fuzzDHCP(_ input: UnsafeRawBufferPointer) {
    guard let message = DHCPMessage.parse(input) else { return }
    consume((message.messageType, message.requestedIPAddress, message.clientMAC, message.option(.hostName),
             message.option(.clientIdentifier), message.option(.parameterRequestList)))
    let length = message.emitLength
    require(length >= 300, "DHCP emit length \(length)")
    withBuffer(length) { out in
        require(message.emit(into: out) == length, "DHCP emit returned another length")
        guard let again = DHCPMessage.parse(UnsafeRawBufferPointer(out)) else { return require(false, "DHCP emit unparseable") }
        require(again == message, "DHCP re-parse ≠ message")
    }
}

/// DNS (RFC 1035): header, first question, whole message with compression pointers, emit and re-parse.
func fuzzDNS(_ input: UnsafeRawBufferPointer) {
    if let header = DNSHeader(validating: input) {
        consume((header.id, header.flags, header.questionCount, header.answerCount))
    }
    let first = DNSMessage.parseFirstQuestion(input)
    guard let message = DNSMessage.parse(input) else { return }
    require(first == nil || (first!.id == message.id && message.questions.first == first!.question),
            "first question ≠ message's")
    for question in message.questions { consume((question.name.description, question.name.hasSuffix(question.name))) }
    guard let bytes = message.emit() else { return }
    guard let again = DNSMessage.parse(bytes) else { return require(false, "DNS emit unparseable") }
    require(again == message, "DNS re-parse ≠ message")
    consume(DNSMessage.makeResponse(to: message, rcode: .nameError).emit())
}

/// The virtio-net header and NEEDS_CSUM completion with arbitrary offsets over an arbitrary frame.
func fuzzVirtio(_ input: UnsafeRawBufferPointer) {
    guard let header = VirtioNetHeader(validating: input) else { return }
    withBuffer(VirtioNetHeader.size) { out in
        header.emit(into: out)
        require(same(UnsafeRawBufferPointer(out), UnsafeRawBufferPointer(rebasing: input[0..<12])), "virtio header round trip")
    }
    consume(header.isGSO)
    let frame = UnsafeRawBufferPointer(rebasing: input[12...])
    let fits = header.checksumFieldFits(frameLength: frame.count)
    withCopy(frame) { copy in
        let done = header.completeChecksum(in: copy)
        require(done == fits, "completeChecksum ≠ checksumFieldFits")
        guard done else { return require(same(UnsafeRawBufferPointer(copy), frame), "refused completion changed the frame") }
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        // Only the field changed, and the covered bytes now sum to zero (all ones before complement)
        // when the field was the only thing the sum had to absorb.
        for index in 0..<copy.count where index != field && index != field + 1 {
            if copy[index] != frame[index] { return require(false, "completion changed byte \(index)") }
        }
        let value = UInt16(copy[field]) << 8 | UInt16(copy[field + 1])
        require(value != 0, "completed checksum 0")
    }
}
