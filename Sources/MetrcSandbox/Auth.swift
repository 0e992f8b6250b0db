import Foundation

/// HTTP Basic as Metrc uses it: user name = vendor (software) key, password = user key.
public struct BasicCredentials: Sendable, Equatable {
    public var vendorKey: String
    public var userKey: String

    public init(vendorKey: String, userKey: String) {
        self.vendorKey = vendorKey
        self.userKey = userKey
    }

    /// Parses an `Authorization` header value; `nil` when it is missing or not well-formed Basic.
    public static func parse(authorization header: String?) -> BasicCredentials? {
        guard let header else { return nil }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        guard trimmed.count > 6, trimmed.prefix(6).lowercased() == "basic " else { return nil }
        let encoded = trimmed.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
            let colon = text.firstIndex(of: ":")
        else { return nil }
        return BasicCredentials(vendorKey: String(text[..<colon]), userKey: String(text[text.index(after: colon)...]))
    }

    public var headerValue: String {
        "Basic " + Data("\(vendorKey):\(userKey)".utf8).base64EncodedString()
    }
}

/// The outcome of checking a request's keys against the state.
public enum AuthResult: Sendable, Equatable {
    case allowed(SandboxUser)
    /// 401: unknown vendor key, unknown/revoked/expired user key, no access to the license, or no permission.
    case unauthorized(reason: String)
}

extension SandboxState {
    /// Metrc's checks, in order: vendor key, user key (known, not revoked, not expired), then, when the call is
    /// facility-scoped, access to `license` and the `permission`. Every failure is a 401.
    public func authorize(_ credentials: BasicCredentials?, license: String?, permission: SandboxPermission?,
                          now: Date) -> AuthResult {
        guard let credentials else { return .unauthorized(reason: "no Basic credentials") }
        guard vendorKeys.contains(credentials.vendorKey) else { return .unauthorized(reason: "unknown vendor key") }
        guard let user = user(withKey: credentials.userKey) else { return .unauthorized(reason: "unknown user key") }
        if user.revoked == true { return .unauthorized(reason: "user key of \(user.name) is revoked") }
        guard user.isKeyValid(at: now) else { return .unauthorized(reason: "user key of \(user.name) has expired") }
        if let license {
            guard facility(license) != nil, user.facilities[license] != nil else {
                return .unauthorized(reason: "\(user.name) has no access to \(license)")
            }
            if let permission, !user.may(permission, at: license) {
                return .unauthorized(reason: "\(user.name) lacks \(permission.rawValue) at \(license)")
            }
        }
        return .allowed(user)
    }
}
