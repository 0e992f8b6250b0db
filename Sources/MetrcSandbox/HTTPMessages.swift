import Foundation

/// A request as the sandbox sees it, independent of the HTTP library.
public struct SandboxRequest: Sendable {
    public var method: String
    public var path: String
    public var query: QueryParameters
    public var authorization: String?
    public var body: [UInt8]

    /// `uri` is the request target, e.g. `/plants/v2/vegetative?licenseNumber=LIC-0001`.
    public init(method: String, uri: String, authorization: String? = nil, body: [UInt8] = []) {
        self.method = method.uppercased()
        if let mark = uri.firstIndex(of: "?") {
            let rawPath = String(uri[..<mark])
            self.path = rawPath.removingPercentEncoding ?? rawPath
            self.query = QueryParameters(query: uri[uri.index(after: mark)...])
        } else {
            self.path = uri.removingPercentEncoding ?? uri
            self.query = QueryParameters()
        }
        self.authorization = authorization
        self.body = body
    }

    public var isControl: Bool { path.lowercased().hasPrefix("/_sandbox") }
}

public struct SandboxResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public static func json(_ value: JSONValue, status: Int = 200) -> SandboxResponse {
        SandboxResponse(status: status, headers: ["Content-Type": "application/json; charset=utf-8"], body: value.bytes)
    }

    /// Metrc's error object `{"Message":"..."}`.
    public static func message(_ text: String, status: Int) -> SandboxResponse {
        json(["Message": .string(text)], status: status)
    }

    /// A 401 as Metrc sends it: no JSON (here, an empty body).
    public static let unauthorized = SandboxResponse(status: 401, headers: ["Content-Length": "0"])

    public static func error(_ error: MetrcError) -> SandboxResponse {
        if error.status == 401 { return .unauthorized }
        if let message = error.message { return .message(message, status: error.status) }
        return SandboxResponse(status: error.status)
    }

    public static func rowErrors(_ errors: [RowError]) -> SandboxResponse {
        json(.array(errors.map(\.json)), status: 400)
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// One accepted write, as the write log records it: **who** Metrc would show as having done it.
public struct SandboxWrite: Sendable, Equatable {
    public var id: Int
    /// The Metrc user whose user key signed the request.
    public var userName: String
    public var license: String
    public var action: SandboxAction
    public var method: String
    public var path: String
    /// The objects of the request, as sent.
    public var objects: JSONValue
    public var recordedAt: Date

    public var json: JSONValue {
        [
            "id": .int(id), "userName": .string(userName), "license": .string(license),
            "action": .string(action.rawValue), "method": .string(method), "path": .string(path),
            "objects": objects, "recordedAt": .string(MetrcTimestamp.format(recordedAt)),
        ]
    }
}
