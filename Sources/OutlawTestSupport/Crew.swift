import Foundation

/// A person outlawctl adds for a test: name, role and PIN.
public struct CrewMember: Sendable, Equatable {
    public let name: String
    public let role: String
    public let pin: String

    public init(_ name: String, role: String = "user", pin: String = "1234") {
        self.name = name
        self.role = role
        self.pin = pin
    }

    /// A collector: jane, PIN 4821.
    public static let jane = CrewMember("jane", pin: "4821")
    /// An admin: john, PIN 1111.
    public static let johnAdmin = CrewMember("john", role: "admin", pin: "1111")
}

/// The handhelds and people of a test's facility, as `DaemonProcess.addCrew` added them.
public struct Crew: Sendable {
    /// The device names, in the order added.
    public let devices: [String]
    /// Each device's token, by name.
    public let tokens: [String: String]
    public let users: [CrewMember]

    /// The usual crew: handheld HH-1, collector jane and admin john.
    public static let devices = ["HH-1"]
    public static let users: [CrewMember] = [.jane, .johnAdmin]

    /// The first device's token.
    public var token: String { tokens[devices.first ?? ""] ?? "" }

    public func token(_ device: String) -> String { tokens[device] ?? "" }
}

extension DaemonProcess {
    /// The device-and-users fixture: adds `devices` and `users` with outlawctl (audited, as an operator's would be)
    /// and returns their tokens. `session(logIn: true)` logs these users in.
    @discardableResult
    public func addCrew(devices: [String] = Crew.devices, users: [CrewMember] = Crew.users) async throws -> Crew {
        var tokens: [String: String] = [:]
        for device in devices { tokens[device] = try await addDevice(device) }
        for user in users { try await addUser(user.name, role: user.role, pin: user.pin) }
        return Crew(devices: devices, tokens: tokens, users: users)
    }
}
