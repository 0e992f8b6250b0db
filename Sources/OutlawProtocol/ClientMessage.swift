/// A message from a device, recognised by its `op`, its fields typed; what a field's value means is checked by whoever handles it.
public enum ClientMessage: Sendable, Equatable {
    case hello(Hello)
    case ping
    case bye
    // Not yet checked: BatchValidator turns it into a ValidatedBatch or a BatchRejection in one place, echoing the id.
    case batch(BatchMessage)
    case status(Status)
    case login(Login)
    case setKey(SetKey)
    case pull(Pull)

    // Fields are optional because a missing or wrong-typed one is answered by the handler (error bad_request and
    // the like), not by the parser: the parser refuses only what is not a message at all.

    /// The `hello` fields; nil where missing or of another type.
    public struct Hello: Sendable, Equatable {
        public let proto: Int?
        public let device: String?
        public let token: String?
        public let firmware: String?

        public init(proto: Int?, device: String?, token: String?, firmware: String?) {
            self.proto = proto
            self.device = device
            self.token = token
            self.firmware = firmware
        }
    }

    /// The `status` fields: `ids` nil when missing or not an array, and an element nil when it is not a string.
    public struct Status: Sendable, Equatable {
        public let ids: [String?]?

        public init(ids: [String?]?) {
            self.ids = ids
        }
    }

    /// The `login` fields; nil where missing or not a string.
    public struct Login: Sendable, Equatable {
        public let user: String?
        public let pin: String?

        public init(user: String?, pin: String?) {
            self.user = user
            self.pin = pin
        }
    }

    /// The `set_key` fields; nil where missing or of another type.
    public struct SetKey: Sendable, Equatable {
        public let actor: String?
        public let pin: String?
        public let user: String?
        /// A string sets the key, `null` clears it; nil when the field is missing or anything else.
        public let key: KeyChange?

        /// What `key` asks for.
        public enum KeyChange: Sendable, Equatable {
            case set(String)
            case clear
        }

        public init(actor: String?, pin: String?, user: String?, key: KeyChange?) {
            self.actor = actor
            self.pin = pin
            self.user = user
            self.key = key
        }
    }

    /// The `pull` fields: `kinds` as `ids` in `status`; `since` and `license` nil where missing or not a string.
    public struct Pull: Sendable, Equatable {
        public let kinds: [String?]?
        public let since: String?
        public let license: String?

        public init(kinds: [String?]?, since: String?, license: String?) {
            self.kinds = kinds
            self.since = since
            self.license = license
        }
    }

    /// Why a line is not a message we can act on.
    public enum ParseError: Error, Equatable, Sendable {
        case badJSON
        case unknownOp(String?)
    }

    /// Every `op` the contract defines.
    public static let knownOps: Set<String> = ["hello", "ping", "bye", "batch", "status", "login", "set_key", "pull"]

    /// One line, parsed once: a batch's events go straight into `EventFields`, never through a tree of dictionaries.
    public static func parse(line: some Collection<UInt8>) -> Result<ClientMessage, ParseError> {
        guard let (object, events) = JSONValue.parseMessage(line) else { return .failure(.badJSON) }
        return parse(object: object, events: events)
    }

    /// From an object already parsed whole (tests, tools): the same message `parse(line:)` makes of its text.
    public static func parse(object: [String: JSONValue]) -> Result<ClientMessage, ParseError> {
        let batch = BatchMessage(object)
        return parse(object: batch.envelope, events: batch.events)
    }

    static func parse(object: [String: JSONValue], events: [BatchEventElement]?) -> Result<ClientMessage, ParseError> {
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
        case "batch": return .success(.batch(BatchMessage(envelope: object, events: events)))
        case "status":
            return .success(.status(Status(ids: object["ids"]?.arrayValue?.map(\.stringValue))))
        case "login":
            return .success(.login(Login(user: object["user"]?.stringValue, pin: object["pin"]?.stringValue)))
        case "set_key":
            let key: SetKey.KeyChange? = switch object["key"] {
            case .string(let k)?: .set(k)
            case .null?: .clear
            default: nil
            }
            return .success(.setKey(SetKey(
                actor: object["actor"]?.stringValue, pin: object["pin"]?.stringValue,
                user: object["user"]?.stringValue, key: key)))
        case "pull":
            return .success(.pull(Pull(
                kinds: object["kinds"]?.arrayValue?.map(\.stringValue), since: object["since"]?.stringValue,
                license: object["license"]?.stringValue)))
        default: return .failure(.unknownOp(op))
        }
    }

    /// `device`: 1–64 characters of `A-Z a-z 0-9 . _ -`.
    public static func isValidDeviceName(_ name: String) -> Bool { Names.isValidDeviceName(name) }
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
