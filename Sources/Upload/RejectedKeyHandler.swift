import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore

/// Metrc refused the key that signed a request: holds the request's events and marks the key, so nothing else is
/// signed with it until a person sets a new personal key or the Default key works again. Blocking store work:
/// run it on a thread of its own.
struct RejectedKeyHandler: Sendable {
    let store: Store
    let recorder: AttemptRecorder
    let defaultKey: DefaultKeyMonitor
    let logger: Logger

    func handle(_ recorded: RecordedRequest, response: MetrcResponse, now: Date, metadata: Logger.Metadata) throws {
        let request = recorded.request
        if case .personal = request.signing, let userID = request.events.first?.userID {
            let reason = "\(request.keyUser ?? "the collector")'s Metrc key was rejected by Metrc"
            let results = request.events.map { ($0.id, EventResult.held(code: .keyRejected, reason: reason)) }
            try recorder.finish(recorded.attemptID, outcome: .unauthorized, response: response, results: results, now: now)
            let held = try store.markUserKeyRejected(userID: userID, now: now)
            logger.error("Metrc refused \(request.keyUser ?? "a user")'s key: their uploads are held until a new key is set",
                         metadata: MessageID.personalKeyRefusedByUpload.metadata(metadata.merging(["held": "\(held + results.count)"]) { a, _ in a }))
        } else {
            let reason = "the facility's Default key was rejected by Metrc"
            let results = request.events.map { ($0.id, EventResult.held(code: .defaultKeyRejected, reason: reason)) }
            try recorder.finish(recorded.attemptID, outcome: .unauthorized, response: response, message: "Default key refused", results: results,
                                now: now)
            try defaultKey.markRejected(now: now)
            logger.critical("Metrc refused the facility's Default key: uploads it signs are held",
                            metadata: MessageID.defaultKeyRefusedByUpload.metadata(metadata))
        }
    }
}
