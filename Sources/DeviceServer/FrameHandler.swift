import NIOCore
import OutlawProtocol

/// What a connection's reader sees: lines, and the session's timers firing.
enum InboundFrame: Sendable {
    case line([UInt8])
    case tooLong
    case helloDeadline
    case idle
    case shutdown
}

/// Asks a connection to finish what it owes and close (graceful stop).
struct ShutdownRequest: Sendable {}

/// Sent once the session has written its last answer: from then on input is only counted and dropped, and the
/// channel is closed when `maxBytes` more have arrived or `timeout` has passed, whichever comes first.
struct DrainRequest: Sendable {
    let maxBytes: Int
    let timeout: TimeAmount
}

/// Frames bytes into lines and turns the hello deadline, read idleness and shutdown into frames, in arrival order.
final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = InboundFrame

    private var framer: LineFramer
    private let helloTimeout: TimeAmount
    private var helloTimer: Scheduled<Void>?
    private var closed = false
    /// While draining: how many more bytes may arrive before the channel is closed.
    private var drainBudget: Int?
    private var drainTimer: Scheduled<Void>?

    init(maxLineBytes: Int, helloTimeout: TimeAmount) {
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        self.helloTimeout = helloTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        helloTimer = context.eventLoop.scheduleTask(in: helloTimeout) {
            let (handler, context) = loopBound.value
            handler.emit(.helloDeadline, context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        helloTimer?.cancel()
        drainTimer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if let budget = drainBudget {
            let left = budget - buffer.readableBytes
            drainBudget = left
            if left < 0 { context.close(promise: nil) }
            return
        }
        guard !closed else { return }
        framer.append(buffer.readableBytesView)
        while let frame = framer.next() {
            switch frame {
            case .line(let bytes): emit(.line(bytes), context: context)
            case .tooLong:
                emit(.tooLong, context: context)
                closed = true
                return
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            emit(.idle, context: context)
        } else if event is ShutdownRequest {
            emit(.shutdown, context: context)
        } else if let drain = event as? DrainRequest {
            startDraining(drain, context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func startDraining(_ drain: DrainRequest, context: ChannelHandlerContext) {
        guard drainBudget == nil else { return }
        drainBudget = drain.maxBytes
        helloTimer?.cancel()
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        drainTimer = context.eventLoop.scheduleTask(in: drain.timeout) {
            loopBound.value.close(promise: nil)
        }
    }

    private func emit(_ frame: InboundFrame, context: ChannelHandlerContext) {
        // Nothing reaches the session once it is draining: it has answered its last line.
        guard drainBudget == nil else { return }
        context.fireChannelRead(wrapInboundOut(frame))
        context.fireChannelReadComplete()
    }
}
