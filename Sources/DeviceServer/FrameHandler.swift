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

/// Frames bytes into lines and turns the hello deadline, read idleness and shutdown into frames, in arrival order.
final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = InboundFrame

    private var framer: LineFramer
    private let helloTimeout: TimeAmount
    private var helloTimer: Scheduled<Void>?
    private var closed = false

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
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        let buffer = unwrapInboundIn(data)
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
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func emit(_ frame: InboundFrame, context: ChannelHandlerContext) {
        context.fireChannelRead(wrapInboundOut(frame))
        context.fireChannelReadComplete()
    }
}
