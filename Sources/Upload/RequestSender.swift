import Foundation
import Logging
import Metrc
import OutlawProtocol
import OutlawStore

/// A request whose attempt is recorded (committed): it may leave for Metrc at once.
struct RecordedRequest: Sendable, Equatable {
    let request: PlannedRequest
    let key: String
    let signing: AttemptSigning
    let objects: [JSONValue]
    let attemptID: Int64
    /// When the attempt began: a read-back after an unknown outcome looks from here.
    let started: Date
}

/// Metrc's answer to one recorded request and what it means for each event (`OutcomePolicy`), decided `at`.
struct Answer: Sendable, Equatable {
    let recorded: RecordedRequest
    let response: MetrcResponse
    let decision: OutcomePolicy.Decision
    let at: Date

    /// Metrc asked for smaller requests: the halves go in this request's slot.
    var splits: Bool {
        if case .split = decision { return true }
        return false
    }
}

/// Takes one request through its life with Metrc: its attempt recorded before it leaves, sent, Metrc's answer
/// decided and recorded; and takes back requests recorded but never sent. Store work runs on threads of its own
/// (`Blocking.run`), so the cooperative threads keep taking Metrc's answers for the other requests in flight.
struct RequestSender: Sendable {
    let client: MetrcClient
    let recorder: AttemptRecorder
    let manicureBases: ManicureBases
    let rejectedKey: RejectedKeyHandler
    let backoff: Backoff
    let logger: Logger
    let now: @Sendable () -> Date

    /// Builds the request's bodies and commits its attempt record, which must be durable before anything leaves;
    /// nil when it is not to be sent (held, a manicure whose plants cannot be read, the record failed).
    func record(_ request: PlannedRequest) async -> RecordedRequest? {
        guard let (key, signing) = AttemptRecorder.signing(of: request) else { return nil }
        let objects = request.events.map { MetrcBody.object(type: $0.type, fields: $0.fields, date: $0.metrcDate) }
        if request.action == .manicurePlants, !(await manicureBases.keep(request, key: key)) { return nil }
        let started = now()
        do {
            let recorder = self.recorder
            let attemptID = try await Blocking.run { try recorder.begin(request, signing: signing, now: started) }
            return RecordedRequest(request: request, key: key, signing: signing, objects: objects, attemptID: attemptID, started: started)
        } catch {
            logger.error("cannot record an upload attempt; not sending: \(error)", metadata: MessageID.attemptNotRecorded.metadata())
            return nil
        }
    }

    /// Sends the request and decides what Metrc's answer means for each event.
    func transmit(_ recorded: RecordedRequest) async -> Answer {
        let request = recorded.request
        let response = await client.send(request.action, license: request.license, objects: recorded.objects, userKey: recorded.key)
        let at = now()
        let decision = OutcomePolicy.decide(response, action: request.action, events: request.events, sentAt: recorded.started, now: at,
                                            backoff: backoff, jitter: Double.random(in: 0...1))
        return Answer(recorded: recorded, response: response, decision: decision, at: at)
    }

    /// Records what was decided for each event. A split's events are queued again (Metrc applied none of them), so
    /// its halves, which `UploadPass` sends next in the same slot, begin attempts of their own.
    func conclude(_ answer: Answer) async {
        let recorded = answer.recorded
        let request = recorded.request
        let (attemptID, response, at) = (recorded.attemptID, answer.response, answer.at)
        let metadata = AttemptRecorder.metadata(request, signing: recorded.signing, response: response, attemptID: attemptID)
        let recorder = self.recorder
        UploadMetrics.count(answer.decision, request: request)
        do {
            switch answer.decision {
            case .results(let results, let outcome):
                // Metrc took the collector's own key: it is good, as of this answer.
                var keyAcceptedFor: Int64?
                if case .accepted = response, case .personal = request.signing { keyAcceptedFor = request.events.first?.userID }
                try await Blocking.run { [keyAcceptedFor] in
                    try recorder.finish(attemptID, outcome: outcome, response: response, results: results, keyAcceptedFor: keyAcceptedFor, now: at)
                }
                recorder.logResults(outcome, results: results, metadata: metadata)
            case .split(let outcome):
                let requeued = OutcomePolicy.requeue(request.events.map(\.id), now: at)
                try await Blocking.run { try recorder.finish(attemptID, outcome: outcome, response: response, results: requeued, now: at) }
                logger.notice("Metrc asked for smaller requests; sending halves", metadata: MessageID.metrcAskedSmallerRequests.metadata(metadata))
            case .reconcile(let results, let outcome, let message):
                try await Blocking.run { try recorder.finish(attemptID, outcome: outcome, response: response, message: message, results: results, now: at) }
                logger.warning("outcome unknown; Metrc will be read back before any resend", metadata: MessageID.outcomeUnknown.metadata(metadata))
            case .keyRejected:
                let rejectedKey = self.rejectedKey
                try await Blocking.run { try rejectedKey.handle(recorded, response: response, now: at, metadata: metadata) }
            }
        } catch {
            logger.error("cannot record an upload outcome: \(error)", metadata: MessageID.outcomeNotRecorded.metadata(metadata))
        }
    }

    /// Requests recorded but never sent, because the pass ended first (uploads paused, the daemon stopping):
    /// their attempts say so, and their events are queued again as they were, with nothing to read back.
    func takeBack(_ requests: [RecordedRequest]) async {
        guard !requests.isEmpty else { return }
        let (recorder, logger, now) = (self.recorder, self.logger, self.now())
        _ = try? await Blocking.run {
            for item in requests {
                do {
                    try recorder.takeBack(item.attemptID, events: item.request.events.map(\.id), now: now)
                } catch {
                    logger.error("cannot take back an upload attempt that was never sent: \(error)",
                                 metadata: MessageID.attemptNotWithdrawn.metadata(["attempt": "\(item.attemptID)"]))
                }
            }
        }
        logger.info("upload requests recorded but not sent were taken back", metadata: ["requests": "\(requests.count)"])
    }
}
