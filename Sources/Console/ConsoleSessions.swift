import Foundation
import OutlawStore

/// One browser's session: who signed in (nil before sign-in) and the CSRF token its forms carry.
public struct ConsoleSession: Sendable, Equatable {
    public let user: String?
    public let csrf: String
    public var lastSeen: Date
}

/// The console's sessions, in memory: a session ends after `idle` without a request, on sign-out, and when the
/// daemon stops. Only the SHA-256 of each cookie token is kept, so a memory dump or a log of the table gives no
/// usable cookie, and a tampered cookie matches nothing. Pure: the caller passes the time.
public struct ConsoleSessions: Sendable {
    public static let idle: TimeInterval = 30 * 60
    /// Sessions kept at most (signed-in and not); past this the one idle longest is dropped.
    public let capacity: Int
    private var sessions: [Data: ConsoleSession] = [:]

    public init(capacity: Int = 2_000) {
        self.capacity = capacity
    }

    /// A new session and its cookie token (256 random bits, base64url).
    public mutating func open(user: String?, now: Date) -> (token: String, session: ConsoleSession) {
        let token = Self.randomToken()
        let session = ConsoleSession(user: user, csrf: Self.randomToken(), lastSeen: now)
        dropExpired(now: now)
        if sessions.count >= capacity, let oldest = sessions.min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
            sessions[oldest] = nil
        }
        sessions[Self.hash(token)] = session
        return (token, session)
    }

    /// The session of a cookie token, its idle time restarted; nil for an unknown, tampered or expired one.
    public mutating func touch(_ token: String, now: Date) -> ConsoleSession? {
        guard Self.looksLikeToken(token) else { return nil }
        let key = Self.hash(token)
        guard var session = sessions[key] else { return nil }
        guard now.timeIntervalSince(session.lastSeen) < Self.idle, now >= session.lastSeen.addingTimeInterval(-60) else {
            sessions[key] = nil
            return nil
        }
        session.lastSeen = now
        sessions[key] = session
        return session
    }

    /// Ends the session of `token` (sign-out, or the anonymous session a sign-in replaces).
    public mutating func close(_ token: String) {
        guard Self.looksLikeToken(token) else { return }
        sessions[Self.hash(token)] = nil
    }

    /// Ends every session of `user` (disabled, or their PIN reset).
    public mutating func close(user: String) {
        sessions = sessions.filter { $0.value.user != user }
    }

    public var count: Int { sessions.count }

    mutating func dropExpired(now: Date) {
        sessions = sessions.filter { now.timeIntervalSince($0.value.lastSeen) < Self.idle }
    }

    static func hash(_ token: String) -> Data { Secrets.sha256(Data(token.utf8)) }

    /// 43 base64url characters: anything else is refused before it is hashed.
    static func looksLikeToken(_ token: String) -> Bool {
        token.utf8.count == 43 && token.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Form tokens compared in constant time.
enum CSRF {
    static func matches(_ sent: String?, _ expected: String) -> Bool {
        guard let sent, sent.utf8.count == expected.utf8.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(sent.utf8, expected.utf8) { difference |= a ^ b }
        return difference == 0
    }
}
