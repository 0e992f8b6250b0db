import Foundation
import NIOSSL

/// Where and how the device server listens, and the limits it announces in `welcome`.
public struct DeviceServerConfiguration: Sendable {
    /// Where to accept connections.
    public enum Listener: Sendable, Equatable {
        case address(host: String, port: Int)
        /// A socket already bound and listening, passed by systemd socket activation.
        case descriptor(Int32)
    }

    public var listener: Listener
    public var maxLineBytes: Int
    public var maxBatchEvents: Int
    public var window: Int
    public var idleTimeout: TimeAmountSeconds
    public var helloTimeout: TimeAmountSeconds
    public var maxConnections: Int
    /// The default facility license, and every license this daemon serves.
    public var facility: String
    public var licenses: [String]
    public var serverName: String
    /// Lets `set_key` cross a connection without TLS; only an operator's explicit choice turns it on.
    public var allowKeysWithoutTLS: Bool
    /// When set, every device connection is TLS (the same line framing inside).
    public var tls: NIOSSLContext?
    /// Batches without a login ticket are refused (`login_required`).
    public var requireLoginTicket: Bool = true
    /// How long a login ticket covers collected events.
    public var loginTicketLifetime: TimeInterval = 168 * 3600
    /// Connections that have not said hello yet: from one remote address, and in all.
    public var maxUnauthenticatedPerAddress: Int = 16
    public var maxUnauthenticated: Int = 256

    public init(listener: Listener = .address(host: "127.0.0.1", port: 7420), maxLineBytes: Int = 1 << 20,
                maxBatchEvents: Int = 5000, window: Int = 16, idleTimeout: TimeAmountSeconds = 300,
                helloTimeout: TimeAmountSeconds = 10, maxConnections: Int = 1024, facility: String = "LIC-0001",
                licenses: [String] = [], serverName: String = "outlawd/0.1.0", allowKeysWithoutTLS: Bool = false,
                tls: NIOSSLContext? = nil)
    {
        self.tls = tls
        self.listener = listener
        self.maxLineBytes = maxLineBytes
        self.maxBatchEvents = maxBatchEvents
        self.window = window
        self.idleTimeout = idleTimeout
        self.helloTimeout = helloTimeout
        self.maxConnections = maxConnections
        self.facility = facility
        self.licenses = licenses.isEmpty ? [facility] : licenses
        self.serverName = serverName
        self.allowKeysWithoutTLS = allowKeysWithoutTLS
    }
}

/// A duration in seconds (fractions allowed, so tests can use short timeouts).
public typealias TimeAmountSeconds = Double
