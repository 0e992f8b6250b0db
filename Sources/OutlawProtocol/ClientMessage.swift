/// A message from a device, recognised by its `op`; fields are checked by whoever handles it.
public enum ClientMessage: Sendable {
    case hello(Hello)
    case ping
    case bye
    case batch([String: JSONValue])
    case status([String: JSONValue])
    case login([String: JSONValue])
    case setKey([String: JSONValue])
    case pull([String: JSONValue])

    /// The `hello` fields.
    public struct Hello: Sendable {
        public let proto: Int?
        public let device: String?
        public let token: String?
        public let firmware: String?
    }

    /// Why a line is not a message we can act on.
    public enum ParseError: Error, Equatable, Sendable {
        case badJSON
        case unknownOp(String?)
    }

    /// Every `op` the contract defines.
    public static let knownOps: Set<String> = ["hello", "ping", "bye", "batch", "status", "login", "set_key", "pull"]

    public static func parse(line: some Collection<UInt8>) -> Result<ClientMessage, ParseError> {
        guard let value = JSONValue.parse(line), let object = value.objectValue else { return .failure(.badJSON) }
        return parse(object: object)
    }

    public static func parse(object: [String: JSONValue]) -> Result<ClientMessage, ParseError> {
        guard let op = object["op"]?.stringValue else { return .failure(.unknownOp(nil)) }
        switch op {
        case "hello":
            return .success(.hello(Hello(
                proto: object["proto"]?.integerValue,
                device: object["device"]?.stringValue,
                token: object["token"]?.stringValue,
                firmware: object["firmware"]?.stringValue)))
        case "ping": return .success(.ping)
        case "bye": return .success(.bye)
        case "batch": return .success(.batch(object))
        case "status": return .success(.status(object))
        case "login": return .success(.login(object))
        case "set_key": return .success(.setKey(object))
        case "pull": return .success(.pull(object))
        default: return .failure(.unknownOp(op))
        }
    }

    /// `device`: 1–64 characters of `A-Z a-z 0-9 . _ -`.
    public static func isValidDeviceName(_ name: String) -> Bool {
        let u = name.utf8
        return (1...64).contains(u.count) && u.allSatisfy {
            ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 46 || $0 == 95 || $0 == 45
        }
    }
}

/// The `error` codes of the contract, plus `busy` for the connection limit.
public enum ErrorCode: String, Sendable {
    case lineTooLong = "line_too_long"
    case badJSON = "bad_json"
    case unknownOp = "unknown_op"
    case helloRequired = "hello_required"
    case helloTimeout = "hello_timeout"
    case unauthorized
    case unsupportedProto = "unsupported_proto"
    case alreadyHello = "already_hello"
    case idleTimeout = "idle_timeout"
    case tlsRequired = "tls_required"
    case badRequest = "bad_request"
    case busy
    case unavailable
}
