// CommandQueue: how the control thread asks the forwarding thread to do something.
//
// A command is posted under a mutex and announced on the loop's eventfd; the loop runs it between
// batches and signals the poster. Once per control request, never per frame.
import Dispatch
import Proto
import SwitchSys

/// A request to the forwarding loop, with its reply.
final class LoopCommand: @unchecked Sendable {
    enum Kind {
        case addDevice(OpenedDevice)
        case remove(id: String)
        case status
        case lookup(HostQuestion)
        case stop
        /// `switchd attach`: a socketpair end `fd` becomes a port (its id in `portID`).
        case attach(fd: Int32, kind: AttachKind, offload: Bool, peer: String)
        case fdb
        case clientPortCount
        case addCapture(CaptureSetup)
        case captureStats(CaptureTicket)
        case removeCapture(CaptureTicket)
    }

    let kind: Kind
    private(set) var portID: Result<String, SwitchError> = .failure(SwitchError("not run"))
    private(set) var network: NetworkStatus?
    private(set) var answer: HostAnswer = .none
    private(set) var fdbEntries: [FDBEntry] = []
    private(set) var count = 0
    private(set) var capture: Result<CaptureTicket, SwitchError> = .failure(SwitchError("not run"))
    private(set) var captureStats: CaptureStats?
    private let done = DispatchSemaphore(value: 0)

    init(_ kind: Kind) { self.kind = kind }

    /// Runs on the loop thread.
    func execute(on loop: ForwardingLoop) {
        switch kind {
        case .addDevice(let device):
            if loop.addDevicePort(kind: device.kind, fd: device.fd, headerSize: device.headerSize,
                                  info: device.info) != nil {
                portID = .success(device.info.id)
            } else {
                loop.closeUnused(device)
                portID = .failure(SwitchError("too many ports"))
            }
        case .remove(let id):
            if let slot = loop.slot(id: id) {
                guard loop.infos[Int(slot)]?.isUplink != true else {
                    portID = .failure(SwitchError("port \(id) is the uplink of network \(loop.spec.name); it goes with the network"))
                    break
                }
                loop.removePort(slot, reason: "removed by request")
                portID = .success(id)
            } else {
                portID = .failure(SwitchError("network \(loop.spec.name) has no port \(id)"))
            }
        case .status:
            network = loop.snapshot()
        case .lookup(let question):
            answer = loop.lookup(question)
        case .stop:
            loop.stop()
        case .attach(let fd, let kind, let offload, let peer):
            portID = loop.addAttachedPort(kind: kind, fd: fd, offload: offload, peer: peer)
                .map { .success($0) } ?? .failure(SwitchError("too many ports"))
        case .fdb:
            fdbEntries = loop.fdb()
        case .clientPortCount:
            count = loop.clientPortCount()
        case .addCapture(let setup):
            capture = loop.addCapture(setup)
        case .captureStats(let ticket):
            captureStats = loop.captureStats(ticket)
        case .removeCapture(let ticket):
            captureStats = loop.removeCapture(ticket)
        }
        done.signal()
    }

    /// Waits until the loop has run the command.
    func wait() { done.wait() }
}

/// Commands waiting for the loop, announced on its eventfd.
final class CommandQueue: @unchecked Sendable {
    private let mutex = Lock()
    private var items: [LoopCommand] = []
    private var eventFD: Int32 = -1

    func attach(eventFD: Int32) { self.eventFD = eventFD }

    func post(_ command: LoopCommand) {
        mutex.withLock { items.append(command) }
        EventFD.signal(eventFD)
    }

    func takeAll() -> [LoopCommand] {
        mutex.withLock {
            let taken = items
            items.removeAll()
            return taken
        }
    }
}

/// A question the DNS proxy asks of the network's DHCP leases.
enum HostQuestion {
    case address(String)
    case hostname(IPv4Address)
}

enum HostAnswer {
    case none
    case address(IPv4Address)
    case hostname(String)
}
