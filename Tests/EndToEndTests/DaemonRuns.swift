import Foundation
import OutlawTestSupport
import Testing

/// Every daemon a test starts ends with a checked stop: SIGTERM, and exit status 0 expected, whatever the test did.
extension DaemonProcess {
    /// SIGTERM, wait, and expect the clean exit; the log's end when it is not.
    func expectCleanStop(sourceLocation: SourceLocation = #_sourceLocation) async {
        let status = await stop()
        #expect(status == 0, "outlawd did not stop cleanly on SIGTERM (status \(status)): \(log.suffix(2000))", sourceLocation: sourceLocation)
    }

    /// Runs `body` with this daemon, then stops it with a checked stop, whether `body` returned or threw.
    func whileRunning(sourceLocation: SourceLocation = #_sourceLocation, _ body: (DaemonProcess) async throws -> Void) async throws {
        do {
            try await body(self)
        } catch {
            await expectCleanStop(sourceLocation: sourceLocation)
            throw error
        }
        await expectCleanStop(sourceLocation: sourceLocation)
    }

    /// A daemon from a config file (`server` and `environment` as `init` takes them) with the crew added
    /// (`addCrew`); `body` runs, then a checked stop.
    static func withCrew(server: String = "", environment: [String: String] = [:], devices: [String] = Crew.devices,
                         users: [CrewMember] = Crew.users, sourceLocation: SourceLocation = #_sourceLocation,
                         _ body: (DaemonProcess, Crew) async throws -> Void) async throws
    {
        let d = try await DaemonProcess(server: server, environment: environment)
        do {
            let crew = try await d.addCrew(devices: devices, users: users)
            try await body(d, crew)
        } catch {
            await d.expectCleanStop(sourceLocation: sourceLocation)
            throw error
        }
        await d.expectCleanStop(sourceLocation: sourceLocation)
    }
}
